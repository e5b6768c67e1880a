"""Run a parsed Pipeline without a shell: argv lists, a bare environment, each stage in a
session of its own.

Output is streamed as it arrives (stdout of the last stage, stderr of every
stage), a deadline, an output cap and a cancel stop every stage, and exit
codes follow bash's `pipefail`. Every process gets resource limits and dies with
the worker; when a LearnerUser is given, it runs as that uid.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

from labapp.shell.learner_user import LearnerUser
from labapp.shell.limits import (
    DEFAULT_LIMITS,
    ProcessLimits,
    child_setup,
    describe_limit_signal,
    lower_session_priority,
)
from labapp.shell.parse import Pipeline, Stage, Substitution, Word
from labapp.shell.policy import NO_LAB, CommandRefused, ShellPolicy, vetted_args

OnChunk = Callable[[str, str], None]
# Asked between reads; True stops the run as cancelled. It may be slow (a Redis
# read): the caller throttles it.
Cancelled = Callable[[], bool]

_READ_SIZE = 65536
_REAP_GRACE_S = 5.0
# How long a read waits before the cancel question is asked again.
_CANCEL_POLL_S = 0.2
CANCELLED = "cancelled"
# bash splits an unquoted `$(...)` on IFS, which defaults to these.
_IFS = re.compile(r"[ \t\n]+")


def _system_tool(name: str) -> Path:
    found = shutil.which(name)
    return Path(found) if found else Path("/usr/bin") / name


@dataclass(frozen=True)
class ToolPaths:
    kubectl: Path
    yq: Path
    grep: Path = field(default_factory=lambda: _system_tool("grep"))
    head: Path = field(default_factory=lambda: _system_tool("head"))
    tail: Path = field(default_factory=lambda: _system_tool("tail"))
    wc: Path = field(default_factory=lambda: _system_tool("wc"))

    def path_for(self, program: str) -> Path:
        path: Path = getattr(self, program)
        return path


@dataclass
class RunResult:
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    first_byte_s: float | None
    timed_out: bool
    truncated: bool
    error: str | None
    cancelled: bool = False


def execute(
    pipeline: Pipeline,
    *,
    tools: ToolPaths,
    kubeconfig: Path,
    workdir: Path,
    timeout: float = 60.0,
    output_cap: int = 256_000,
    on_chunk: OnChunk | None = None,
    policy: ShellPolicy = NO_LAB,
    limits: ProcessLimits = DEFAULT_LIMITS,
    user: LearnerUser | None = None,
    cancelled: Cancelled | None = None,
) -> RunResult:
    """`policy`: what the sandbox's lab allows beyond the fixed tables; `user`: the
    sandbox's own uid, when the worker may switch to it (see learner_user)."""
    run = _Run(
        tools=tools,
        env=run_environment(kubeconfig=kubeconfig, workdir=workdir),
        workdir=workdir,
        timeout=timeout,
        output_cap=output_cap,
        on_chunk=on_chunk,
        policy=policy,
        limits=limits,
        user=user,
        cancelled=cancelled,
    )
    exit_code: int | None = None
    if not workdir.is_dir():
        run.error = f"the working directory {workdir} does not exist"
    else:
        try:
            with contextlib.suppress(_Stopped):  # run.error says why
                exit_code, _ = run.pipeline(pipeline, capture=False)
        finally:
            run.close_tools()
    return RunResult(
        exit_code=exit_code,
        stdout="".join(run.stdout),
        stderr="".join(run.stderr),
        duration_s=time.monotonic() - run.start,
        first_byte_s=run.first_byte_s,
        timed_out=run.timed_out,
        truncated=run.truncated,
        error=run.error,
        cancelled=run.cancelled,
    )


def run_environment(*, kubeconfig: Path, workdir: Path) -> dict[str, str]:
    """Exactly what the programs see; nothing of the worker's own environment.

    The programs run in the workspace, so paths are made absolute against the
    caller's directory: a relative kubeconfig would otherwise point nowhere, and
    kubectl would quietly try localhost:8080."""
    workdir = workdir.absolute()
    return {
        "KUBECONFIG": str(kubeconfig.absolute()),
        "HOME": str(workdir),
        # No real directory: kubectl finds no plugins, and nothing else is reachable.
        "PATH": "/nonexistent",
        "LANG": "C.UTF-8",
        "KUBECACHEDIR": str(workdir / ".kube" / "cache"),
        # kubectl's preferences file can define aliases and default flags.
        "KUBERC": "off",
        # Two cores are plenty for one learner's kubectl, and keep its threads
        # (which count against the process limit) few on a large machine.
        "GOMAXPROCS": "2",
        # Learner commands are short: collecting garbage less often saved 29 % of
        # `apply -k`'s CPU (bench/cold_path.py), for about 40 MiB more at its peak.
        "GOGC": "400",
    }


class _Stopped(Exception):
    """The run was stopped (timeout, output cap, refusal, missing program); see _Run.error."""


class _Run:
    def __init__(
        self,
        *,
        tools: ToolPaths,
        env: dict[str, str],
        workdir: Path,
        timeout: float,
        output_cap: int,
        on_chunk: OnChunk | None,
        policy: ShellPolicy,
        limits: ProcessLimits,
        user: LearnerUser | None,
        cancelled: Cancelled | None,
    ) -> None:
        self.tools = tools
        self.env = env
        self.workdir = workdir
        self.timeout = timeout
        self.output_cap = output_cap
        self.on_chunk = on_chunk
        self.policy = policy
        self.limits = limits
        self.user = user
        self.is_cancelled = cancelled
        self.setup = child_setup(limits, own_uid=user is not None)
        # Under a learner's uid, tools are started from descriptors the worker
        # opened: the uid needs no path to them (yq lives in the worker's cache).
        self.tool_fds: dict[str, int] = {}
        self.start = time.monotonic()
        self.deadline = self.start + timeout
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.stored = 0  # bytes of stdout and stderr kept so far
        self.first_byte_s: float | None = None
        self.timed_out = False
        self.truncated = False
        self.cancelled = False
        self.error: str | None = None

    # -- pipelines ----------------------------------------------------------------

    def pipeline(self, pipeline: Pipeline, *, capture: bool) -> tuple[int, bytes]:
        """Run one pipeline; its last stdout is streamed, or returned when `capture`."""
        argvs = [self._argv(stage) for stage in pipeline.stages]
        group = _Group()
        try:
            self._check_cancel(group)
            self._spawn(group, argvs, pipeline.stages)
            captured = self._pump(group, capture=capture)
            self._wait(group)
        finally:
            group.kill()
        if self.error is None:
            self.error = group.limit_reached(self.limits)
        return group.exit_code(), captured

    def substitute(self, substitution: Substitution) -> str:
        # Like bash, a failing substitution does not stop the command; its stderr shows why.
        _, captured = self.pipeline(substitution.pipeline, capture=True)
        text = captured.decode("utf-8", errors="replace")
        # bash drops trailing newlines and NULs (which no argv can carry).
        return text.rstrip("\n").replace("\x00", "")

    def _argv(self, stage: Stage) -> list[str]:
        args = [field for word in stage.words for field in self._expand(word)]
        try:
            # Checked again on the real argv: a `$(...)` may have produced a flag.
            run_args = vetted_args(stage.program, args, self.policy)
        except CommandRefused as refused:
            self._stop(f"refused: {refused.reason}")
        return [str(self.tools.path_for(stage.program)), *run_args]

    def _expand(self, word: Word) -> list[str]:
        """A word's argv fields, splitting unquoted `$(...)` output as bash does."""
        fields: list[str] = []
        current: str | None = None
        for piece in word:
            if isinstance(piece, str):
                current = (current or "") + piece
                continue
            text = self.substitute(piece)
            if not piece.split:
                current = (current or "") + text
                continue
            for index, part in enumerate(_IFS.split(text)):
                if index > 0 and current is not None:
                    fields.append(current)
                    current = None
                if part:
                    current = (current or "") + part
        if current is not None:
            fields.append(current)
        return fields

    # -- processes ----------------------------------------------------------------

    def _spawn(self, group: _Group, argvs: list[list[str]], stages: tuple[Stage, ...]) -> None:
        previous: IO[bytes] | None = None
        for argv, stage in zip(argvs, stages, strict=True):
            try:
                executable, pass_fds = self._launch(stage.program)
                proc = subprocess.Popen(
                    argv,
                    executable=executable,
                    pass_fds=pass_fds,
                    stdin=previous if previous is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=self.workdir,
                    env=self.env,
                    # Its own session, as a command typed in a terminal has: where
                    # the kernel groups CPU time by session (autogroup), a learner's
                    # command then gets the share a bare kubectl would, instead of
                    # sharing one with every command of its worker. A session is
                    # also a process group, which one signal stops.
                    start_new_session=True,
                    close_fds=True,
                    preexec_fn=self.setup,
                    **self._identity(),
                )
            except OSError as exc:
                self._stop(f"could not start {stage.program} ({argv[0]}): {exc.strerror or exc}")
            finally:
                if previous is not None:
                    previous.close()  # the next stage holds it now; EOF and SIGPIPE need that
            group.add(proc, stage.program)
            lower_session_priority(proc.pid, self.limits.niceness)
            previous = proc.stdout

    def _identity(self) -> dict[str, Any]:
        """Popen's arguments that switch to the learner's uid (before preexec_fn runs)."""
        if self.user is None:
            return {}
        return {"user": self.user.uid, "group": self.user.gid, "extra_groups": []}

    def _launch(self, program: str) -> tuple[str | None, tuple[int, ...]]:
        """What Popen starts: the tool's path, or under a learner's uid its descriptor."""
        if self.user is None:
            return None, ()
        fd = self.tool_fds.get(program)
        if fd is None:
            fd = os.open(self.tools.path_for(program), os.O_RDONLY | os.O_CLOEXEC)
            self.tool_fds[program] = fd
        # The child keeps the descriptor (a script's interpreter reopens it by name).
        return f"/proc/self/fd/{fd}", (fd,)

    def close_tools(self) -> None:
        for fd in self.tool_fds.values():
            os.close(fd)
        self.tool_fds.clear()

    def _pump(self, group: _Group, *, capture: bool) -> bytes:
        """Read until every stream ends; stream the kept ones, capture a substitution's."""
        captured = bytearray()
        with selectors.DefaultSelector() as selector:
            for proc in group.procs:
                _register(selector, proc.stderr, "stderr")
            last = group.procs[-1].stdout
            _register(selector, last, "capture" if capture else "stdout")
            while selector.get_map():
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    self._time_out(group)
                self._check_cancel(group)
                wait = remaining if self.is_cancelled is None else min(remaining, _CANCEL_POLL_S)
                for key, _ in selector.select(timeout=wait):
                    stream: _Stream = key.data
                    try:
                        data = os.read(key.fd, _READ_SIZE)
                    except BlockingIOError:
                        continue
                    if not data:
                        selector.unregister(key.fd)
                        stream.pipe.close()
                        if stream.kind != "capture":
                            self._emit(stream.kind, stream.decoder.decode(b"", final=True))
                    elif stream.kind == "capture":
                        captured += data
                        if len(captured) > self.output_cap:
                            self._truncate(group)
                    else:
                        self._keep(group, stream, data)
        return bytes(captured)

    def _keep(self, group: _Group, stream: _Stream, data: bytes) -> None:
        if self.first_byte_s is None:
            self.first_byte_s = time.monotonic() - self.start
        room = self.output_cap - self.stored
        over = len(data) > room
        data = data[:room]
        self.stored += len(data)
        self._emit(stream.kind, stream.decoder.decode(data))
        if over:
            self._truncate(group)

    def _emit(self, kind: str, text: str) -> None:
        if not text:
            return
        (self.stdout if kind == "stdout" else self.stderr).append(text)
        if self.on_chunk is not None:
            self.on_chunk(kind, text)

    def _wait(self, group: _Group) -> None:
        # Each stage leads its group: wait without reaping, so that no id can be
        # reused before its group is cleared of anything it left behind.
        while not all(_has_exited(proc.pid) for proc in group.procs):
            if time.monotonic() >= self.deadline:
                self._time_out(group)
            self._check_cancel(group)
            time.sleep(0.005)

    # -- stopping -----------------------------------------------------------------

    def _time_out(self, group: _Group) -> NoReturn:
        self.timed_out = True
        group.kill()
        self._stop(f"timed out after {self.timeout:g}s; stopped")

    def _check_cancel(self, group: _Group) -> None:
        if self.is_cancelled is not None and self.is_cancelled():
            self.cancelled = True
            group.kill()
            self._stop(CANCELLED)

    def _truncate(self, group: _Group) -> NoReturn:
        self.truncated = True
        group.kill()
        self._stop(f"output exceeded {self.output_cap} bytes; stopped")

    def _stop(self, error: str) -> NoReturn:
        self.error = error
        raise _Stopped(error)


class _Group:
    """The processes of one pipeline; each stage leads a process group of its own."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.programs: list[str] = []
        self.killed = False

    def add(self, proc: subprocess.Popen[bytes], program: str) -> None:
        self.procs.append(proc)
        self.programs.append(program)

    def kill(self) -> None:
        """SIGKILL every stage's group (stragglers included), then reap our children."""
        if not self.killed:
            self.killed = True
            for proc in self.procs:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_REAP_GRACE_S)

    def limit_reached(self, limits: ProcessLimits) -> str | None:
        """Why a stage was stopped by one of its resource limits, if one was."""
        for proc, program in zip(self.procs, self.programs, strict=True):
            if proc.returncode is not None and proc.returncode < 0:
                reason = describe_limit_signal(program, -proc.returncode, limits)
                if reason:
                    return reason
        return None

    def exit_code(self) -> int:
        """pipefail: the last non-zero status; a writer whose reader left (SIGPIPE) is fine."""
        code = 0
        for index, proc in enumerate(self.procs):
            status = proc.returncode
            if status is None:
                continue
            if status < 0:
                if -status == signal.SIGPIPE and index < len(self.procs) - 1:
                    continue
                status = 128 - status
            if status != 0:
                code = status
        return code


@dataclass
class _Stream:
    kind: str
    pipe: IO[bytes]
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )


def _register(selector: selectors.BaseSelector, pipe: IO[bytes] | None, kind: str) -> None:
    assert pipe is not None  # every stage is started with PIPEs
    os.set_blocking(pipe.fileno(), False)
    selector.register(pipe.fileno(), selectors.EVENT_READ, _Stream(kind, pipe))


def _has_exited(pid: int) -> bool:
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    try:
        return os.waitid(os.P_PID, pid, flags) is not None
    except ChildProcessError:
        return True
