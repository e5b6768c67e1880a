"""Load and validate labs. Every problem is reported with file, line and reason.

Validation collects all problems rather than stopping at the first, so an
author fixes a lab in one pass.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from labapp.catalog.commands import command_problems
from labapp.catalog.spec import CommandSpec, LabSpec, StepSpec
from labapp.catalog.yamlsource import LineDict, LineList, YamlProblem, load_yaml
from labapp.checks.base import Check, CheckSpecError
from labapp.checks.kinds import parse_check
from labapp.lib.placeholders import line_at, placeholder_problems, render
from labapp.shell.parse import CommandRefused, parse_command

LAB_FILE = "lab.yaml"
ID_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$")
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")
# A container image reference: [registry[:port]/]path[:tag][@digest].
_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
IMAGE_PATTERN = re.compile(
    rf"{_HOST}{_PART}(?:/{_PART})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?"
)
LAB_KEYS = {
    "id",
    "title",
    "summary",
    "estimated_minutes",
    "namespaces",
    "workspace",
    "setup",
    "setup_checks",
    "steps",
    "privileged_images",
}
STEP_KEYS = {"id", "title", "text", "commands", "checks", "hints", "solution", "exec"}


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


def find_lab_dirs(root: Path) -> list[Path]:
    if (root / LAB_FILE).is_file():
        return [root]
    return sorted(p.parent for p in root.glob(f"*/{LAB_FILE}"))


def load_lab(lab_dir: Path) -> LabSpec:
    spec, problems = _Reader(lab_dir).read()
    if problems or spec is None:
        raise LabInvalid(problems)
    return spec


def validate_labs(root: Path) -> tuple[list[LabSpec], list[LabProblem]]:
    labs, problems = [], []
    dirs = find_lab_dirs(root)
    if not dirs:
        return [], [LabProblem(root, None, f"no {LAB_FILE} found here or in its sub-folders")]
    seen: dict[str, Path] = {}
    for lab_dir in dirs:
        spec, found = _Reader(lab_dir).read()
        problems += found
        if spec:
            if spec.id in seen:
                problems.append(
                    LabProblem(
                        lab_dir / LAB_FILE,
                        None,
                        f"lab id {spec.id!r} is also used by {seen[spec.id]}",
                    )
                )
            seen[spec.id] = lab_dir
            labs.append(spec)
    return labs, sorted(problems)


class _Reader:
    def __init__(self, lab_dir: Path) -> None:
        self.dir = lab_dir.resolve()
        self.file = self.dir / LAB_FILE
        self.problems: list[LabProblem] = []
        self.namespaces: set[str] = set()
        self.workspace: dict[str, Path] = {}

    def problem(self, line: int | None, reason: str, path: Path | None = None) -> None:
        self.problems.append(LabProblem(path or self.file, line, reason))

    def read(self) -> tuple[LabSpec | None, list[LabProblem]]:
        if not self.file.is_file():
            self.problem(None, f"{LAB_FILE} is missing")
            return None, self.problems
        try:
            raw = load_yaml(self.file)
        except YamlProblem as exc:
            self.problem(exc.line, exc.reason)
            return None, self.problems
        if not isinstance(raw, LineDict):
            self.problem(1, "a lab file must be a mapping")
            return None, self.problems
        for key in sorted(set(raw) - LAB_KEYS):
            if key == "needs":
                self.problem(
                    raw.line_of(key),
                    "`needs` is gone: a lab that runs privileged pods lists their images "
                    "in `privileged_images`",
                )
                continue
            self.problem(raw.line_of(key), f"unknown key {key!r}")
        spec = self._lab(raw)
        return (spec if not self.problems else None), self.problems

    # -- fields ---------------------------------------------------------------
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

    def _lab(self, raw: LineDict) -> LabSpec:
        lab_id = self._string(raw, "id")
        if lab_id and not ID_PATTERN.match(lab_id):
            self.problem(
                raw.line_of("id"),
                f"lab id {lab_id!r} must be lower-case letters, digits and dashes",
            )
        if lab_id and lab_id != self.dir.name:
            self.problem(
                raw.line_of("id"),
                f"lab id {lab_id!r} differs from its folder name {self.dir.name!r}",
            )
        minutes = raw.get("estimated_minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
            self.problem(
                raw.line_of("estimated_minutes"),
                "`estimated_minutes` must be a positive whole number",
            )
            minutes = 0
        namespaces = self._list(raw, "namespaces")
        for index, name in enumerate(namespaces):
            if not isinstance(name, str) or not NAMESPACE_PATTERN.match(name):
                self.problem(
                    namespaces.line_of(index),
                    f"namespace {name!r} is not a valid name (lower-case, at most 42 characters)",
                )
            elif name in self.namespaces:
                self.problem(namespaces.line_of(index), f"namespace {name!r} is listed twice")
            else:
                self.namespaces.add(name)
        if not self.namespaces:
            self.problem(raw.line_of("namespaces"), "a lab must declare at least one namespace")
        self._workspace(raw)
        setup = self._commands(raw, "setup")
        setup_checks = self._checks(raw, "setup_checks", required=False)
        steps = self._steps(raw)
        return LabSpec(
            id=lab_id,
            title=self._string(raw, "title"),
            summary=self._string(raw, "summary"),
            estimated_minutes=minutes,
            namespaces=tuple(namespaces),
            workspace=self.workspace,
            setup=setup,
            setup_checks=setup_checks,
            steps=steps,
            source_dir=self.dir,
            privileged_images=self._privileged_images(raw),
        )

    def _privileged_images(self, raw: LineDict) -> tuple[str, ...]:
        images = self._list(raw, "privileged_images")
        found: list[str] = []
        for index, image in enumerate(images):
            line = images.line_of(index)
            if not isinstance(image, str) or not IMAGE_PATTERN.fullmatch(image):
                self.problem(line, f"privileged image {image!r} is not an image reference")
            elif "@" not in image and ":" not in image.rsplit("/", 1)[-1]:
                # The guard matches the exact reference: a floating tag could change under it.
                self.problem(line, f"privileged image {image!r} must name a tag or a digest")
            elif image in found:
                self.problem(line, f"privileged image {image!r} is listed twice")
            else:
                found.append(image)
        return tuple(found)

    def _workspace(self, raw: LineDict) -> None:
        value = raw.get("workspace") or {}
        if not isinstance(value, LineDict):
            if value:
                self.problem(
                    raw.line_of("workspace"), "`workspace` must map folder names to source folders"
                )
            return
        for name, source in value.items():
            line = value.line_of(name)
            if not isinstance(name, str) or not ID_PATTERN.match(name):
                self.problem(line, f"workspace folder {name!r} must be a plain lower-case name")
                continue
            path = (self.dir / str(source)).resolve()
            if not path.is_dir():
                self.problem(line, f"workspace folder {name!r}: source {source} is not a folder")
                continue
            self.workspace[name] = path

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

    def _command_problems(self, command: str, line: int) -> None:
        self._placeholders(command, line)
        # Render with stand-in names so the shell parser sees a real command.
        standins = {name: f"{name}-x0000" for name in self.namespaces}
        try:
            rendered = render(command, standins)
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

    def _checks(self, raw: LineDict, key: str, *, required: bool) -> tuple[Check, ...]:
        items = self._list(raw, key)
        if required and not items:
            self.problem(
                raw.line_of(key) if key in raw else raw.line,
                f"step {raw.get('id')!r} has no checks; every step needs at least one",
            )
        checks = []
        for index, item in enumerate(items):
            line = items.line_of(index)
            try:
                check = parse_check(item)
            except CheckSpecError as exc:
                at = item.line_of(exc.key) if isinstance(item, LineDict) and exc.key else line
                self.problem(at, exc.reason)
                continue
            for text in check.templated():
                self._placeholders(text, line)
            checks.append(check)
        return tuple(checks)

    def _steps(self, raw: LineDict) -> tuple[StepSpec, ...]:
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
            for key in sorted(set(item) - STEP_KEYS):
                self.problem(item.line_of(key), f"unknown step key {key!r}")
            step_id = self._string(item, "id")
            if step_id in ids:
                self.problem(
                    item.line_of("id"),
                    f"duplicate step id {step_id!r} (first used on line {ids[step_id]})",
                )
            elif step_id:
                if not ID_PATTERN.match(step_id):
                    self.problem(
                        item.line_of("id"),
                        f"step id {step_id!r} must be lower-case letters, digits and dashes",
                    )
                ids[step_id] = item.line_of("id")
            hints = self._list(item, "hints")
            for hint_index, hint in enumerate(hints):
                if not isinstance(hint, str):
                    self.problem(hints.line_of(hint_index), "a hint must be a string")
                else:
                    self._placeholders(hint, hints.line_of(hint_index))
            solution = self._string(item, "solution", required=False)
            self._placeholders(solution, item.line_of("solution"))
            exec_commands = self._exec(item, solution)
            steps.append(
                StepSpec(
                    id=step_id,
                    title=self._string(item, "title"),
                    text=self._text(item),
                    commands=self._commands(item, "commands"),
                    checks=self._checks(item, "checks", required=True),
                    hints=tuple(h for h in hints if isinstance(h, str)),
                    solution=solution,
                    exec_commands=exec_commands,
                )
            )
        return tuple(steps)

    def _exec(self, step: LineDict, solution: str) -> tuple[str, ...]:
        """The step's `exec` list; every `kubectl exec` in its commands must be in it."""
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
        listed = self._list(step, "commands")
        lines = [
            (item.get("run") if isinstance(item, LineDict) else item, listed.line_of(index))
            for index, item in enumerate(listed)
        ]
        lines += [(line, step.line_of("solution")) for line in solution.splitlines()]
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
        standins = {name: f"{name}-x0000" for name in self.namespaces}
        try:
            pipeline = parse_command(render(command, standins))
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


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return []
