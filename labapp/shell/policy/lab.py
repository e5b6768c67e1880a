"""What a lab adds to the fixed tables, passed in as data: the shell knows no labs.

Today that is the commands `kubectl exec` may run in a container (a step's `exec:`
list). Without a declaration, `kubectl exec` is refused.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ShellPolicy:
    """The sandbox's lab's declarations, as the runs side reads them from its spec."""

    exec_commands: tuple[str, ...] = ()
    # For lab validation only: the loader matches every `kubectl exec` in a step
    # against that step's own `exec:` list, so here any one command passes.
    exec_any_command: bool = False

    @classmethod
    def for_lab(cls, exec_commands: Iterable[str]) -> ShellPolicy:
        return cls(exec_commands=tuple(exec_commands))

    def exec_allows(self, argv: Sequence[str]) -> bool:
        """True when `argv` (the words after `--`) is exactly a declared command."""
        if self.exec_any_command:
            return bool(argv)
        return list(argv) in (_words(command) for command in self.exec_commands)

    def exec_allowance(self) -> str:
        """What the lab lets `kubectl exec` run, for refusals."""
        if self.exec_any_command:
            return "any one command the step declares"
        if not self.exec_commands:
            return "nothing: this lab declares no commands to run in containers"
        return "only " + ", ".join(f"`{command}`" for command in self.exec_commands)


NO_LAB = ShellPolicy()
# For lab validation, which checks each step's exec commands against its own list.
LAB_VALIDATION = ShellPolicy(exec_any_command=True)


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return []  # the loader reports a malformed declaration
