"""Resource limits for every learner process, and the code that sets them in the child.

The values are parameters with defaults (the shell knows no settings). Measured on
kubectl v1.37 (`apply -k` of a lab folder, `get -w`): at most 1.4 GiB of virtual
memory (Go reserves address space it never touches; it uses about 110 MiB), 5-6
threads with GOMAXPROCS=2, 0.8 CPU-seconds, and discovery-cache files up to 1.6 MB.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import resource
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

_MiB = 1024 * 1024


@dataclass(frozen=True)
class ProcessLimits:
    # A lab's heaviest command takes about 1 CPU-second; a run's wall-clock timeout
    # stops a slow one, this stops one that spins. Non-Go programs get SIGXCPU at
    # the limit; Go ignores it and gets SIGKILL a second later.
    cpu_seconds: int = 30
    # Far above kubectl's 1.4 GiB, because Go's start-up under an address-space
    # limit is not monotonic (kubectl v1.37 starts under 1 GiB and 1.5 GiB, not
    # 1.25 GiB): this catches a runaway, not normal use.
    address_space_bytes: int = 4096 * _MiB
    # kubectl writes only its discovery cache (largest file 1.6 MB).
    file_size_bytes: int = 64 * _MiB
    # Processes and threads of the learner's uid: a pipeline of 8 kubectl stages
    # with ~8 threads each, for 3 runs at once, fits. It counts every process of the
    # uid, so it is set only when the process runs as the sandbox's own uid.
    processes: int = 256
    # CPU priority: raised niceness for commands that may wait (the slow lane), so that
    # the pages and quick commands go first when the machine is busy. 0 leaves it.
    niceness: int = 0


DEFAULT_LIMITS = ProcessLimits()

_PR_SET_PDEATHSIG = 1


def child_setup(limits: ProcessLimits, *, own_uid: bool) -> Callable[[], None]:
    """The function the child runs between fork and exec (Popen's preexec_fn, which
    runs after the uid switch: a uid change would clear the parent-death signal).

    Everything it needs is looked up here, in the parent: the child of a forked
    process must not import or allocate much.
    """
    parent = os.getpid()
    prctl = _prctl()
    wanted = [
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (resource.RLIMIT_AS, limits.address_space_bytes, limits.address_space_bytes),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes),
        # A crashing kubectl must not write its memory (the token) to disk.
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if own_uid:
        wanted.append((resource.RLIMIT_NPROC, limits.processes, limits.processes))
    rlimits = [(which, *_within_hard(which, soft, hard)) for which, soft, hard in wanted]

    def setup() -> None:
        if prctl is not None:
            # Killed with the worker: the signal comes when the thread that started
            # this process ends, and that thread waits for it (execute returns only
            # once the group is gone), so it ends only when the worker dies.
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)  # the worker died before the signal was armed
        for which, soft, hard in rlimits:
            resource.setrlimit(which, (soft, hard))
        if limits.niceness:
            os.nice(limits.niceness)

    return setup


def lower_session_priority(pid: int, niceness: int) -> None:
    """Where the kernel groups CPU time by session (autogroup), a process's own
    niceness only ranks it inside its session: the session's own niceness is what
    ranks it against the pages. Set from the parent (after the uid switch the child
    may not write its own /proc files); a kernel without autogroup has no such file."""
    if niceness:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/autogroup", "w") as autogroup:
            autogroup.write(str(niceness))


def _within_hard(which: int, soft: int, hard: int) -> tuple[int, int]:
    """An unprivileged child cannot raise a hard limit: never ask for more than it has."""
    _, current = resource.getrlimit(which)
    if current == resource.RLIM_INFINITY:
        return soft, hard
    return min(soft, current), min(hard, current)


@functools.cache
def _prctl() -> Callable[[int, int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    function: Callable[[int, int, int, int, int], int] = libc.prctl
    return function


def describe_limit_signal(program: str, signum: int, limits: ProcessLimits) -> str | None:
    """Why a process that died of `signum` was stopped, if a limit of ours did it."""
    if signum == signal.SIGXCPU:
        return f"{program} was stopped: it used its {limits.cpu_seconds} seconds of CPU time"
    if signum == signal.SIGXFSZ:
        return (
            f"{program} was stopped: it wrote a file larger than "
            f"{limits.file_size_bytes // _MiB} MiB"
        )
    return None
