"""Modules: labs taught in order (`lab_steps/modules.yaml`).

    - id: pod-security
      title: Pod Security Standards
      summary: ...
      labs: [pss-privileged, pss-baseline, pss-restricted]

A lab belongs to at most one module. The catalogue, workshops and "next lab"
links follow the module's order; labs outside any module come after, by id.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from labapp.catalog.reader_base import LabProblem
from labapp.catalog.spec import LabSpec, ModuleSpec
from labapp.catalog.yamlsource import LineDict, LineList, YamlProblem, load_yaml

MODULES_FILE = "modules.yaml"
MODULE_KEYS = {"id", "title", "summary", "labs"}
_ID = re.compile(r"^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$")


def read_modules(root: Path, lab_ids: Iterable[str]) -> tuple[list[ModuleSpec], list[LabProblem]]:
    path = root / MODULES_FILE
    if not path.is_file():
        return [], []
    problems: list[LabProblem] = []

    def problem(line: int | None, reason: str) -> None:
        problems.append(LabProblem(path, line, reason))

    try:
        raw = load_yaml(path)
    except YamlProblem as exc:
        problem(exc.line, exc.reason)
        return [], problems
    if not isinstance(raw, LineList):
        problem(1, "modules.yaml must be a list of modules")
        return [], problems
    known = set(lab_ids)
    placed: dict[str, str] = {}
    modules = []
    for index, item in enumerate(raw):
        line = raw.line_of(index)
        if not isinstance(item, LineDict):
            problem(line, "a module must be a mapping with id, title, summary and labs")
            continue
        for key in sorted(set(item) - MODULE_KEYS):
            problem(item.line_of(key), f"unknown module key {key!r}")
        module_id = item.get("id")
        if not isinstance(module_id, str) or not _ID.match(module_id):
            problem(item.line_of("id"), "a module id must be lower-case letters, digits, dashes")
            continue
        texts = {key: item.get(key) for key in ("title", "summary")}
        for key, value in texts.items():
            if not isinstance(value, str) or not value.strip():
                problem(item.line_of(key), f"module {module_id!r} needs a `{key}`")
        labs = item.get("labs")
        if not isinstance(labs, LineList) or not labs:
            problem(item.line_of("labs"), f"module {module_id!r} must list its labs in order")
            continue
        for lab_index, lab_id in enumerate(labs):
            at = labs.line_of(lab_index)
            if lab_id not in known:
                problem(at, f"module {module_id!r} lists an unknown lab {lab_id!r}")
            elif lab_id in placed:
                problem(at, f"lab {lab_id!r} is already in module {placed[lab_id]!r}")
            else:
                placed[lab_id] = module_id
        modules.append(
            ModuleSpec(
                id=module_id,
                title=str(texts["title"] or ""),
                summary=" ".join(str(texts["summary"] or "").split()),
                lab_ids=tuple(str(lab) for lab in labs),
            )
        )
    return modules, problems


def in_module_order(labs: Sequence[LabSpec], modules: Sequence[ModuleSpec]) -> list[LabSpec]:
    """The modules' labs in their order, then every other lab by id."""
    by_id = {lab.id: lab for lab in labs}
    ordered = [by_id[i] for module in modules for i in module.lab_ids if i in by_id]
    placed = {lab.id for lab in ordered}
    return ordered + sorted((lab for lab in labs if lab.id not in placed), key=lambda x: x.id)


@dataclass(frozen=True)
class Placement:
    """Where a lab stands in its module."""

    module: ModuleSpec
    position: int  # 1-based
    previous: str | None
    next: str | None


def all_modules() -> tuple[ModuleSpec, ...]:
    """The deployment's modules (the labs themselves are validated by the registry)."""
    from labapp.catalog.registry import all_labs

    return _modules_for(str(settings.LAB_STEPS_DIR), tuple(all_labs()))


@functools.cache
def _modules_for(root: str, lab_ids: tuple[str, ...]) -> tuple[ModuleSpec, ...]:
    modules, _ = read_modules(Path(root), lab_ids)
    return tuple(modules)


def placement(lab_id: str, modules: Iterable[ModuleSpec] | None = None) -> Placement | None:
    for module in all_modules() if modules is None else modules:
        if lab_id in module.lab_ids:
            index = module.lab_ids.index(lab_id)
            return Placement(
                module,
                index + 1,
                module.lab_ids[index - 1] if index else None,
                module.next_after(lab_id),
            )
    return None


def order_lab_ids(lab_ids: Iterable[str], modules: Iterable[ModuleSpec] | None = None) -> list[str]:
    """`lab_ids` in module order (a workshop's labs), others after in their own order."""
    wanted = list(dict.fromkeys(lab_ids))
    ranked = [i for m in (all_modules() if modules is None else modules) for i in m.lab_ids]
    first = [i for i in ranked if i in wanted]
    return first + [i for i in wanted if i not in first]
