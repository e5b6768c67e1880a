"""Joining, starting labs, and recording progress from check results."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from labapp.catalog.registry import get_lab
from labapp.checks.evaluate import evaluate_step
from labapp.checks.outcome import Outcome, Status
from labapp.clusters.config import admin_kubeconfig
from labapp.learning.models import Enrolment, LabProgress, StepProgress, Workshop
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.services import sandbox_create, sandbox_reset

User = get_user_model()


class JoinRefused(ValueError):
    """The join code is wrong, the workshop is closed or full: says which."""


def guest_create(*, display_name: str):
    user = User(username=f"guest-{secrets.token_hex(6)}", first_name=display_name[:80])
    user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def workshop_join(*, user, join_code: str, display_name: str) -> Enrolment:
    """Enrol `user` (a fresh guest when None). Joining again resumes the enrolment."""
    code = join_code.strip().upper()
    workshop = Workshop.objects.select_for_update().filter(join_code=code).first()
    if workshop is None:
        raise JoinRefused(f"no workshop has the join code {code!r}")
    if user is not None:
        existing = Enrolment.objects.filter(workshop=workshop, user=user).first()
        if existing:
            return existing
    if not workshop.is_open():
        raise JoinRefused(
            f"{workshop.title} is not open now (it runs "
            f"{workshop.starts_at:%Y-%m-%d %H:%M} to {workshop.ends_at:%H:%M} UTC)"
        )
    if workshop.enrolments.count() >= workshop.capacity:
        raise JoinRefused(f"{workshop.title} is full ({workshop.capacity} learners)")
    name = display_name.strip()
    if not name:
        raise JoinRefused("please give a display name, so your instructor can find you")
    user = user or guest_create(display_name=name)
    return Enrolment.objects.create(workshop=workshop, user=user, display_name=name[:80])


@transaction.atomic
def lab_start(*, user, lab_id: str, workshop: Workshop | None = None) -> LabProgress:
    """The learner's record for this lab, and a sandbox being made. Idempotent:
    a returning learner gets the same record and the same sandbox."""
    lab = get_lab(lab_id)
    progress, created = LabProgress.objects.get_or_create(
        user=user, lab_id=lab.id, defaults={"workshop": workshop}
    )
    if created:
        now = timezone.now()
        StepProgress.objects.bulk_create(
            [
                StepProgress(
                    lab_progress=progress,
                    step_id=step.id,
                    position=index,
                    state=StepProgress.State.WORKING
                    if index == 0
                    else StepProgress.State.NOT_STARTED,
                    started_at=now if index == 0 else None,
                )
                for index, step in enumerate(lab.steps)
            ]
        )
        progress.current_step_id = lab.steps[0].id
        progress.save(update_fields=["current_step_id"])
    lifetime = workshop.sandbox_lifetime if workshop else None
    sandbox_create(owner=user, lab_id=lab.id, lifetime=lifetime)
    return progress


def progress_record_outcomes(
    *, user, lab_id: str, step_id: str, outcomes: list[Outcome]
) -> StepProgress | None:
    """Update the step from a run's check outcomes: all pass -> passed (and the
    next step opens); any fail -> failing. Errors change nothing: they are
    not the learner's doing."""
    if not step_id or not outcomes:
        return None
    with transaction.atomic():
        progress = LabProgress.objects.select_for_update().filter(user=user, lab_id=lab_id).first()
        if progress is None:
            return None
        step = progress.steps.get(step_id=step_id)
        now = timezone.now()
        step.attempts += 1
        step.last_outcomes = [outcome.to_dict() for outcome in outcomes]
        statuses = {outcome.status for outcome in outcomes}
        if step.started_at is None:
            step.started_at = now
        if statuses == {Status.PASS}:
            if step.state != StepProgress.State.PASSED:
                step.state, step.passed_at = StepProgress.State.PASSED, now
            step.failed_in_a_row = 0
            _open_next_step(progress, step, now)
        elif Status.FAIL in statuses and step.state != StepProgress.State.PASSED:
            step.state = StepProgress.State.FAILING
            step.failed_in_a_row += 1
        step.save()
        return step


def _open_next_step(progress: LabProgress, step: StepProgress, now) -> None:
    following = progress.steps.filter(position__gt=step.position).order_by("position").first()
    if following is None:
        if not progress.steps.exclude(state=StepProgress.State.PASSED).exclude(id=step.id):
            progress.completed_at = progress.completed_at or now
        progress.current_step_id = step.step_id
    else:
        if following.state == StepProgress.State.NOT_STARTED:
            following.state, following.started_at = StepProgress.State.WORKING, now
            following.save(update_fields=["state", "started_at"])
        progress.current_step_id = following.step_id
    progress.save(update_fields=["current_step_id", "completed_at"])


def progress_reveal_hint(*, progress: LabProgress, step_id: str) -> StepProgress:
    step = progress.steps.get(step_id=step_id)
    available = len(get_lab(progress.lab_id).step(step_id).hints)
    if step.hints_revealed < available:
        step.hints_revealed += 1
        step.save(update_fields=["hints_revealed"])
    return step


def progress_reveal_solution(*, progress: LabProgress, step_id: str) -> StepProgress:
    step = progress.steps.get(step_id=step_id)
    step.solution_revealed = True
    step.save(update_fields=["solution_revealed"])
    return step


@transaction.atomic
def progress_reset_step(*, progress: LabProgress, step_id: str) -> Sandbox:
    """Start the step again on a fresh sandbox that has the earlier steps done."""
    lab = get_lab(progress.lab_id)
    order = [step.id for step in lab.steps]
    position = order.index(step_id)
    now = timezone.now()
    for step in progress.steps.filter(position__gte=position):
        step.state = (
            StepProgress.State.WORKING
            if step.position == position
            else StepProgress.State.NOT_STARTED
        )
        step.started_at = now if step.position == position else None
        step.passed_at, step.failed_in_a_row, step.last_outcomes = None, 0, []
        step.save()
    progress.current_step_id, progress.completed_at = step_id, None
    progress.save(update_fields=["current_step_id", "completed_at"])
    sandbox = Sandbox.objects.exclude(state=Sandbox.State.DELETED).get(
        owner=progress.user, lab_id=progress.lab_id
    )
    return sandbox_reset(sandbox_id=sandbox.id, replay_steps=order[:position])


@transaction.atomic
def progress_reset_sandbox(*, progress: LabProgress) -> Sandbox:
    """A fresh sandbox at the lab's start; the record keeps its history."""
    first = get_lab(progress.lab_id).steps[0].id
    return progress_reset_step(progress=progress, step_id=first)


def progress_recheck(*, progress: LabProgress, step_id: str) -> StepProgress:
    """Evaluate the step's checks again, against the output of the step's last
    command: the retry offered when a check could not run."""
    sandbox = Sandbox.objects.exclude(state=Sandbox.State.DELETED).get(
        owner=progress.user, lab_id=progress.lab_id
    )
    last = (
        CommandRun.objects.filter(sandbox=sandbox, step_id=step_id)
        .exclude(state=CommandRun.State.REFUSED)
        .order_by("-queued_at")
        .first()
    )
    outcomes = evaluate_step(
        get_lab(progress.lab_id).step(step_id).checks,
        namespaces=sandbox.namespaces,
        kubeconfig=admin_kubeconfig(),
        stdout=last.stdout if last else None,
        stderr=last.stderr if last else None,
        wait=False,
    )
    step = progress_record_outcomes(
        user=progress.user, lab_id=progress.lab_id, step_id=step_id, outcomes=outcomes
    )
    assert step is not None
    return step
