"""Typed lab specs, as loaded from `lab_steps/<lab-id>/lab.yaml`. No database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from labapp.checks.base import Check


@dataclass(frozen=True)
class CommandSpec:
    run: str
    # Needs containers that really run (exec, logs): skipped on KWOK, shown with a note.
    real_nodes_only: bool = False


@dataclass(frozen=True)
class StepSpec:
    id: str
    title: str
    text: str  # Markdown, with {{ ns.X }} placeholders
    commands: tuple[CommandSpec, ...]
    checks: tuple[Check, ...]
    hints: tuple[str, ...] = ()
    solution: str = ""
    # Command lines a learner may run in a container at this step (`kubectl
    # exec … -- whoami`). Declaring any grants pods/exec to the sandbox.
    exec_commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabSpec:
    id: str
    title: str
    summary: str
    estimated_minutes: int
    namespaces: tuple[str, ...]
    # Folder name in the learner's workspace -> source folder it is copied from.
    workspace: dict[str, Path]
    setup: tuple[CommandSpec, ...]
    setup_checks: tuple[Check, ...]
    steps: tuple[StepSpec, ...]
    source_dir: Path
    # The only images the pod guard lets run privileged in this lab's sandboxes.
    # On clusters with real nodes such a lab also needs the operator's opt-in.
    privileged_images: tuple[str, ...] = field(default=())

    @property
    def exec_commands(self) -> tuple[str, ...]:
        """Every step's exec commands, each once, in step order."""
        return tuple(dict.fromkeys(c for step in self.steps for c in step.exec_commands))

    def step(self, step_id: str) -> StepSpec:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)
