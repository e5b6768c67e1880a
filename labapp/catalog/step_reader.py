"""Reading a lab's steps: text, commands, checks, hints, and the other ways
(`alternatives`) and the wrong ways (`mistakes`) a learner may take."""

from __future__ import annotations

import shlex
from typing import Any

from labapp.catalog.diagnosis import Diagnosed, Diagnosis
from labapp.catalog.reader_base import ReaderBase
from labapp.catalog.spec import AlternativeSpec, MistakeSpec, StepSpec
from labapp.catalog.yamlsource import LineDict, LineList
from labapp.checks.base import MAX_WAIT, Check
from labapp.lib.placeholders import PLACEHOLDER, render
from labapp.shell.parse import CommandRefused, parse_command
from labapp.shell.policy import LAB_VALIDATION

STEP_KEYS = {
    "id",
    "title",
    "text",
    "commands",
    "checks",
    "hints",
    "solution",
    "exec",
    "alternatives",
    "mistakes",
}
ALTERNATIVE_KEYS = {"title", "commands"}
MISTAKE_KEYS = {"title", "commands", "check", "when", "message", "settle"}
DEFAULT_SETTLE = 5.0


class StepReader(ReaderBase):
    def _steps(self, raw: LineDict, id_pattern: Any) -> tuple[StepSpec, ...]:
        items = self._list(raw, "steps")
        if not items:
            self.problem(raw.line_of("steps"), "a lab needs at least one step")
        steps: list[StepSpec] = []
        ids: dict[str, int] = {}
        for index, item in enumerate(items):
            line = items.line_of(index)
            if not isinstance(item, LineDict):
                self.problem(line, "a step must be a mapping")
                continue
            self._unknown_keys(item, STEP_KEYS, "step")
            step_id = self._string(item, "id")
            if step_id in ids:
                self.problem(
                    item.line_of("id"),
                    f"duplicate step id {step_id!r} (first used on line {ids[step_id]})",
                )
            elif step_id:
                if not id_pattern.match(step_id):
                    self.problem(
                        item.line_of("id"),
                        f"step id {step_id!r} must be lower-case letters, digits and dashes",
                    )
                ids[step_id] = item.line_of("id")
            steps.append(self._step(item, step_id))
        return tuple(steps)

    def _step(self, item: LineDict, step_id: str) -> StepSpec:
        hints = self._list(item, "hints")
        for hint_index, hint in enumerate(hints):
            if not isinstance(hint, str):
                self.problem(hints.line_of(hint_index), "a hint must be a string")
            else:
                self._placeholders(hint, hints.line_of(hint_index))
        solution = self._string(item, "solution", required=False)
        self._placeholders(solution, item.line_of("solution"))
        checks, holds = self._checks_with_reasons(item, "checks", required=True)
        alternatives = self._alternatives(item)
        mistakes = self._mistakes(item, checks)
        exec_commands = self._exec(item, solution)
        return StepSpec(
            id=step_id,
            title=self._string(item, "title"),
            text=self._text(item),
            commands=self._commands(item, "commands"),
            checks=_wrap(checks, mistakes),
            hints=tuple(h for h in hints if isinstance(h, str)),
            solution=solution,
            exec_commands=exec_commands,
            alternatives=alternatives,
            mistakes=mistakes,
            holds_before=holds,
        )

    # -- alternatives and mistakes -------------------------------------------
    def _entries(self, step: LineDict, key: str, known: set[str]) -> list[tuple[LineDict, int]]:
        entries = []
        titles: dict[str, int] = {}
        items = self._list(step, key)
        for index, item in enumerate(items):
            line = items.line_of(index)
            if not isinstance(item, LineDict):
                self.problem(line, f"each of `{key}` must be a mapping with a title and commands")
                continue
            self._unknown_keys(item, known, key[:-1])
            title = self._string(item, "title")
            if title in titles:
                self.problem(
                    item.line_of("title"),
                    f"{key[:-1]} {title!r} is listed twice (first on line {titles[title]})",
                )
            elif title:
                titles[title] = item.line_of("title")
            if not self._list(item, "commands"):
                self.problem(item.line_of("commands"), f"{key[:-1]} {title!r} needs commands")
            entries.append((item, line))
        return entries

    def _alternatives(self, step: LineDict) -> tuple[AlternativeSpec, ...]:
        return tuple(
            AlternativeSpec(
                title=self._string(item, "title"),
                commands=self._commands(item, "commands"),
                line=line,
            )
            for item, line in self._entries(step, "alternatives", ALTERNATIVE_KEYS)
        )

    def _mistakes(self, step: LineDict, checks: tuple[Check, ...]) -> tuple[MistakeSpec, ...]:
        titled = {check.title: check for check in checks if check.title}
        messages: dict[str, int] = {}
        mistakes = []
        for item, line in self._entries(step, "mistakes", MISTAKE_KEYS):
            title = self._string(item, "title")
            named = self._string(item, "check")
            if named and named not in titled:
                known = "; ".join(repr(t) for t in titled) or "none: give the check a `title`"
                self.problem(
                    item.line_of("check"),
                    f"mistake {title!r} names check {named!r}, which is not a titled check "
                    f"of this step (titled checks: {known})",
                )
            message = self._message(item, messages)
            when = self._when(item, line)
            settle = self._settle(item)
            if when is None or not message or named not in titled:
                continue
            mistakes.append(
                MistakeSpec(
                    title=title,
                    commands=self._commands(item, "commands"),
                    check=named,
                    when=when,
                    message=message,
                    settle=settle,
                    line=line,
                )
            )
        return tuple(mistakes)

    def _message(self, item: LineDict, seen: dict[str, int]) -> str:
        message = " ".join(self._string(item, "message").split())
        line = item.line_of("message")
        if PLACEHOLDER.search(message):
            # The same words for every learner, so the instructor can count them.
            self.problem(line, "a mistake's message must not use {{ ns.X }} placeholders")
            return ""
        if message in seen:
            self.problem(line, f"this message is also used on line {seen[message]}")
            return ""
        if message:
            seen[message] = line
        return message

    def _when(self, item: LineDict, line: int) -> Check | None:
        raw = item.get("when")
        if raw is None:
            self.problem(line, "a mistake needs `when`: a check that recognises it")
            return None
        return self._check(raw, item.line_of("when"))

    def _settle(self, item: LineDict) -> float:
        value = item.get("settle", DEFAULT_SETTLE)
        if isinstance(value, bool) or not isinstance(value, int | float):
            value = -1
        if not 0 <= value <= MAX_WAIT:
            self.problem(item.line_of("settle"), f"`settle` must be 0 to {MAX_WAIT:.0f} seconds")
            return DEFAULT_SETTLE
        return float(value)

    # -- exec and text ---------------------------------------------------------
    def _exec(self, step: LineDict, solution: str) -> tuple[str, ...]:
        """The step's `exec` list; every `kubectl exec` in its commands (and in its
        alternatives and mistakes) must be in it."""
        items = self._list(step, "exec")
        declared: dict[str, str] = {}
        for index, item in enumerate(items):
            words = _split(item) if isinstance(item, str) else None
            if not words:
                self.problem(
                    items.line_of(index), "an exec command must be a non-empty command line"
                )
            else:
                declared.setdefault(" ".join(words), item.strip())
        lines = _command_lines(self._list(step, "commands"))
        lines += [(line, step.line_of("solution")) for line in solution.splitlines()]
        for key in ("alternatives", "mistakes"):
            for entry in self._list(step, key):
                if isinstance(entry, LineDict):
                    lines += _command_lines(self._list(entry, "commands"))
        for line, at in lines:
            for run in self._exec_runs(line) if isinstance(line, str) else ():
                if run not in declared:
                    self.problem(
                        at,
                        f"`kubectl exec` runs `{run}` in a container, but the step's `exec` "
                        "does not declare it",
                    )
        return tuple(declared.values())

    def _exec_runs(self, command: str) -> list[str]:
        """What each `kubectl exec … -- COMMAND` in a command line runs."""
        try:
            # Any exec passes the shell here: this is what finds the undeclared ones.
            pipeline = parse_command(render(command, self._standins()), LAB_VALIDATION)
        except (CommandRefused, KeyError):
            return []  # reported with the command itself
        runs = []
        for stage in pipeline.stages:
            words = ["".join(p for p in w if isinstance(p, str)) for w in stage.words]
            if stage.program == "kubectl" and "--" in words:
                split = words.index("--")
                if "exec" in words[:split]:
                    runs.append(" ".join(words[split + 1 :]))
        return runs

    def _text(self, step: LineDict) -> str:
        value = self._string(step, "text")
        if not value.endswith(".md"):
            self._placeholders(value, step.line_of("text"))
            return value
        path = (self.dir / value).resolve()
        if not path.is_file() or not path.is_relative_to(self.dir):
            self.problem(
                step.line_of("text"), f"step text file {value} does not exist in the lab folder"
            )
            return ""
        text = path.read_text()
        self._placeholders(text, 1, path, multiline=True)
        return text


def _wrap(checks: tuple[Check, ...], mistakes: tuple[MistakeSpec, ...]) -> tuple[Check, ...]:
    """Each check a mistake names, wrapped with the mistakes that name it."""
    return tuple(
        Diagnosed.wrap(
            check,
            tuple(
                Diagnosis(mistake.title, mistake.when, mistake.message)
                for mistake in mistakes
                if check.title and mistake.check == check.title
            ),
        )
        for check in checks
    )


def _command_lines(listed: LineList) -> list[tuple[Any, int]]:
    return [
        (item.get("run") if isinstance(item, LineDict) else item, listed.line_of(index))
        for index, item in enumerate(listed)
    ]


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return []
