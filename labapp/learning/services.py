"""Joining, starting labs, and recording progress from check results."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from labapp.catalog.registry import get_lab
from labapp.checks.outcome import Outcome, Status
from labapp.learning.models import Enrolment, LabProgress, StepProgress, Workshop
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.pools import sandbox_claim
from labapp.sandboxes.services import sandbox_create, sandbox_reset, sandbox_teardown


class JoinRefused(ValueError):
    """The learner cannot join; the message is safe to show to anyone."""


# One answer for a code that does not exist and for a workshop that is not open: an
# outsider guessing codes learns nothing from it (and guesses are rate-limited). "Full"
# is said only of an open workshop, whose code an outsider could not use anyway.
NO_OPEN_WORKSHOP = (
    "No open workshop has this join code. Check the code with your instructor: "
    "a code works only while its workshop runs."
)
WORKSHOP_FULL = "This workshop is full. Please tell your instructor."
NAME_NEEDED = "Please give a display name, so your instructor can find you."


def guest_create(*, display_name: str) -> User:
    user = User(username=f"guest-{secrets.token_hex(6)}", first_name=display_name[:80])
    user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def workshop_join(*, user: User | None, join_code: str, display_name: str) -> Enrolment:
    """Enrol `user` (a fresh guest when None). Joining again resumes the enrolment."""
    name = display_name.strip() or ((user.first_name or user.username) if user else "")
    if not name:
        # Asked before the code is looked up, so it says nothing about the code.
        raise JoinRefused(NAME_NEEDED)
    code = join_code.strip().upper()
    workshop = Workshop.objects.select_for_update().filter(join_code=code).first()
    if workshop is None:
        raise JoinRefused(NO_OPEN_WORKSHOP)
    if user is not None:
        existing = Enrolment.objects.filter(workshop=workshop, user=user).first()
        if existing:
            return existing
    if not workshop.is_open():
        raise JoinRefused(NO_OPEN_WORKSHOP)
    if workshop.enrolments.count() >= workshop.capacity:
        raise JoinRefused(WORKSHOP_FULL)
    user = user or guest_create(display_name=name)
    return Enrolment.objects.create(workshop=workshop, user=user, display_name=name[:80])


@transaction.atomic
def lab_start(*, user: User, lab_id: str, workshop: Workshop | None = None) -> LabProgress:
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
    _sandbox_at_the_start(user=user, lab_id=lab.id, workshop=workshop)
    return progress


def _sandbox_at_the_start(*, user: User, lab_id: str, workshop: Workshop | None) -> Sandbox:
    """A warm sandbox from the workshop's pool (or the lab's standing pool) when one
    is ready: a row update. Otherwise one is made."""
    lifetime = workshop.sandbox_lifetime if workshop else _self_paced_idle()
    pools = workshop.pools.filter(lab_id=lab_id) if workshop else None
    claimed = sandbox_claim(owner=user, lab_id=lab_id, lifetime=lifetime, pools=pools)
    return claimed or sandbox_create(owner=user, lab_id=lab_id, lifetime=lifetime)


def _self_paced_idle() -> dt.timedelta:
    return dt.timedelta(minutes=settings.SELF_PACED_IDLE_MINUTES)


def sandbox_keep_alive(*, sandbox: Sandbox) -> None:
    """A run or a visit to the lab page: a self-paced sandbox (no workshop) now expires
    SELF_PACED_IDLE_MINUTES from now. A workshop's sandboxes keep the workshop's
    lifetime, and an expired sandbox stays expired. (One made before self-paced
    sandboxes expired, with no expiry at all, gets one.)"""
    now = timezone.now()
    expires = now + _self_paced_idle()
    self_paced = LabProgress.objects.filter(
        user_id=OuterRef("owner_id"), lab_id=OuterRef("lab_id"), workshop__isnull=True
    )
    # One UPDATE, which writes nothing when the expiry is within a minute of the new one.
    updated = (
        Sandbox.objects.filter(
            Exists(self_paced),
            Q(expires_at__gt=now) | Q(expires_at__isnull=True),
            id=sandbox.id,
            state__in=[Sandbox.State.PROVISIONING, Sandbox.State.READY],
        )
        .exclude(
            expires_at__range=(
                expires - dt.timedelta(minutes=1),
                expires + dt.timedelta(minutes=1),
            )
        )
        .update(expires_at=expires)
    )
    if updated:
        sandbox.expires_at = expires


def progress_record_outcomes(
    *,
    user: Any,
    lab_id: str,
    step_id: str,
    outcomes: list[Outcome],
    attempt: bool = True,
) -> StepProgress | None:
    """Record what the step's checks found now. All pass: the step passes and the
    next one opens. A fail on a learner's `attempt`: failing, one more failure in a
    row. Errors change no state: they are not the learner's doing.

    A passed step is a record: later evaluations never take it back."""
    if not step_id or not outcomes:
        return None
    with transaction.atomic():
        progress = LabProgress.objects.select_for_update().filter(user=user, lab_id=lab_id).first()
        if progress is None:
            return None
        step = progress.steps.get(step_id=step_id)
        if step.state == StepProgress.State.PASSED:
            return step
        now = timezone.now()
        step.last_outcomes = [outcome.to_dict() for outcome in outcomes]
        statuses = {outcome.status for outcome in outcomes}
        if attempt:
            step.attempts += 1
        if step.started_at is None:
            step.started_at = now
        if statuses == {Status.PASS}:
            step.state, step.passed_at = StepProgress.State.PASSED, now
            step.failed_in_a_row = 0
            _open_next_step(progress, step, now)
        elif Status.FAIL in statuses and attempt:
            # Only a learner's own attempt fails a step; the tracker's judgements
            # between attempts show the cluster as it is, and leave the state be.
            step.state = StepProgress.State.FAILING
            step.failed_in_a_row += 1
        step.save()
        return step


def _open_next_step(progress: LabProgress, step: StepProgress, now: dt.datetime) -> None:
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
    if position == 0:
        # Nothing to replay: the lab's start is what a pool keeps warm.
        sandbox_teardown(sandbox_id=sandbox.id)
        return _sandbox_at_the_start(
            user=progress.user, lab_id=progress.lab_id, workshop=progress.workshop
        )
    return sandbox_reset(sandbox_id=sandbox.id, replay_steps=order[:position])


@transaction.atomic
def progress_reset_sandbox(*, progress: LabProgress) -> Sandbox:
    """A fresh sandbox at the lab's start; the record keeps its history."""
    first = get_lab(progress.lab_id).steps[0].id
    return progress_reset_step(progress=progress, step_id=first)
