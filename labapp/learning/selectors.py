"""Reads that span labs, progress, sandboxes and runs, for the learner's pages."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.http import Http404

from labapp.catalog.registry import get_lab
from labapp.catalog.rendering import rendered_steps
from labapp.catalog.spec import LabSpec, StepSpec
from labapp.checks.base import Check
from labapp.learning.models import LabProgress, StepProgress
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox


@dataclass
class StepView:
    spec: StepSpec
    progress: StepProgress
    text: str
    commands: list[tuple[str, bool]]  # (rendered command, real nodes only)
    hints: list[str]
    solution: str | None
    checks: list[Check]  # rendered with the learner's names, for their titles

    @property
    def number(self) -> int:
        return self.progress.position + 1


@dataclass
class LabView:
    lab: LabSpec
    progress: LabProgress
    sandbox: Sandbox | None
    steps: list[StepView]
    history: list[str]

    @property
    def percent(self) -> int:
        passed = sum(1 for s in self.steps if s.progress.state == StepProgress.State.PASSED)
        return round(100 * passed / len(self.steps)) if self.steps else 0

    @property
    def current(self) -> StepView:
        for step in self.steps:
            if step.spec.id == self.progress.current_step_id:
                return step
        return self.steps[0]


def live_sandbox(*, user: User, lab_id: str) -> Sandbox | None:
    return (
        Sandbox.objects.filter(owner=user, lab_id=lab_id)
        .exclude(state=Sandbox.State.DELETED)
        .first()
    )


def lab_progress_for(*, user: User, lab_id: str) -> LabProgress:
    progress = LabProgress.objects.filter(user=user, lab_id=lab_id).first()
    if progress is None:
        raise Http404("this lab has not been started")
    return progress


def lab_view(*, user: User, lab_id: str, with_history: bool = True) -> LabView:
    """The learner's lab: three queries (four `with_history`, for the command box);
    the steps' text comes rendered from the per-process cache (`rendered_steps`)."""
    lab = get_lab(lab_id)
    progress = lab_progress_for(user=user, lab_id=lab_id)
    sandbox = live_sandbox(user=user, lab_id=lab_id)
    names = sandbox.namespaces if sandbox else {n: n for n in lab.namespaces}
    rendered = rendered_steps(lab, names)
    rows = {row.step_id: row for row in progress.steps.all()}
    steps = []
    for spec in lab.steps:
        row, shown = rows[spec.id], rendered[spec.id]
        steps.append(
            StepView(
                spec=spec,
                progress=row,
                text=shown.text,
                commands=list(shown.commands),
                hints=list(shown.hints[: row.hints_revealed]),
                solution=shown.solution if row.solution_revealed else None,
                checks=list(shown.checks),
            )
        )
    history: list[str] = []
    if with_history:
        history = list(
            CommandRun.objects.filter(sandbox__owner=user, sandbox__lab_id=lab_id)
            .order_by("-queued_at")
            .values_list("command", flat=True)[:50]
        )
    return LabView(lab, progress, sandbox, steps, history[::-1])


@dataclass
class SandboxView:
    """What the sandbox's status line shows: no steps, nothing rendered."""

    lab: LabSpec
    sandbox: Sandbox | None


def sandbox_view(*, user: User, lab_id: str) -> SandboxView:
    lab = get_lab(lab_id)
    if not LabProgress.objects.filter(user=user, lab_id=lab_id).exists():
        raise Http404("this lab has not been started")
    return SandboxView(lab, live_sandbox(user=user, lab_id=lab_id))


def recent_runs(*, sandbox: Sandbox | None, limit: int = 5) -> list[CommandRun]:
    if sandbox is None:
        return []
    return list(sandbox.runs.order_by("-queued_at")[:limit])
