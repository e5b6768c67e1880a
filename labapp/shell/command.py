"""Run one command line through the restricted shell: parse, then execute."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from labapp.shell.execute import Cancelled, RunResult, ToolPaths, execute
from labapp.shell.learner_user import LearnerUser
from labapp.shell.limits import DEFAULT_LIMITS, ProcessLimits
from labapp.shell.parse import CommandRefused, parse_command
from labapp.shell.policy import NO_LAB, ShellPolicy


def run_command_line(
    line: str,
    *,
    tools: ToolPaths,
    kubeconfig: Path,
    workdir: Path,
    timeout: float = 60.0,
    output_cap: int = 256_000,
    on_chunk: Callable[[str, str], None] | None = None,
    policy: ShellPolicy = NO_LAB,
    limits: ProcessLimits = DEFAULT_LIMITS,
    user: LearnerUser | None = None,
    cancelled: Cancelled | None = None,
) -> RunResult:
    """A refused line comes back as a RunResult with no exit code and the reason.
    The options after `on_chunk` are execute's."""
    try:
        pipeline = parse_command(line, policy)
    except CommandRefused as exc:
        return RunResult(
            exit_code=None,
            stdout="",
            stderr="",
            duration_s=0.0,
            first_byte_s=None,
            timed_out=False,
            truncated=False,
            error=f"refused: {exc.reason}",
        )
    return execute(
        pipeline,
        tools=tools,
        kubeconfig=kubeconfig,
        workdir=workdir,
        timeout=timeout,
        output_cap=output_cap,
        on_chunk=on_chunk,
        policy=policy,
        limits=limits,
        user=user,
        cancelled=cancelled,
    )


def describe_failure(result: RunResult) -> str:
    if result.error:
        return result.error
    tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
    return f"exit {result.exit_code}: " + " / ".join(tail)
