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
class AlternativeSpec:
    """Another way a learner may do a step: rehearsal proves it passes too."""

    title: str
    commands: tuple[CommandSpec, ...]
    line: int = 0


@dataclass(frozen=True)
class MistakeSpec:
    """A wrong attempt learners really make, and the feedback they must get: `check`
    (a check's title) stays failing, and while `when` holds it names the mistake
    with `message`. Rehearsal proves both."""

    title: str
    commands: tuple[CommandSpec, ...]
    check: str
    when: Check
    message: str
    # Seconds rehearsal watches the step after the mistake: it must never pass.
    settle: float = 5.0
    line: int = 0


@dataclass(frozen=True)
class StepSpec:
    id: str
    title: str
    text: str  # Markdown, with {{ ns.X }} placeholders
    commands: tuple[CommandSpec, ...]
    # The checks a mistake names come wrapped (catalog.diagnosis.Diagnosed), so every
    # evaluation (the tracker, Check again, rehearsal) names the mistake it sees.
    checks: tuple[Check, ...]
    hints: tuple[str, ...] = ()
    solution: str = ""
    # Command lines a learner may run in a container at this step (`kubectl
    # exec … -- whoami`). Declaring any grants pods/exec to the sandbox.
    exec_commands: tuple[str, ...] = ()
    alternatives: tuple[AlternativeSpec, ...] = ()
    mistakes: tuple[MistakeSpec, ...] = ()
    # Per check, in order: why it may already hold before the step ("" when it must
    # fail there, which rehearsal proves).
    holds_before: tuple[str, ...] = ()

    def holds_before_reason(self, index: int) -> str:
        return self.holds_before[index] if index < len(self.holds_before) else ""

    def mistake_for(self, message: str) -> MistakeSpec | None:
        """The mistake whose feedback this is (an outcome's detail), if any."""
        for mistake in self.mistakes:
            if mistake.message == message:
                return mistake
        return None


@dataclass(frozen=True)
class SeedCommand:
    """A command as the seed page prints it, and the step it belongs to."""

    step: str
    run: str  # verbatim
    real_nodes_only: bool = False
    line: int = 0


@dataclass(frozen=True)
class SeedSpec:
    """The page a lab comes from: its commands must keep working verbatim in the
    command box once its namespaces and folders are mapped to the learner's."""

    page: str
    # The page's folder prefix -> the workspace folder it maps to.
    folders: dict[str, str]
    commands: tuple[SeedCommand, ...]


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
    seed: SeedSpec | None = None
    # Show the learner the API server's Pod Security audit records for their namespaces.
    audit_panel: bool = False

    @property
    def exec_commands(self) -> tuple[str, ...]:
        """Every step's exec commands, each once, in step order."""
        return tuple(dict.fromkeys(c for step in self.steps for c in step.exec_commands))

    def step(self, step_id: str) -> StepSpec:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


@dataclass(frozen=True)
class ModuleSpec:
    """Labs taught in order, as one module (`lab_steps/modules.yaml`)."""

    id: str
    title: str
    summary: str
    lab_ids: tuple[str, ...]

    def next_after(self, lab_id: str) -> str | None:
        index = self.lab_ids.index(lab_id)
        return self.lab_ids[index + 1] if index + 1 < len(self.lab_ids) else None
