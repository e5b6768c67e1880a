"""Allowed commands parse to the plan we expect: programs, words, and substitutions."""

from __future__ import annotations

import pytest

from labapp.shell.parse import (
    CommandRefused,
    Pipeline,
    Stage,
    Substitution,
    parse_command,
)
from labapp.shell.policy import YQ_SECURITY_FLAGS, ShellPolicy, vetted_args

# A lab whose steps declare `exec: [whoami]`, as the shipped Baseline lab does.
WHOAMI_LAB = ShellPolicy.for_lab(["whoami"])


def stage(program: str, *words: str) -> Stage:
    return Stage(program, tuple((word,) for word in words))


def single(program: str, *words: str) -> Pipeline:
    return Pipeline((stage(program, *words),))


# --- the lab's seed commands -----------------------------------------------------


def test_apply_kustomize_directory() -> None:
    assert parse_command("kubectl apply -k assets/baseline-namespace") == single(
        "kubectl", "apply", "-k", "assets/baseline-namespace"
    )


def test_global_namespace_flag_before_subcommand() -> None:
    assert parse_command("kubectl -n assets delete pod --all") == single(
        "kubectl", "-n", "assets", "delete", "pod", "--all"
    )
    assert parse_command("kubectl -n assets get pod") == single(
        "kubectl", "-n", "assets", "get", "pod"
    )


def test_pipe_into_yq_removes_quotes() -> None:
    plan = parse_command("kubectl get deployment -n assets assets -o yaml | yq '.status'")
    assert plan == Pipeline(
        (
            stage("kubectl", "get", "deployment", "-n", "assets", "assets", "-o", "yaml"),
            stage("yq", ".status"),
        )
    )


def test_exec_with_substituted_pod_name() -> None:
    plan = parse_command(
        "kubectl -n assets exec $(kubectl -n assets get pods -o name) -- whoami", WHOAMI_LAB
    )
    inner = single("kubectl", "-n", "assets", "get", "pods", "-o", "name")
    assert plan == Pipeline(
        (
            Stage(
                "kubectl",
                (
                    ("-n",),
                    ("assets",),
                    ("exec",),
                    (Substitution(inner, split=True),),
                    ("--",),
                    ("whoami",),
                ),
            ),
        )
    )


# --- words: quoting and substitution ---------------------------------------------


def test_substitution_inside_double_quotes_is_not_split() -> None:
    plan = parse_command('kubectl describe "pod/$(kubectl get pods -o name | head -n 1)"')
    inner = Pipeline(
        (
            stage("kubectl", "get", "pods", "-o", "name"),
            stage("head", "-n", "1"),
        )
    )
    word = plan.stages[0].words[1]
    assert word == ("pod/", Substitution(inner, split=False))


def test_substitution_glued_to_text_keeps_its_pieces() -> None:
    plan = parse_command("kubectl get pod/$(kubectl get pods -o name)x")
    word = plan.stages[0].words[1]
    assert word[0] == "pod/"
    assert isinstance(word[1], Substitution) and word[1].split
    assert word[2] == "x"


def test_nesting_two_levels_is_allowed() -> None:
    plan = parse_command("kubectl get $(kubectl get $(kubectl get ns -o name) -o name)")
    outer = plan.stages[0].words[1][0]
    assert isinstance(outer, Substitution)
    middle = outer.pipeline.stages[0].words[1][0]
    assert isinstance(middle, Substitution)
    assert middle.pipeline == single("kubectl", "get", "ns", "-o", "name")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("grep 'a*'", ("a*",)),
        ('grep "a*"', ("a*",)),
        (r"grep a\*", ("a*",)),
        ("grep ''", ("",)),
        ('grep "café"', ("café",)),
        ("grep 'it'\"'\"'s'", ("it's",)),
        (r'grep "say \"hi\" \$5 \n"', ('say "hi" $5 \\n',)),
        ('grep "end$"', ("end$",)),
        ("grep '$(not a substitution)'", ("$(not a substitution)",)),
        ("grep -e '-v'", ("-e", "-v")),
        ("grep -E '^(web|api)-[0-9]+$'", ("-E", "^(web|api)-[0-9]+$")),
        # bashlex misreads `$`, `<(` and `~` inside quotes; the words come out literal
        ("grep a'$x'", ("a$x",)),
        ("grep a'${'", ("a${",)),
        ('grep "<(x) ~ {a,b}"', ("<(x) ~ {a,b}",)),
        ("grep \"'a b'\"", ("'a b'",)),
    ],
)
def test_quotes_are_removed_as_bash_would(line: str, expected: tuple[str, ...]) -> None:
    assert parse_command(line) == single("grep", *expected)


@pytest.mark.timeout(10)
def test_inputs_that_hang_bashlex_are_kept_from_it() -> None:
    # bashlex 0.18 loops forever on `a'${'`; it only ever sees quoted text blanked out.
    plan = parse_command("kubectl get pods -o jsonpath='a${'")
    assert plan.stages[0].words[-1] == ("jsonpath=a${",)


def test_single_quotes_inside_double_quotes_do_not_hide_a_substitution() -> None:
    plan = parse_command("kubectl describe \"x'$(kubectl get pods)'\"")
    word = plan.stages[0].words[1]
    assert word[0] == "x'" and isinstance(word[1], Substitution) and word[2] == "'"


def test_quoted_jsonpath_is_one_word() -> None:
    plan = parse_command("kubectl get pods -o jsonpath='{.items[*].metadata.name}'")
    assert plan.stages[0].words[-1] == ("jsonpath={.items[*].metadata.name}",)


def test_tabs_separate_words() -> None:
    assert parse_command("kubectl\tget\tpods") == single("kubectl", "get", "pods")


# --- more allowed commands -------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "kubectl get pods -A",
        "kubectl get pods -nassets -o wide",
        "kubectl get pods --namespace=assets --selector app=assets",
        "kubectl get pods -l app=assets -L app",
        "kubectl describe deployment assets -n assets",
        "kubectl apply -f manifests/pod.yaml",
        "kubectl apply -f ./manifests",
        "kubectl apply -f -",
        "kubectl apply -k assets/restricted-workload --dry-run=server",
        "kubectl kustomize assets/base",
        "kubectl label ns assets pod-security.kubernetes.io/enforce=baseline --overwrite",
        "kubectl annotate pod x note='hello world'",
        'kubectl patch deploy assets -p \'{"spec":{"replicas":2}}\'',
        "kubectl logs -f deploy/assets -c assets --tail=20",
        "kubectl logs -p pod/x",
        "kubectl exec pod/x -c assets -- whoami",
        "kubectl rollout status deploy/assets --timeout=60s",
        "kubectl rollout restart deploy/assets",
        "kubectl scale deploy assets --replicas=2",
        "kubectl explain pod.spec.securityContext",
        "kubectl version --client",
        "kubectl api-resources --namespaced=true",
        "kubectl api-versions",
        "kubectl wait --for=condition=Available deploy/assets",
        "kubectl auth can-i create pods -n assets",
        "kubectl auth whoami",
        "kubectl events -n assets",
        "kubectl run tmp --image=busybox --restart=Never -- sleep 1",
        "kubectl expose deploy assets --port=80",
        "kubectl set image deploy/assets assets=nginx:1.27",
        "kubectl replace -f manifests/pod.yaml",
        "kubectl cluster-info",
        "kubectl top pod",
        "kubectl create configmap x --from-file=data/config.txt --from-literal=a=b",
        "kubectl create secret generic x --from-file=key=data/secret.txt",
        "kubectl get pods -v=6",
        "kubectl get pods -o custom-columns=NAME:.metadata.name",
        "kubectl get pods -o go-template='{{.metadata.name}}'",
        "kubectl get pods -o yaml | yq -o json '.items[0]'",
        "kubectl get pods -o yaml | yq eval -P '.items[].metadata.name'",
        "kubectl get svc -o yaml | yq '.items[].status.loadBalancer'",
        "kubectl get pods -o yaml | yq -r -I 4 '.kind'",
        "kubectl get pods | grep -iv -A2 -m 1 running",
        "kubectl get pods | grep --count --regexp=Running",
        "kubectl get pods | head -n 5",
        "kubectl get pods | head -5",
        "kubectl get pods | tail -n +2",
        "kubectl get pods | tail -c100",
        "kubectl get pods | wc -lw",
        "kubectl get pods --no-headers | wc -l",
    ],
)
def test_allowed_commands_parse(line: str) -> None:
    plan = parse_command(line, WHOAMI_LAB)
    assert plan.stages[0].program == "kubectl"


def test_yq_runs_with_forced_expression_and_stdin_only() -> None:
    args = vetted_args("yq", ["-P", ".status"])
    assert args == ["-P", *YQ_SECURITY_FLAGS, "--expression=.status", "-"]


def test_yq_keeps_its_eval_subcommand_first() -> None:
    assert vetted_args("yq", ["e", ".a"])[0] == "e"


def test_refusal_is_a_value_error_with_a_reason() -> None:
    with pytest.raises(ValueError) as caught:
        parse_command("rm -rf /")
    assert isinstance(caught.value, CommandRefused)
    assert "`rm` is refused" in caught.value.reason
