"""Running plans as real processes: pipes, streaming, limits, environment, exit codes.

Scripts stand in for kubectl where a test needs a program that misbehaves on
purpose; ToolPaths is injected, so the executor cannot tell the difference.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings

from labapp.clusters.kubectl import kubectl_path
from labapp.clusters.localcluster import Toolchain
from labapp.shell.execute import RunResult, ToolPaths, execute, run_environment
from labapp.shell.parse import CommandRefused, Pipeline, Stage, parse_command
from labapp.shell.policy import NO_LAB, YQ_SECURITY_FLAGS, ShellPolicy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def yq_path() -> Path:
    return Toolchain(settings.LOCALCLUSTER_CACHE).ensure().path("yq")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def real_tools(yq_path: Path) -> ToolPaths:
    return ToolPaths(kubectl=kubectl_path(), yq=yq_path)


def script(tmp_path: Path, name: str, body: str) -> Path:
    """A /bin/sh program; PATH is empty when it runs, so it names tools by full path."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def run(
    line: str,
    *,
    tools: ToolPaths,
    workdir: Path,
    policy: ShellPolicy = NO_LAB,
    **options: object,
) -> RunResult:
    return execute(
        parse_command(line, policy),
        tools=tools,
        kubeconfig=workdir.parent / "kubeconfig",
        workdir=workdir,
        policy=policy,
        **options,  # type: ignore[arg-type]
    )


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a parent that may never reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- real programs ---------------------------------------------------------------


def test_kubectl_piped_into_yq(real_tools: ToolPaths, workdir: Path) -> None:
    result = run(
        "kubectl version --client -o yaml | yq '.clientVersion.major'",
        tools=real_tools,
        workdir=workdir,
    )
    assert result.error is None
    assert (result.exit_code, result.stdout.strip()) == (0, "1")


def test_kubectl_piped_into_grep_passes_stdout(real_tools: ToolPaths, workdir: Path) -> None:
    result = run(
        "kubectl version --client -o yaml | grep gitVersion | wc -l",
        tools=real_tools,
        workdir=workdir,
    )
    assert (result.exit_code, result.stdout.strip()) == (0, "1")
    assert result.first_byte_s is not None and result.first_byte_s <= result.duration_s


def test_yq_treats_a_path_as_an_expression(real_tools: ToolPaths, workdir: Path) -> None:
    (workdir / "secret.yaml").write_text("token: hunter2\n")
    result = run(
        "kubectl version --client -o yaml | yq secret.yaml", tools=real_tools, workdir=workdir
    )
    assert "hunter2" not in result.stdout + result.stderr


def test_yq_null_input_gets_no_stdin_argument(real_tools: ToolPaths, workdir: Path) -> None:
    result = run("yq -n '.a = 1'", tools=real_tools, workdir=workdir)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "a: 1\n", "")


def test_a_hand_built_plan_is_checked_again(real_tools: ToolPaths, workdir: Path) -> None:
    with pytest.raises(CommandRefused):
        parse_command("yq 'load(\"/etc/hostname\")'")
    # execute() does not trust its caller to have parsed the plan.
    hand_built = Pipeline((Stage("yq", (('load("/etc/hostname")',),)),))
    result = execute(hand_built, tools=real_tools, kubeconfig=workdir / "kc", workdir=workdir)
    assert result.exit_code is None
    assert result.error is not None and "`load` is refused" in result.error


def test_yq_security_switches_hold_on_their_own(yq_path: Path, workdir: Path) -> None:
    # Defence in depth: even an expression our check missed cannot read files or env.
    for expression in ('load("/etc/hostname")', "env(HOME)"):
        done = subprocess.run(
            [str(yq_path), "-n", *YQ_SECURITY_FLAGS, f"--expression={expression}"],
            capture_output=True,
            text=True,
            cwd=workdir,
            timeout=30,
            check=False,
        )
        assert done.returncode != 0
        assert "disabled" in done.stderr


# --- environment -----------------------------------------------------------------


def test_environment_is_reduced(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABAPP_TEST_SECRET", "hunter2")
    dump = tmp_path / "env.txt"
    fake = script(tmp_path, "kubectl", f"/usr/bin/env > {dump}\npwd >> {dump}\n")
    result = run("kubectl get pods", tools=ToolPaths(kubectl=fake, yq=fake), workdir=workdir)
    assert result.exit_code == 0
    lines = dump.read_text().splitlines()
    seen = dict(line.split("=", 1) for line in lines[:-1] if "=" in line)
    seen.pop("PWD", None)  # sh sets it for itself
    assert "hunter2" not in dump.read_text()
    assert set(seen) == {
        "KUBECONFIG",
        "HOME",
        "PATH",
        "LANG",
        "KUBECACHEDIR",
        "KUBERC",
        "GOMAXPROCS",
        "GOGC",
    }
    assert seen == run_environment(kubeconfig=workdir.parent / "kubeconfig", workdir=workdir)
    assert seen["PATH"] == "/nonexistent"
    assert seen["HOME"] == str(workdir)
    assert seen["KUBECACHEDIR"] == str(workdir / ".kube" / "cache")
    assert lines[-1] == str(workdir)


# --- limits ----------------------------------------------------------------------


def test_timeout_kills_the_whole_process_group(tmp_path: Path, workdir: Path) -> None:
    pidfile = tmp_path / "child.pid"
    fake = script(tmp_path, "kubectl", f"/bin/sleep 300 &\necho $! > {pidfile}\n/bin/sleep 300\n")
    started = time.monotonic()
    result = run(
        "kubectl get pods | grep x",
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
        timeout=1.0,
    )
    assert time.monotonic() - started < 10
    assert result.timed_out
    assert result.exit_code is None
    assert result.error == "timed out after 1s; stopped"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_output_cap_stops_endless_output(tmp_path: Path, workdir: Path) -> None:
    fake = script(tmp_path, "kubectl", "while :; do echo 0123456789abcdef; done\n")
    cap = 10_000
    result = run(
        "kubectl get pods",
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
        output_cap=cap,
        timeout=30,
    )
    assert result.truncated
    assert not result.timed_out
    assert result.error == f"output exceeded {cap} bytes; stopped"
    stored = len(result.stdout.encode()) + len(result.stderr.encode())
    assert cap - 100 <= stored <= cap


def test_chunks_arrive_before_the_command_ends(tmp_path: Path, workdir: Path) -> None:
    fake = script(tmp_path, "kubectl", "echo first\n/bin/sleep 1\necho second\n")
    started = time.monotonic()
    arrivals: list[tuple[str, str, float]] = []
    result = run(
        "kubectl get pods",
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
        on_chunk=lambda kind, text: arrivals.append((kind, text, time.monotonic() - started)),
    )
    assert [text for _, text, _ in arrivals] == ["first\n", "second\n"]
    assert arrivals[0][2] < 0.8
    assert result.duration_s >= 1.0
    assert result.first_byte_s is not None and result.first_byte_s < 0.8


def test_multibyte_characters_split_across_reads(tmp_path: Path, workdir: Path) -> None:
    # "é" is two bytes; the script writes them in two separate writes.
    fake = script(tmp_path, "kubectl", "printf 'caf\\303'\n/bin/sleep 0.2\nprintf '\\251\\n'\n")
    result = run("kubectl get pods", tools=ToolPaths(kubectl=fake, yq=fake), workdir=workdir)
    assert result.stdout == "café\n"


# --- exit codes and streams ------------------------------------------------------


def test_pipefail_reports_a_failing_first_stage(tmp_path: Path, workdir: Path) -> None:
    fake = script(tmp_path, "kubectl", "echo Running\nexit 3\n")
    result = run(
        "kubectl get pods | grep Running",
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
    )
    assert (result.exit_code, result.stdout) == (3, "Running\n")


def test_pipefail_reports_the_last_failing_stage(tmp_path: Path, workdir: Path) -> None:
    fake = script(tmp_path, "kubectl", "echo Pending\nexit 3\n")
    result = run(
        "kubectl get pods | grep Running",
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
    )
    assert result.exit_code == 1  # grep found nothing, after kubectl's 3


def test_a_writer_whose_reader_left_early_is_not_a_failure(tmp_path: Path, workdir: Path) -> None:
    fake = script(tmp_path, "kubectl", "while :; do echo line; done\n")
    result = run(
        "kubectl get pods | head -n 1",
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
        timeout=30,
    )
    assert (result.exit_code, result.stdout, result.error) == (0, "line\n", None)


def test_success_is_zero(tmp_path: Path, workdir: Path) -> None:
    fake = script(tmp_path, "kubectl", "echo Running\n")
    result = run(
        "kubectl get pods | grep -c Running",
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
    )
    assert (result.exit_code, result.stdout, result.error) == (0, "1\n", None)


def test_stdout_and_stderr_are_kept_apart(tmp_path: Path, workdir: Path) -> None:
    fake = script(tmp_path, "kubectl", "echo out\necho err >&2\n")
    chunks: list[tuple[str, str]] = []
    result = run(
        "kubectl get pods",
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
        on_chunk=lambda kind, text: chunks.append((kind, text)),
    )
    assert (result.stdout, result.stderr) == ("out\n", "err\n")
    assert sorted(chunks) == [("stderr", "err\n"), ("stdout", "out\n")]


def test_stderr_of_every_stage_is_kept(tmp_path: Path, workdir: Path) -> None:
    fake = script(tmp_path, "kubectl", "echo from-first >&2\necho data\n")
    result = run(
        "kubectl get pods | kubectl apply -f -",
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
    )
    assert result.stderr == "from-first\nfrom-first\n"
    assert result.stdout == "data\n"


def test_missing_program_is_named(tmp_path: Path, workdir: Path) -> None:
    missing = tmp_path / "no-such-kubectl"
    result = run("kubectl get pods", tools=ToolPaths(kubectl=missing, yq=missing), workdir=workdir)
    assert result.exit_code is None
    assert result.error is not None and "kubectl" in result.error


def test_missing_second_stage_stops_the_first(tmp_path: Path, workdir: Path) -> None:
    fake = script(tmp_path, "kubectl", "/bin/sleep 300\n")
    started = time.monotonic()
    result = run(
        "kubectl get pods | yq '.a'",
        tools=ToolPaths(kubectl=fake, yq=tmp_path / "no-such-yq"),
        workdir=workdir,
    )
    assert time.monotonic() - started < 10
    assert result.exit_code is None
    assert result.error is not None and "yq" in result.error


# --- substitutions ---------------------------------------------------------------


def _recorder(tmp_path: Path, *, get_prints: str) -> tuple[ToolPaths, Path]:
    log = tmp_path / "argv.log"
    fake = script(
        tmp_path,
        "kubectl",
        f'echo "$*" >> {log}\nif [ "$1" = get ]; then printf %b \'{get_prints}\'; fi\n',
    )
    return ToolPaths(kubectl=fake, yq=fake), log


def test_unquoted_substitution_is_word_split(tmp_path: Path, workdir: Path) -> None:
    tools, log = _recorder(tmp_path, get_prints="pod/a\\npod/b\\n\\n")
    result = run("kubectl delete $(kubectl get pods -o name)", tools=tools, workdir=workdir)
    assert result.exit_code == 0
    assert log.read_text().splitlines() == ["get pods -o name", "delete pod/a pod/b"]


def test_quoted_substitution_stays_one_word(tmp_path: Path, workdir: Path) -> None:
    log = tmp_path / "argv.log"
    fake = script(
        tmp_path,
        "kubectl",
        f'for a in "$@"; do echo "[$a]" >> {log}; done\n'
        'if [ "$1" = get ]; then printf "a b\\n"; fi\n',
    )
    run(
        'kubectl describe "x-$(kubectl get pods)-y"',
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
    )
    assert log.read_text().splitlines()[-2:] == ["[describe]", "[x-a b-y]"]


def test_substitution_output_is_checked_again(tmp_path: Path, workdir: Path) -> None:
    tools, log = _recorder(tmp_path, get_prints="--kubeconfig=/etc/passwd")
    result = run("kubectl get pods $(kubectl get cm x -o name)", tools=tools, workdir=workdir)
    assert result.exit_code is None
    assert result.error is not None and "`--kubeconfig` is refused" in result.error
    assert log.read_text().splitlines() == ["get cm x -o name"]


def test_substitution_stderr_is_shown(tmp_path: Path, workdir: Path) -> None:
    fake = script(tmp_path, "kubectl", 'if [ "$1" = get ]; then echo oops >&2; fi\n')
    result = run(
        "kubectl describe $(kubectl get pods)",
        tools=ToolPaths(kubectl=fake, yq=fake),
        workdir=workdir,
    )
    assert result.stderr == "oops\n"
    assert result.exit_code == 0
