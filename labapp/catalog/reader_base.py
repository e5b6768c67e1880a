"""What every part of reading a lab file shares: the problems found so far (each
with file and line), and readers for strings, lists, commands and checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labapp.catalog.commands import command_problems
from labapp.catalog.spec import CommandSpec
from labapp.catalog.yamlsource import LineDict, LineList
from labapp.checks.base import Check, CheckSpecError
from labapp.checks.kinds import parse_check
from labapp.lib.placeholders import line_at, placeholder_problems, render

LAB_FILE = "lab.yaml"


@dataclass(frozen=True, order=True)
class LabProblem:
    path: Path
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.reason}"


class LabInvalid(ValueError):
    def __init__(self, problems: list[LabProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class ReaderBase:
    def __init__(self, lab_dir: Path) -> None:
        self.dir = lab_dir.resolve()
        self.file = self.dir / LAB_FILE
        self.problems: list[LabProblem] = []
        self.namespaces: set[str] = set()
        self.workspace: dict[str, Path] = {}

    def problem(self, line: int | None, reason: str, path: Path | None = None) -> None:
        self.problems.append(LabProblem(path or self.file, line, reason))

    def _string(self, raw: LineDict, key: str, *, required: bool = True) -> str:
        value = raw.get(key)
        if value is None:
            if required:
                self.problem(raw.line, f"`{key}` is required")
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.problem(raw.line_of(key), f"`{key}` must be a non-empty string")
            return ""
        return value

    def _list(self, raw: LineDict, key: str) -> LineList:
        value = raw.get(key)
        if value is None:
            empty = LineList()
            empty.line, empty.item_lines = raw.line_of(key), []
            return empty
        if not isinstance(value, LineList):
            self.problem(raw.line_of(key), f"`{key}` must be a list")
            empty = LineList()
            empty.line, empty.item_lines = raw.line_of(key), []
            return empty
        return value

    def _unknown_keys(self, raw: LineDict, known: set[str], what: str) -> None:
        for key in sorted(set(raw) - known):
            self.problem(raw.line_of(key), f"unknown {what} key {key!r}")

    def _commands(self, raw: LineDict, key: str) -> tuple[CommandSpec, ...]:
        items = self._list(raw, key)
        commands = []
        for index, item in enumerate(items):
            line = items.line_of(index)
            if isinstance(item, str):
                command = CommandSpec(item)
            elif isinstance(item, LineDict) and isinstance(item.get("run"), str):
                extra = set(item) - {"run", "real_nodes_only"}
                if extra:
                    self.problem(line, f"command has unknown keys: {', '.join(sorted(extra))}")
                command = CommandSpec(item["run"], bool(item.get("real_nodes_only", False)))
            else:
                self.problem(line, "a command must be a string or a mapping with `run`")
                continue
            self._command_problems(command.run, line)
            commands.append(command)
        return tuple(commands)

    def _standins(self) -> dict[str, str]:
        # Stand-in names, so the shell parser sees a real command.
        return {name: f"{name}-x0000" for name in self.namespaces}

    def _command_problems(self, command: str, line: int) -> None:
        self._placeholders(command, line)
        try:
            rendered = render(command, self._standins())
        except KeyError:
            return  # already reported as a placeholder problem
        for reason in command_problems(rendered, self.workspace):
            self.problem(line, reason)

    def _placeholders(
        self, text: str, line: int, path: Path | None = None, multiline: bool = False
    ) -> None:
        for found in placeholder_problems(text, self.namespaces):
            at = line + line_at(text, found.offset) - 1 if multiline else line
            self.problem(at, found.reason, path)

    def _check(self, item: Any, line: int) -> Check | None:
        """One check from its mapping, or None after reporting why it is malformed."""
        try:
            check = parse_check(item)
        except CheckSpecError as exc:
            at = item.line_of(exc.key) if isinstance(item, LineDict) and exc.key else line
            self.problem(at, exc.reason)
            return None
        for text in check.templated():
            self._placeholders(text, line)
        return check

    def _checks(self, raw: LineDict, key: str, *, required: bool) -> tuple[Check, ...]:
        checks, _ = self._checks_with_reasons(raw, key, required=required, reasons=False)
        return checks

    def _checks_with_reasons(
        self, raw: LineDict, key: str, *, required: bool, reasons: bool = True
    ) -> tuple[tuple[Check, ...], tuple[str, ...]]:
        """A list of checks; with `reasons`, each may say why it may `already_hold`
        before its step (rehearsal otherwise requires it to fail there)."""
        items = self._list(raw, key)
        if required and not items:
            self.problem(
                raw.line_of(key) if key in raw else raw.line,
                f"step {raw.get('id')!r} has no checks; every step needs at least one",
            )
        checks: list[Check] = []
        holds: list[str] = []
        for index, item in enumerate(items):
            line = items.line_of(index)
            reason = ""
            if reasons and isinstance(item, LineDict) and "already_holds" in item:
                reason = item["already_holds"]
                if not isinstance(reason, str) or not reason.strip():
                    self.problem(
                        item.line_of("already_holds"),
                        "`already_holds` must say why the check may pass before its step",
                    )
                    reason = ""
                item = _without(item, "already_holds")
            check = self._check(item, line)
            if check is not None:
                checks.append(check)
                holds.append(reason.strip())
        return tuple(checks), tuple(holds)


def _without(raw: LineDict, key: str) -> LineDict:
    copy = LineDict({k: v for k, v in raw.items() if k != key})
    copy.line, copy.key_lines = raw.line, raw.key_lines
    return copy
