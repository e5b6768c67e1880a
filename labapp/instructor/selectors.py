"""The instructor's view of a workshop, built in a constant number of queries."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
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
    # The known mistake the learner's current step shows now, by its title ("" if none).
    mistake: str = ""

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
    mistakes: list[StepMistakes] = field(default_factory=list)

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
        row.mistake = current_mistake(row, lab)
        row.stuck_reason = stuck_reason(row, medians)
    rows.sort(key=lambda row: (not row.stuck_reason, row.enrolment.display_name.lower()))
    board = Dashboard(workshop, lab, rows, stats, workshop_pool(workshop=workshop, lab_id=lab.id))
    board.mistakes = common_mistakes(lab, rows)
    return board


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
        making = f"; the mistake: {row.mistake}" if row.mistake else ""
        return f"{current.failed_in_a_row} failed checks in a row on step {step}{what}{making}"
    median, spent = medians.get(current.step_id), row.time_on_step
    if median and spent and spent > STUCK_FACTOR * median:
        making = f"; the mistake: {row.mistake}" if row.mistake else ""
        return (
            f"{_minutes(spent)} on step {current.position + 1}, over twice the cohort's "
            f"median of {_minutes(median)}{making}"
        )
    return ""


# -- common mistakes -----------------------------------------------------------


@dataclass
class StepMistakes:
    """What the learners now on one step are getting wrong, most common first."""

    position: int  # 1-based
    step_id: str
    title: str
    learners: int  # on this step now
    mistakes: list[tuple[str, int]]  # (the mistake's title, learners making it now)
    failed_checks: list[tuple[str, int]]  # (the check's title, learners it fails for now)


def current_mistake(row: LearnerRow, lab: LabSpec) -> str:
    """The title of the known mistake the learner's current step shows, or ""."""
    current = row.current
    if current is None:
        return ""
    try:
        step = lab.step(current.step_id)
    except KeyError:
        return ""
    for outcome in current.outcomes:
        if outcome.status is Status.FAIL and outcome.detail:
            mistake = step.mistake_for(outcome.detail)
            if mistake is not None:
                return mistake.title
    return ""


def common_mistakes(lab: LabSpec, rows: list[LearnerRow]) -> list[StepMistakes]:
    """Per step, the cohort's known mistakes and failed checks, counted over the
    learners on that step now (each learner once per mistake or check). Built from
    what is already loaded: no query."""
    found = []
    for position, step in enumerate(lab.steps, 1):
        on_step = [row for row in rows if row.current and row.current.step_id == step.id]
        mistakes: Counter[str] = Counter(row.mistake for row in on_step if row.mistake)
        failed: Counter[str] = Counter()
        for row in on_step:
            assert row.current is not None
            failed.update({o.title for o in row.current.outcomes if o.status is Status.FAIL})
        if mistakes or failed:
            # Most common first; ties in the order the lab declares them.
            mistake_order = [m.title for m in step.mistakes]
            check_order = [check.display_title() for check in step.checks]
            found.append(
                StepMistakes(
                    position,
                    step.id,
                    step.title,
                    len(on_step),
                    _ranked(mistakes, mistake_order),
                    _ranked(failed, check_order),
                )
            )
    return found


def _minutes(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


@dataclass
class LearnerStep:
    progress: StepProgress
    title: str

    @property
    def number(self) -> int:
        return self.progress.position + 1

    @property
    def failing(self) -> list[Outcome]:
        return [o for o in self.progress.outcomes if o.status is not Status.PASS]


@dataclass
class LearnerRecord:
    progress: LabProgress
    lab: LabSpec
    steps: list[LearnerStep]


@dataclass
class HistoryRow:
    """One command a learner ran, with what came of it."""

    run: CommandRun
    lab_title: str
    step_number: int | None
    step_title: str
    passed_step: bool = False  # the step passed after this run, before their next one for it

    @property
    def outcome(self) -> str:
        run = self.run
        if run.state == CommandRun.State.SUCCEEDED:
            return "✓ exit 0"
        if run.state == CommandRun.State.FAILED:
            return f"✗ exit {run.exit_code}" if run.exit_code is not None else "✗ did not finish"
        if run.state == CommandRun.State.REFUSED:
            return "⊘ refused"
        if run.state == CommandRun.State.CANCELLED:
            return "cancelled"
        return "running…"


def learner_history(*, enrolment: Enrolment) -> tuple[list[LearnerRecord], list[HistoryRow]]:
    """A learner's records for the workshop's labs (steps with their titles and
    last check outcomes), and every command they ran in those labs, oldest first."""
    lab_ids = list(enrolment.workshop.lab_ids)
    progress = (
        LabProgress.objects.filter(user=enrolment.user, lab_id__in=lab_ids)
        .prefetch_related(Prefetch("steps", queryset=StepProgress.objects.order_by("position")))
        .order_by("started_at")
    )
    records: list[LearnerRecord] = []
    titles: dict[tuple[str, str], tuple[int, str]] = {}
    passed_at: dict[tuple[str, str], dt.datetime | None] = {}
    for record in progress:
        lab = get_lab(record.lab_id)
        names = {s.id: s.title for s in lab.steps}
        steps = [
            LearnerStep(row, names.get(row.step_id, row.step_id)) for row in record.steps.all()
        ]
        records.append(LearnerRecord(record, lab, steps))
        for step in steps:
            titles[(lab.id, step.progress.step_id)] = (step.number, step.title)
            passed_at[(lab.id, step.progress.step_id)] = step.progress.passed_at
    runs = (
        CommandRun.objects.filter(sandbox__owner=enrolment.user, sandbox__lab_id__in=lab_ids)
        .select_related("sandbox")
        .order_by("queued_at")
    )
    rows: list[HistoryRow] = []
    last_for_step: dict[tuple[str, str], HistoryRow] = {}
    for run in runs:
        key = (run.sandbox.lab_id, run.step_id)
        number: int | None
        number, title = titles.get(key, (None, run.step_id))
        lab_title = next((r.lab.title for r in records if r.lab.id == run.sandbox.lab_id), "")
        rows.append(HistoryRow(run, lab_title or run.sandbox.lab_id, number, title))
        passed = passed_at.get(key)
        if passed is not None and run.queued_at <= passed:
            last_for_step[key] = rows[-1]
    for row in last_for_step.values():
        row.passed_step = True
    return records, rows


def _ranked(counts: Counter[str], order: list[str]) -> list[tuple[str, int]]:
    def rank(title: str) -> int:
        return order.index(title) if title in order else len(order)

    return sorted(counts.items(), key=lambda item: (-item[1], rank(item[0]), item[0]))
