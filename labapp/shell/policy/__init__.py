"""What each allowed program may be asked to do, judged on its arguments.

The same check runs twice: on the parsed command, where a `$(...)` is still
unknown (it stands in as DYNAMIC), and again on the real argv just before a
stage starts, because a substitution's output can carry flags of its own.

Each program's module holds its tables and checks; `flags` reads every
program's flags the same way, and `messages` words the refusals. What a lab
adds (the commands `kubectl exec` may run) comes in as a `ShellPolicy`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from labapp.shell.policy.kubectl import PathArg, check_kubectl, kubectl_path_args
from labapp.shell.policy.lab import LAB_VALIDATION, NO_LAB, ShellPolicy
from labapp.shell.policy.messages import DYNAMIC, CommandRefused, typed_out
from labapp.shell.policy.spelling import check_flag_spelling, describe_char
from labapp.shell.policy.text import check_grep, check_head, check_tail, check_wc
from labapp.shell.policy.yq import YQ_SECURITY_FLAGS, check_yq

__all__ = [
    "DYNAMIC",
    "LAB_VALIDATION",
    "NO_LAB",
    "PROGRAMS",
    "YQ_SECURITY_FLAGS",
    "CommandRefused",
    "PathArg",
    "ShellPolicy",
    "describe_char",
    "kubectl_path_args",
    "program_refused",
    "typed_out",
    "vetted_args",
]

# Each check takes the arguments and returns the ones to run the program with.
# Only kubectl reads the lab's policy.
_CHECKS: dict[str, Callable[[list[str]], list[str]]] = {
    "yq": check_yq,
    "grep": check_grep,
    "head": check_head,
    "tail": check_tail,
    "wc": check_wc,
}
PROGRAMS = ("kubectl", *_CHECKS)


def vetted_args(program: str, args: Sequence[str], policy: ShellPolicy = NO_LAB) -> list[str]:
    """Check `args` against `program`'s policy; return the arguments to run it with."""
    if program not in PROGRAMS:
        raise program_refused(program)
    for arg in args:
        check_flag_spelling(arg)
    if program == "kubectl":
        return check_kubectl(list(args), policy)
    return _CHECKS[program](list(args))


def program_refused(name: str) -> CommandRefused:
    return CommandRefused(f"`{name}` is refused: only {', '.join(PROGRAMS)} can be run here")
