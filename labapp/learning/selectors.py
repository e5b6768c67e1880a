"""Reads that span labs, progress, sandboxes and runs, for the learner's pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.http import Http404
from django.utils import timezone

from labapp.catalog.modules import all_modules, placement
from labapp.catalog.registry import all_labs, get_lab
from labapp.catalog.rendering import rendered_steps
from labapp.catalog.spec import LabSpec, ModuleSpec, StepSpec
from labapp.checks.base import Check
from labapp.clusters.config import local_cluster
from labapp.clusters.localcluster.audit import AuditRecord, psa_audit_records
from labapp.learning.files import ShownFolder, lab_files
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


# The lab page warns this long before the learner's sandbox expires.
EXPIRY_WARNING = dt.timedelta(minutes=10)


class SandboxExpiry:
    """What the sandbox's status line says of its end (`sandbox` is the view's)."""

    sandbox: Sandbox | None

    @property
    def time_left(self) -> dt.timedelta | None:
        if self.sandbox is None or self.sandbox.expires_at is None:
            return None
        return max(self.sandbox.expires_at - timezone.now(), dt.timedelta(0))

    @property
    def time_left_text(self) -> str:
        """Like "1 h 05 min" or "47 min"; "9:58" in the last ten minutes."""
        left = self.time_left
        if left is None:
            return ""
        seconds = int(left.total_seconds())
        if left <= EXPIRY_WARNING:
            return f"{seconds // 60}:{seconds % 60:02d}"
        minutes = seconds // 60
        return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"

    @property
    def expires_soon(self) -> bool:
        left = self.time_left
        return left is not None and left <= EXPIRY_WARNING


@dataclass
class LabView(SandboxExpiry):
    lab: LabSpec
    progress: LabProgress
    sandbox: Sandbox | None
    steps: list[StepView]
    history: list[str]

    @property
    def namespaces(self) -> dict[str, str]:
        """The learner's names for the lab's namespaces (the lab's own before a sandbox)."""
        if self.sandbox is not None:
            return dict(self.sandbox.namespaces)
        return {n: n for n in self.lab.namespaces}

    @cached_property
    def place(self) -> LabPlace | None:
        """The lab's module, and the labs before and after it there."""
        return lab_place(lab_id=self.lab.id)

    @cached_property
    def audit(self) -> AuditPanel | None:
        return audit_panel(lab=self.lab, sandbox=self.sandbox)

    @cached_property
    def files(self) -> list[ShownFolder]:
        """The Files panel: the workspace as the learner's copy has it."""
        return lab_files(self.lab, self.namespaces)

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
        # Pages never show the kubeconfig: no decrypting it on every poll.
        .defer("learner_kubeconfig")
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
class SandboxView(SandboxExpiry):
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


# -- the module's order, and the audit records panel ---------------------------


@dataclass
class CatalogueSection:
    """A module's labs in its order (or, with no module, the labs outside any)."""

    module: ModuleSpec | None
    rows: list[tuple[LabSpec, LabProgress | None]]


def catalogue(
    *, user: User | AnonymousUser, lab_ids: Sequence[str] | None = None
) -> list[CatalogueSection]:
    """All labs (or a workshop's `lab_ids`), grouped by module, each module in its
    order, then the labs outside any module; with the user's record of each."""
    labs = all_labs()
    wanted = [i for i in (lab_ids if lab_ids is not None else labs) if i in labs]
    started: dict[str, LabProgress] = {}
    if user.is_authenticated:
        started = {p.lab_id: p for p in LabProgress.objects.filter(user_id=user.pk)}
    sections = []
    placed: set[str] = set()
    for module in all_modules():
        ids = [i for i in module.lab_ids if i in wanted]
        if ids:
            sections.append(CatalogueSection(module, [(labs[i], started.get(i)) for i in ids]))
            placed.update(ids)
    rest = [i for i in wanted if i not in placed]
    if rest:
        sections.append(CatalogueSection(None, [(labs[i], started.get(i)) for i in rest]))
    return sections


@dataclass
class LabPlace:
    """Where a lab stands in its module, with the labs before and after it."""

    module: ModuleSpec
    position: int  # 1-based
    previous: LabSpec | None
    next: LabSpec | None

    @property
    def count(self) -> int:
        return len(self.module.lab_ids)


def lab_place(*, lab_id: str) -> LabPlace | None:
    found = placement(lab_id)
    if found is None:
        return None
    labs = all_labs()
    return LabPlace(
        found.module,
        found.position,
        labs.get(found.previous) if found.previous else None,
        labs.get(found.next) if found.next else None,
    )


@dataclass
class AuditPanel:
    """The API server's Pod Security audit records for the learner's own namespaces,
    read by the server (never by the learner) from the local control plane's log."""

    records: list[AuditRecord]
    # False on clusters the lab does not run itself: the text says where their log is.
    readable: bool


def audit_panel(*, lab: LabSpec, sandbox: Sandbox | None) -> AuditPanel | None:
    if not lab.audit_panel:
        return None
    if settings.KUBECONFIG:
        return AuditPanel([], readable=False)
    if sandbox is None or not sandbox.namespaces:
        return AuditPanel([], readable=True)
    log_path = local_cluster().audit_log_path
    return AuditPanel(psa_audit_records(log_path, sandbox.namespaces.values()), readable=True)
