"""Learner processes: resource limits, a uid of the sandbox's own, death with the
worker, and cancelling. Stand-in programs do what a runaway or hostile program
would; ToolPaths is injected, so the executor cannot tell the difference.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labapp.clusters.kubectl import kubectl_path
from labapp.shell.execute import RunResult, ToolPaths, execute
from labapp.shell.learner_user import LearnerUser, can_switch_to, hand_over, let_through, seal
from labapp.shell.limits import DEFAULT_LIMITS, ProcessLimits
from labapp.shell.parse import parse_command

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[3]
MiB = 1024 * 1024


def stand_in(directory: Path, body: str, name: str = "kubectl") -> ToolPaths:
    """A /bin/sh program for every tool; PATH is empty when it runs."""
    path = directory / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return ToolPaths(kubectl=path, yq=path)


def run(tools: ToolPaths, workdir: Path, line: str = "kubectl get pods", **options) -> RunResult:
    return execute(
        parse_command(line),
        tools=tools,
        kubeconfig=workdir.parent / "kubeconfig",
        workdir=workdir,
        **options,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def gone(pid: int) -> bool:
    """Exited: no process, or only a zombie no one has reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


# --- resource limits ----------------------------------------------------------------


def test_a_program_that_spins_is_stopped_by_its_cpu_limit(tmp_path: Path, workdir: Path) -> None:
    tools = stand_in(tmp_path, "while :; do :; done\n")
    started = time.monotonic()
    result = run(tools, workdir, limits=ProcessLimits(cpu_seconds=1), timeout=30)
    assert time.monotonic() - started < 10
    assert not result.timed_out
    assert result.exit_code == 128 + signal.SIGXCPU
    assert result.error == "kubectl was stopped: it used its 1 seconds of CPU time"


def test_a_program_that_writes_a_large_file_is_stopped(tmp_path: Path, workdir: Path) -> None:
    tools = stand_in(tmp_path, "exec /usr/bin/head -c 5000000 /dev/zero > big.bin\n")
    result = run(tools, workdir, limits=ProcessLimits(file_size_bytes=1 * MiB))
    assert result.exit_code == 128 + signal.SIGXFSZ
    assert result.error == "kubectl was stopped: it wrote a file larger than 1 MiB"
    assert (workdir / "big.bin").stat().st_size == 1 * MiB


def test_a_program_cannot_map_more_than_its_address_space(tmp_path: Path, workdir: Path) -> None:
    tools = stand_in(
        tmp_path,
        f"exec /usr/bin/python3 -S -c 'bytearray({512 * MiB}); print(\"allocated\")'\n",
    )
    result = run(tools, workdir, limits=ProcessLimits(address_space_bytes=256 * MiB))
    assert result.exit_code == 1
    assert "MemoryError" in result.stderr and "allocated" not in result.stdout
    assert run(tools, workdir, limits=ProcessLimits()).stdout == "allocated\n"


def test_the_limits_are_what_the_child_sees(tmp_path: Path, workdir: Path) -> None:
    limits = ProcessLimits(cpu_seconds=7, address_space_bytes=900 * MiB, file_size_bytes=3 * MiB)
    tools = stand_in(tmp_path, "/usr/bin/cat /proc/self/limits\n")
    shown = run(tools, workdir, limits=limits).stdout
    rows = {line[:26].strip(): line[26:].split()[:2] for line in shown.splitlines()[1:]}
    assert rows["Max cpu time"] == ["7", "8"]
    assert rows["Max address space"] == [str(900 * MiB)] * 2
    assert rows["Max file size"] == [str(3 * MiB)] * 2
    assert rows["Max core file size"] == ["0", "0"]


def test_real_kubectl_starts_under_the_default_limits(workdir: Path) -> None:
    tools = ToolPaths(kubectl=kubectl_path(), yq=kubectl_path())
    result = run(tools, workdir, "kubectl version --client", limits=DEFAULT_LIMITS)
    assert (result.exit_code, result.error) == (0, None), result.stderr
    assert "Client Version" in result.stdout


def test_a_relative_kubeconfig_still_reaches_the_program_from_its_workspace(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program runs in the workspace; a kubeconfig named relative to the
    caller's directory (`labs rehearse --kubeconfig var/...`) must still be found."""
    (tmp_path / "admin.kubeconfig").write_text("server: https://from-the-callers-dir\n")
    tools = stand_in(tmp_path, 'read -r line < "$KUBECONFIG" && echo "$line"')
    monkeypatch.chdir(tmp_path)
    result = execute(
        parse_command("kubectl get pods"),
        tools=tools,
        kubeconfig=Path("admin.kubeconfig"),
        workdir=Path("work"),
    )
    assert (result.exit_code, result.stdout) == (0, "server: https://from-the-callers-dir\n")


# --- a uid of the sandbox's own -----------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching uids needs root")
ADA, BOB = LearnerUser.for_sandbox(910_001), LearnerUser.for_sandbox(910_002)


@pytest.fixture
def machine() -> Iterator[Path]:
    """A sandbox home and the worker's private files, in a directory of its own
    (let_through opens the search bit of every parent of the home)."""
    root = Path(tempfile.mkdtemp(prefix="labapp-uid-test-"))
    try:
        yield root
    finally:
        shutil.rmtree(root)


def sandbox(home: Path, slug: str, user: LearnerUser) -> Path:
    directory = home / slug
    (directory / "workspace" / "assets").mkdir(parents=True)
    (directory / "workspace" / "assets" / "pod.yaml").write_text("kind: Pod\n")
    (directory / "kubeconfig").write_text(f"token: {slug}-secret\n")
    (directory / "kubeconfig").chmod(0o600)
    hand_over(directory, user)
    return directory


PROBE = """\
/usr/bin/id -u
shift  # `get`
for f in "$@"; do
  if /usr/bin/head -c1 "$f" >/dev/null 2>&1; then echo "read $f"; else echo "denied $f"; fi
done
/usr/bin/ls "$HOME/../.." >/dev/null 2>&1 && echo "listed home" || echo "cannot list home"
/usr/bin/touch .kube-probe && echo "wrote workspace"
"""


@needs_root
def test_a_learner_process_reads_its_own_files_and_nothing_private(
    tmp_path: Path, machine: Path
) -> None:
    home = machine / "sandboxes"
    let_through(home)
    ada, bob = sandbox(home, "ada", ADA), sandbox(home, "bob", BOB)
    admin = machine / "admin.kubeconfig"
    admin.write_text("cluster-admin\n")
    admin.chmod(0o600)
    database = machine / "labapp.sqlite3"
    database.write_text("SQLite format 3\n")  # 0644, as SQLite makes it
    cache = machine / "cache" / "labapp"
    cache.mkdir(parents=True)
    (cache / "state").write_text("worker's cache\n")
    assert seal([database, machine / "cache"]) == [database, machine / "cache"]
    assert can_switch_to(ADA) is None

    # The stand-in lives in pytest's private tmp_path: under the learner's uid it
    # is started from a descriptor, with no path to it.
    private = [bob / "kubeconfig", bob / "workspace/assets/pod.yaml", admin, database]
    tools = stand_in(tmp_path, PROBE)
    own = [ada / "kubeconfig", ada / "workspace/assets/pod.yaml"]
    args = " ".join(str(path) for path in [*own, *private, cache / "state"])
    result = execute(
        parse_command(f"kubectl get {args}"),
        tools=tools,
        kubeconfig=ada / "kubeconfig",
        workdir=ada / "workspace",
        user=ADA,
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(ADA.uid)
    assert lines[1:3] == [f"read {path}" for path in own]
    assert lines[3:8] == [f"denied {path}" for path in [*private, cache / "state"]]
    assert lines[8:] == ["cannot list home", "wrote workspace"]
    assert (ada / "workspace" / ".kube-probe").stat().st_uid == ADA.uid


@needs_root
def test_the_sandbox_directory_is_its_uids_alone(machine: Path) -> None:
    home = machine / "sandboxes"
    let_through(home)
    ada = sandbox(home, "ada", ADA)
    assert stat.S_IMODE(home.stat().st_mode) & 0o007 == 0o001  # others pass, never list
    assert stat.S_IMODE(ada.stat().st_mode) == 0o700
    for path in [ada, ada / "kubeconfig", ada / "workspace", ada / "workspace/assets/pod.yaml"]:
        assert (path.stat().st_uid, path.stat().st_gid) == (ADA.uid, ADA.gid)
    assert stat.S_IMODE((ada / "kubeconfig").stat().st_mode) == 0o600
    assert all(parent.stat().st_mode & stat.S_IXOTH for parent in home.parents)


@needs_root
def test_handing_over_follows_no_link_out_of_the_sandbox(machine: Path) -> None:
    outside = machine / "worker-file"
    outside.write_text("the worker's\n")
    directory = machine / "sandboxes" / "ada"
    (directory / "workspace").mkdir(parents=True)
    (directory / "workspace" / "link").symlink_to(outside)
    os.link(outside, directory / "workspace" / "hard")  # a shared warm-cache file looks so
    (directory / "workspace" / "dir-link").symlink_to(machine, target_is_directory=True)
    hand_over(directory, ADA)
    assert outside.stat().st_uid == 0
    assert machine.stat().st_uid == 0
    assert (directory / "workspace").stat().st_uid == ADA.uid


@needs_root
def test_processes_of_one_uid_are_limited_in_number(tmp_path: Path, workdir: Path) -> None:
    workdir.chmod(0o777)
    tools = stand_in(
        tmp_path,
        """\
        for i in 1 2 3 4 5 6 7 8; do /bin/sleep 3 & done
        wait
        """,
    )
    user = LearnerUser.for_sandbox(910_003)
    result = run(tools, workdir, user=user, limits=ProcessLimits(processes=4), timeout=20)
    assert "fork" in result.stderr.lower() or "resource" in result.stderr.lower(), result.stderr


# --- no process outlives the worker -------------------------------------------------

WORKER = """\
import sys
from pathlib import Path
from labapp.shell.execute import ToolPaths, execute
from labapp.shell.parse import parse_command
tool = Path(sys.argv[1])
work = Path(sys.argv[2])
execute(parse_command("kubectl get pods -w"), tools=ToolPaths(kubectl=tool, yq=tool),
        kubeconfig=work / "kubeconfig", workdir=work, timeout=60)
"""


def test_a_learner_process_dies_with_its_worker(tmp_path: Path, workdir: Path) -> None:
    """The stand-in is in a process group of its own, so killing the worker's group
    would miss it: the parent-death signal is what ends it."""
    pid_file = tmp_path / "pid"
    tools = stand_in(tmp_path, f"echo $$ > {pid_file}\nexec /bin/sleep 60\n")
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tools.kubectl), str(workdir)],
        cwd=REPO,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the stand-in did not start"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert os.getpgid(child) != os.getpgid(worker.pid)
        worker.kill()
        worker.wait()
        assert wait_gone(child, timeout=3), "the learner's process outlived its worker"
    finally:
        worker.kill()
        worker.wait()


# --- cancelling ---------------------------------------------------------------------


def test_a_cancelled_run_stops_its_processes_at_once(tmp_path: Path, workdir: Path) -> None:
    pid_file = tmp_path / "pid"
    tools = stand_in(tmp_path, f"echo started\necho $$ > {pid_file}\nexec /bin/sleep 60\n")
    printed: list[str] = []

    def cancelled() -> bool:
        """The learner presses Cancel once the program has printed and is waiting."""
        return bool(printed) and pid_file.exists() and bool(pid_file.read_text().strip())

    started = time.monotonic()
    result = run(
        tools,
        workdir,
        cancelled=cancelled,
        on_chunk=lambda _kind, text: printed.append(text),
        timeout=30,
    )
    assert time.monotonic() - started < 5
    assert (result.cancelled, result.error, result.exit_code) == (True, "cancelled", None)
    assert result.stdout == "started\n"
    assert wait_gone(int(pid_file.read_text()), timeout=1)


def test_a_cancel_before_the_start_runs_nothing(tmp_path: Path, workdir: Path) -> None:
    log = tmp_path / "ran"
    tools = stand_in(tmp_path, f"echo ran >> {log}\n")
    result = run(tools, workdir, "kubectl get $(kubectl get pods)", cancelled=lambda: True)
    assert result.cancelled and not log.exists()


def test_each_stage_leads_a_session_and_a_cancel_stops_every_stage_and_its_children(
    tmp_path: Path, workdir: Path
) -> None:
    """Each stage is scheduled like a command typed in a terminal of its own (its own
    session, so its own autogroup where the kernel has them); a cancel still stops
    the whole pipeline, including what a stage left running in the background."""
    pids = tmp_path / "pids"
    tools = stand_in(
        tmp_path,
        f"""\
        /bin/sleep 60 &
        echo "$$ $!" >> {pids}
        echo started
        exec /bin/sleep 60
        """,
    )
    seen: dict[int, int] = {}

    def cancelled() -> bool:
        lines = pids.read_text().splitlines() if pids.exists() else []
        if len(lines) < 2:
            return False
        for line in lines:
            stage, background = (int(pid) for pid in line.split())
            seen[stage] = os.getsid(stage)
            seen[background] = os.getsid(background)
        return True

    result = run(tools, workdir, "kubectl get pods | yq '.'", cancelled=cancelled, timeout=30)
    assert result.cancelled
    stages = [int(line.split()[0]) for line in pids.read_text().splitlines()]
    assert [seen[stage] for stage in stages] == stages  # each leads its own session
    assert len(set(stages)) == 2
    for pid in seen:
        assert wait_gone(pid, timeout=1), f"process {pid} outlived the cancel"


def test_a_raised_niceness_reaches_the_process_and_its_session(
    tmp_path: Path, workdir: Path
) -> None:
    """The slow lane's priority: the process's own niceness, and where the kernel
    groups by session (autogroup), the session's, which the parent sets just after
    the start (the stand-in waits for it)."""
    tools = stand_in(
        tmp_path,
        """\
        for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
          [ -e /proc/self/autogroup ] || break
          /bin/grep -q 'nice 10$' /proc/self/autogroup && break
          /bin/sleep 0.1
        done
        /usr/bin/nice
        [ -e /proc/self/autogroup ] && /bin/cat /proc/self/autogroup
        true
        """,
    )
    result = run(tools, workdir, limits=ProcessLimits(niceness=10), timeout=20)
    lines = result.stdout.splitlines()
    assert lines[0] == "10", result.stdout + result.stderr
    if Path("/proc/self/autogroup").exists():
        assert lines[1].endswith(" nice 10"), lines
    assert run(tools, workdir, timeout=20).stdout.splitlines()[0] == "0"
