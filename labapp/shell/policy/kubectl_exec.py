"""`kubectl exec`: one pod, no session, and only a command the lab declares.

RBAC grants pods/exec only to sandboxes whose lab declares exec commands; this is
the shell's half: it says which command, and why anything else is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from labapp.shell.policy.lab import ShellPolicy
from labapp.shell.policy.messages import DYNAMIC, CommandRefused, shown, typed_out

_SHAPE = "kubectl exec POD -- COMMAND"


def check_exec(
    positionals: Sequence[str],
    after_dashes: Sequence[str] | None,
    policy: ShellPolicy,
) -> None:
    """`after_dashes` is None when the line has no `--`."""
    if not policy.exec_commands and not policy.exec_any_command:
        raise CommandRefused(
            "`kubectl exec` is refused: this lab declares no commands to run in containers"
        )
    if after_dashes is None or not after_dashes:
        raise CommandRefused(
            f"`kubectl exec` needs `--` before the command (`{_SHAPE}`); "
            f"this lab lets it run {policy.exec_allowance()}"
        )
    if len(positionals) > 1:
        pods = " ".join(shown(word) for word in positionals)
        raise CommandRefused(
            f"`kubectl exec` runs in one pod, but `{pods}` names more than one (`{_SHAPE}`)"
        )
    if any(DYNAMIC in word for word in after_dashes):
        raise typed_out("the command `kubectl exec` runs")
    if not policy.exec_allows(after_dashes):
        command = " ".join(after_dashes)
        raise CommandRefused(
            f"`kubectl exec … -- {command}` is refused: this lab lets `kubectl exec` run "
            f"{policy.exec_allowance()}"
        )


def interactive_refused(spelling: str, sub: str | None, policy: ShellPolicy) -> CommandRefused:
    reason = (
        f"`{shown(spelling)}` is refused: interactive sessions (`-i`, `-t`, `--stdin`, "
        "`--tty`, `--attach`) are not available here"
    )
    if sub == "exec":
        reason += f"; this lab lets `{_SHAPE}` run {policy.exec_allowance()}"
    return CommandRefused(reason)
