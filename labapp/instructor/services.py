"""What an instructor can do to a workshop and its learners."""

from __future__ import annotations

import datetime as dt
import secrets
import string

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from labapp.catalog.registry import get_lab
from labapp.instructor.roles import INSTRUCTORS_GROUP
from labapp.learning.models import Enrolment, LabProgress, Workshop
from labapp.learning.services import progress_reset_sandbox, progress_reset_step
from labapp.live.broadcasts import broadcast_publish
from labapp.sandboxes.models import Sandbox, SandboxPool
from labapp.sandboxes.pools import pool_create, pools_close, pools_extend, workshop_pool_size

CODE_ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in "0O1I")


def instructor_grant(*, user: User) -> None:
    """The user may now create and run workshops."""
    group, _ = Group.objects.get_or_create(name=INSTRUCTORS_GROUP)
    user.groups.add(group)
    user.__dict__.pop("_labapp_is_instructor", None)


def instructor_revoke(*, user: User) -> None:
    """No more teaching; their workshops stay, unreachable until the role is back."""
    user.groups.remove(*Group.objects.filter(name=INSTRUCTORS_GROUP))
    user.__dict__.pop("_labapp_is_instructor", None)


@transaction.atomic
def workshop_create(
    *,
    instructor: User | None,
    title: str,
    lab_ids: list[str],
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    capacity: int = 100,
    sandbox_lifetime_minutes: int = 240,
) -> Workshop:
    if not lab_ids:
        raise ValueError("a workshop needs at least one lab")
    for lab_id in lab_ids:
        get_lab(lab_id)  # LabNotFound names an unknown lab
    if ends_at <= starts_at:
        raise ValueError("a workshop must end after it starts")
    if capacity <= 0:
        raise ValueError("a workshop's capacity must be at least 1")
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
        if not Workshop.objects.filter(join_code=code).exists():
            break
    workshop = Workshop.objects.create(
        title=title,
        join_code=code,
        lab_ids=lab_ids,
        starts_at=starts_at,
        ends_at=ends_at,
        capacity=capacity,
        sandbox_lifetime_minutes=sandbox_lifetime_minutes,
    )
    if instructor is not None:
        workshop.instructors.add(instructor)
    # Its warm pools: one per lab, filled ahead of its start (labapp/sandboxes/pools.py).
    size = workshop_pool_size(capacity=capacity)
    if size:
        workshop.pools.set(
            pool_create(
                lab_id=lab_id,
                title=f"{title} ({code})",
                size=size,
                capacity=capacity,
                starts_at=starts_at,
                ends_at=ends_at,
            )
            for lab_id in dict.fromkeys(lab_ids)
        )
    return workshop


def workshop_broadcast(*, workshop: Workshop, message: str) -> None:
    """Store the message (pages show it) and push it to every open learner page.
    An empty message clears it, on the pages too."""
    Workshop.objects.filter(id=workshop.id).update(
        broadcast=message, broadcast_at=timezone.now() if message else None
    )
    broadcast_publish(workshop_id=workshop.id, kind="broadcast", payload={"message": message})


@transaction.atomic
def workshop_extend(*, workshop: Workshop, minutes: int) -> Workshop:
    """More time: the workshop ends later, and so do its learners' sandboxes."""
    delta = dt.timedelta(minutes=minutes)
    workshop = Workshop.objects.select_for_update().get(id=workshop.id)
    workshop.ends_at += delta
    workshop.sandbox_lifetime_minutes += minutes
    workshop.save(update_fields=["ends_at", "sandbox_lifetime_minutes"])
    pools_extend(pools=workshop.pools.all(), delta=delta)
    users = workshop.enrolments.values("user")
    for sandbox in Sandbox.objects.filter(
        owner__in=users, lab_id__in=workshop.lab_ids, expires_at__isnull=False
    ).exclude(state="deleted"):
        assert sandbox.expires_at is not None  # filtered above
        sandbox.expires_at += delta
        sandbox.save(update_fields=["expires_at"])
    return workshop


def workshop_close(*, workshop: Workshop, now: dt.datetime | None = None) -> int:
    """The workshop ends now: nobody joins or claims a sandbox any more, and its
    pools' unclaimed sandboxes are torn down (returns how many). Learners keep
    theirs until they expire."""
    now = now or timezone.now()
    with transaction.atomic():
        workshop = Workshop.objects.select_for_update().get(id=workshop.id)
        if workshop.ends_at > now:
            workshop.ends_at = now
            workshop.save(update_fields=["ends_at"])
    return pools_close(pools=workshop.pools.all(), now=now)


def workshop_update(
    *,
    workshop: Workshop,
    title: str,
    lab_ids: list[str],
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    capacity: int,
    sandbox_lifetime_minutes: int,
    now: dt.datetime | None = None,
) -> Workshop:
    """Change what the instructor set at creation. Its warm pools follow: a lab
    added gets one, a lab removed has its pool closed, the others take the new
    window and size. Sandboxes learners already hold keep their expiry ("extend"
    moves those); the new lifetime applies to sandboxes started from now on."""
    now = now or timezone.now()
    if not lab_ids:
        raise ValueError("a workshop needs at least one lab")
    for lab_id in lab_ids:
        get_lab(lab_id)
    if ends_at <= starts_at:
        raise ValueError("a workshop must end after it starts")
    if capacity <= 0:
        raise ValueError("a workshop's capacity must be at least 1")
    with transaction.atomic():
        workshop = Workshop.objects.select_for_update().get(id=workshop.id)
        workshop.title = title
        workshop.lab_ids = list(dict.fromkeys(lab_ids))
        workshop.starts_at, workshop.ends_at = starts_at, ends_at
        workshop.capacity = capacity
        workshop.sandbox_lifetime_minutes = sandbox_lifetime_minutes
        workshop.save()
        pools = list(workshop.pools.all())
        kept = [p for p in pools if p.lab_id in workshop.lab_ids]
        dropped = [p for p in pools if p.lab_id not in workshop.lab_ids]
        size = workshop_pool_size(capacity=capacity)
        SandboxPool.objects.filter(id__in=[p.id for p in kept]).update(
            title=f"{title} ({workshop.join_code})",
            size=size,
            capacity=capacity,
            starts_at=starts_at,
            ends_at=ends_at,
        )
        have = {p.lab_id for p in kept}
        if size:
            workshop.pools.add(
                *(
                    pool_create(
                        lab_id=lab_id,
                        title=f"{title} ({workshop.join_code})",
                        size=size,
                        capacity=capacity,
                        starts_at=starts_at,
                        ends_at=ends_at,
                    )
                    for lab_id in workshop.lab_ids
                    if lab_id not in have
                )
            )
    # Outside the transaction, as in workshop_close: a teardown may reach the cluster.
    if dropped:
        pools_close(pools=dropped, now=now)
    if ends_at <= now:
        pools_close(pools=kept, now=now)
    return workshop


def workshop_delete(*, workshop: Workshop, now: dt.datetime | None = None) -> None:
    """The workshop goes: closed first (its pools' unclaimed sandboxes are torn
    down), then removed with its enrolments. Learners keep their lab records and
    certificates, and their sandboxes until these expire."""
    workshop_close(workshop=workshop, now=now)
    Workshop.objects.filter(id=workshop.id).delete()


def learner_reset(*, enrolment: Enrolment, lab_id: str, step_id: str | None) -> Sandbox:
    progress = LabProgress.objects.get(user=enrolment.user, lab_id=lab_id)
    if step_id:
        return progress_reset_step(progress=progress, step_id=step_id)
    return progress_reset_sandbox(progress=progress)
