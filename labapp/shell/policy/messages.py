"""How refusals are worded: the exception, and every message more than one check gives.

A program's own reasons (why `kubectl proxy` or `grep -r` is refused) sit in its
tables; the shapes of the messages that carry them are defined here, once.
"""

from __future__ import annotations

# Stands for the output of a `$(...)` that has not run yet. NUL cannot occur
# in a real argv, so it never collides with anything a learner typed.
DYNAMIC = "\x00"


class CommandRefused(ValueError):
    """The command is outside the allowlist; `reason` says what and why, for the learner."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def shown(word: str) -> str:
    """A word as the learner typed it, with any unknown `$(...)` output marked."""
    return word.replace(DYNAMIC, "$(...)")


def typed_out(what: str) -> CommandRefused:
    return CommandRefused(f"{what} must be typed out, not produced by `$(...)`")


def flag_refused(flag: str, reason: str, *, program: str = "") -> CommandRefused:
    """`grep `-r` is refused: ...`; kubectl's own flags go without the program's name."""
    prefix = f"{program} " if program else ""
    return CommandRefused(f"{prefix}`{flag}` is refused: {reason}")


def flag_not_allowed(program: str, word: str, hint: str) -> CommandRefused:
    """A flag outside an allowlist; `hint` names the ones that are allowed."""
    return CommandRefused(f"{program} flag `{shown(word)}` is not allowed; {hint}")


def needs_value(program: str, word: str) -> CommandRefused:
    return CommandRefused(f"{program} `{shown(word)}` needs a value")


def files_refused(program: str, word: str, advice: str = "") -> CommandRefused:
    """Filters read the pipe; a file argument would read this machine's files."""
    return CommandRefused(
        f"{program} reads from the pipe only: file arguments such as `{shown(word)}` "
        f"are refused{advice}"
    )
