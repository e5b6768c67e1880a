"""Load and validate labs. Every problem is reported with file, line and reason.

Validation collects all problems rather than stopping at the first, so an
author fixes a lab in one pass. Steps are read by `step_reader`, the shared
readers live in `reader_base`, a lab's seed page in `seed`, modules in `modules`.
"""

from __future__ import annotations

import re
from pathlib import Path

from labapp.catalog.modules import in_module_order, read_modules
from labapp.catalog.reader_base import LAB_FILE, LabInvalid, LabProblem
from labapp.catalog.seed import map_seed_command, read_seed
from labapp.catalog.spec import LabSpec, SeedSpec
from labapp.catalog.step_reader import StepReader
from labapp.catalog.yamlsource import LineDict, YamlProblem, load_yaml

__all__ = ["LAB_FILE", "LabInvalid", "LabProblem", "find_lab_dirs", "load_lab", "validate_labs"]

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
    "seed",
    "audit_panel",
}


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
    if (root / LAB_FILE).is_file():
        return labs, sorted(problems)
    modules, found = read_modules(root, [lab_dir.name for lab_dir in dirs])
    return in_module_order(labs, modules), sorted(problems + found)


class _Reader(StepReader):
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
        steps = self._steps(raw, ID_PATTERN)
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
            seed=self._seed(raw, {step.id for step in steps}),
            audit_panel=self._flag(raw, "audit_panel"),
        )

    def _flag(self, raw: LineDict, key: str) -> bool:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            self.problem(raw.line_of(key), f"`{key}` must be true or false")
            return False
        return value

    def _seed(self, raw: LineDict, step_ids: set[str]) -> SeedSpec | None:
        seed = read_seed(
            raw.get("seed"),
            line=raw.line_of("seed"),
            step_ids=step_ids,
            workspace=self.workspace,
            problem=self.problem,
        )
        for command in seed.commands if seed else ():
            mapped = map_seed_command(command.run, self.namespaces, seed.folders if seed else {})
            # Mapped, the page's command must be one the command box accepts.
            self._command_problems(mapped, command.line)
        return seed

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
