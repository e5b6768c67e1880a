"""The instructor's view of a workshop, built in a constant number of queries."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import OuterRef, Prefetch, Subquery
from django.http import Http404
from django.utils import timezone

from labapp.catalog.registry import get_lab
from labapp.catalog.spec import LabSpec
from labapp.checks.outcome import Outcome, Status
from labapp.learning.models import Enrolment, LabProgress, StepProgress, Workshop
from labapp.runs.models import CommandRun
from labapp.sandboxes.selectors import PoolStatus, pool_statuses

STUCK_FACTOR = 2  # time on a step above twice the cohort's median for it
STUCK_FAILURES = 3  # or this many failed checks in a row


def workshop_for_instructor(*, user: User | AnonymousUser, code: str) -> Workshop:
    """The workshop, if `user` teaches it; 404 otherwise (no hint that it exists)."""
    if not user.is_authenticated:
        raise Http404("no such workshop")
    workshop = Workshop.objects.filter(join_code=code, instructors=user).first()
    if workshop is None:
        raise Http404("no such workshop")
    return workshop


@dataclass
class LearnerRow:
    enrolment: Enrolment
    progress: LabProgress | None
    cells: list[StepProgress | None]
    last_command: str | None
    now: dt.datetime
    stuck_reason: str = ""

    @property
    def current(self) -> StepProgress | None:
        for cell in self.cells:
            if cell and cell.state in (StepProgress.State.WORKING, StepProgress.State.FAILING):
                return cell
        return None

    @property
    def time_on_step(self) -> dt.timedelta | None:
        current = self.current
        return self.now - current.started_at if current and current.started_at else None

    @property
    def time_on_step_text(self) -> str:
        spent = self.time_on_step
        return _minutes(spent) if spent is not None else ""

    @property
    def last_failed_check(self) -> Outcome | None:
        for cell in reversed([c for c in self.cells if c]):
            for outcome in cell.outcomes:
                if outcome.status is Status.FAIL:
                    return outcome
        return None

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cells if c and c.state == StepProgress.State.PASSED)


@dataclass
class StepStats:
    step_id: str
    title: str
    reached: int
    passed: int
    median: dt.timedelta | None


@dataclass
class Dashboard:
    workshop: Workshop
    lab: LabSpec
    rows: list[LearnerRow]
    steps: list[StepStats] = field(default_factory=list)
    pool: PoolStatus | None = None

    @property
    def stuck(self) -> list[LearnerRow]:
        return [row for row in self.rows if row.stuck_reason]


def dashboard(
    *, workshop: Workshop, lab_id: str | None = None, now: dt.datetime | None = None
) -> Dashboard:
    now = now or timezone.now()
    lab = get_lab(lab_id or workshop.lab_ids[0])
    if lab.id not in workshop.lab_ids:
        raise Http404("this workshop has no such lab")
    last_command = (
        CommandRun.objects.filter(sandbox__owner=OuterRef("user"), sandbox__lab_id=lab.id)
        .order_by("-queued_at")
        .values("command")[:1]
    )
    progress = LabProgress.objects.filter(lab_id=lab.id).prefetch_related(
        Prefetch("steps", queryset=StepProgress.objects.order_by("position"))
    )
    enrolments = list(
        workshop.enrolments.select_related("user")
        .annotate(last_command=Subquery(last_command))
        .prefetch_related(Prefetch("user__lab_progress", queryset=progress, to_attr="records"))
        .order_by("display_name")
    )
    order = [step.id for step in lab.steps]
    rows = []
    for enrolment in enrolments:
        records: list[LabProgress] = enrolment.user.records  # type: ignore[attr-defined]  # Prefetch to_attr
        record = records[0] if records else None
        by_id = {cell.step_id: cell for cell in record.steps.all()} if record else {}
        rows.append(
            LearnerRow(
                enrolment, record, [by_id.get(s) for s in order], enrolment.last_command, now
            )
        )
    stats = _step_stats(lab, rows)
    medians = {s.step_id: s.median for s in stats}
    for row in rows:
        row.stuck_reason = stuck_reason(row, medians)
    rows.sort(key=lambda row: (not row.stuck_reason, row.enrolment.display_name.lower()))
    return Dashboard(workshop, lab, rows, stats, workshop_pool(workshop=workshop, lab_id=lab.id))


def workshop_pool(*, workshop: Workshop, lab_id: str) -> PoolStatus | None:
    """The workshop's warm pool for this lab: ready, provisioning, failed, claimed."""
    statuses = pool_statuses(pools=workshop.pools.filter(lab_id=lab_id))
    return statuses[0] if statuses else None


def _step_stats(lab: LabSpec, rows: list[LearnerRow]) -> list[StepStats]:
    stats = []
    for index, step in enumerate(lab.steps):
        cells = [cell for row in rows if (cell := row.cells[index])]
        reached = [c for c in cells if c.state != StepProgress.State.NOT_STARTED]
        passed = [c for c in cells if c.state == StepProgress.State.PASSED]
        durations = [c.duration for c in passed if c.duration is not None]
        median = (
            dt.timedelta(seconds=statistics.median(d.total_seconds() for d in durations))
            if durations
            else None
        )
        stats.append(StepStats(step.id, step.title, len(reached), len(passed), median))
    return stats


def stuck_reason(row: LearnerRow, medians: dict[str, dt.timedelta | None]) -> str:
    """Why this learner looks stuck, or "" when they do not."""
    current = row.current
    if current is None:
        return ""
    if current.failed_in_a_row >= STUCK_FAILURES:
        failed = row.last_failed_check
        what = f": {failed.title}" if failed else ""
        step = current.position + 1
        return f"{current.failed_in_a_row} failed checks in a row on step {step}{what}"
    median, spent = medians.get(current.step_id), row.time_on_step
    if median and spent and spent > STUCK_FACTOR * median:
        return (
            f"{_minutes(spent)} on step {current.position + 1}, over twice the cohort's "
            f"median of {_minutes(median)}"
        )
    return ""


def _minutes(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"
