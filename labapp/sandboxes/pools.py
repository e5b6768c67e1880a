"""Warm pools: sandboxes provisioned before learners ask for them.

A `SandboxPool` keeps `size` unclaimed sandboxes provisioning or ready. A
workshop has one per lab, sized from its capacity and filled from
POOL_LEAD_MINUTES before it starts until it ends; each lab has a standing pool
for self-paced learners, sized by POOL_SELF_PACED_SIZE.

Claiming binds a ready one to a learner: a row update under a row lock. Nothing
is renamed: its namespaces, ServiceAccount and token are the sandbox's own, made
with its pool's names, and the lab text is rendered from `sandbox.namespaces`.

Filling only enqueues: pooled sandboxes provision on the `provisioning` queue
like any other (at the priority that queue's workers run at), and at most
POOL_CONCURRENCY of them at once in all, so a learner's own sandbox waits behind
at most that many. A pooled sandbox that is done asks for the next one, and beat
(`pools_tend`) fills, recycles and closes every 15 seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from labapp.catalog.registry import LabNotFound, all_labs, get_lab
from labapp.sandboxes.models import Sandbox, SandboxPool
from labapp.sandboxes.selectors import PoolStatus, pool_statuses

# _cleanup: the teardown of a sandbox already marked deleted (files, cluster objects,
# and "pending" when the cluster is away), which sandbox_teardown does after its mark.
from labapp.sandboxes.services import _cleanup, new_slug, physical_namespaces, sandbox_provision

log = logging.getLogger(__name__)

LIVE_STATES = (Sandbox.State.PROVISIONING, Sandbox.State.READY)
# A claim that loses its candidate to another claim tries the next one, this often.
CLAIM_TRIES = 3


def workshop_pool_size(*, capacity: int) -> int:
    """How many sandboxes a workshop of `capacity` keeps ready per lab."""
    return math.ceil(capacity * settings.POOL_WORKSHOP_PERCENT / 100)


@transaction.atomic
def pool_create(
    *,
    lab_id: str,
    size: int,
    title: str = "",
    capacity: int | None = None,
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
) -> SandboxPool:
    """A workshop's pool for one lab (standing pools come from `pools_sync_standing`)."""
    lab = get_lab(lab_id)  # LabNotFound names an unknown lab
    return SandboxPool.objects.create(
        lab_id=lab.id,
        title=title,
        size=size,
        capacity=capacity,
        starts_at=starts_at,
        ends_at=ends_at,
    )


def pools_extend(*, pools: Iterable[SandboxPool], delta: dt.timedelta) -> None:
    """The pools' workshop ends later: so does the time their sandboxes may be claimed."""
    for pool in pools:
        if pool.ends_at is not None:
            SandboxPool.objects.filter(id=pool.id).update(ends_at=pool.ends_at + delta)


def pools_close(*, pools: Iterable[SandboxPool], now: dt.datetime | None = None) -> int:
    """Nothing more is claimable from these pools; their unclaimed sandboxes are torn
    down now. Claimed ones stay their learners'. Returns how many were torn down."""
    now = now or timezone.now()
    ids = [pool.id for pool in pools]
    SandboxPool.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now), id__in=ids).update(
        ends_at=now
    )
    return _retire_all(
        Sandbox.objects.filter(pool__in=ids, owner__isnull=True, state__in=LIVE_STATES),
        "its pool closed",
    )


@transaction.atomic
def sandbox_claim(
    *,
    owner: User,
    lab_id: str,
    lifetime: dt.timedelta | None,
    pools: QuerySet[SandboxPool] | list[SandboxPool] | None = None,
) -> Sandbox | None:
    """Bind a ready pooled sandbox to `owner`: one of `pools` (a workshop's) if any
    is ready, else one of the lab's standing pool. A row update under a row lock
    (`skip_locked`: concurrent claims each take another row); nothing is provisioned.

    None when no open pool has one ready, or when the learner already has a live
    sandbox for the lab (`sandbox_create` then gives theirs, or makes one)."""
    now = timezone.now()
    live = Sandbox.objects.filter(owner=owner, lab_id=lab_id).exclude(state=Sandbox.State.DELETED)
    if live.exists():
        return None
    candidates = (
        Sandbox.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            Q(pool__standing=True) | Q(pool__in=pools if pools is not None else []),
            Q(pool__ends_at__isnull=True) | Q(pool__ends_at__gt=now),
            owner__isnull=True,
            lab_id=lab_id,
            state=Sandbox.State.READY,
        )
        # The workshop's own first, then the oldest: the next to be recycled.
        .order_by("pool__standing", "ready_at", "id")
    )
    expires_at = now + lifetime if lifetime else None
    for _ in range(CLAIM_TRIES):
        sandbox = candidates.first()
        if sandbox is None:
            return None
        try:
            with transaction.atomic():  # a second live sandbox for the learner is refused
                bound = Sandbox.objects.filter(
                    id=sandbox.id, owner__isnull=True, state=Sandbox.State.READY
                ).update(owner=owner, bound_at=now, expires_at=expires_at, updated_at=now)
        except IntegrityError:
            return None
        if bound:
            sandbox.owner, sandbox.bound_at, sandbox.expires_at = owner, now, expires_at
            sandbox.updated_at = now
            _enqueue_fill()  # on commit: the pool refills behind the learner
            return sandbox
    return None


def pools_fill(*, now: dt.datetime | None = None) -> int:
    """Start provisioning what the pools lack, at most POOL_CONCURRENCY pooled
    sandboxes provisioning at once in all. A pool whose sandboxes keep failing
    waits (see `PoolStatus.paused`). Returns how many it started."""
    now = now or timezone.now()
    # Most calls (after each claim, each pooled sandbox, each beat) find nothing to
    # do: they find it out with reads, and take no write lock (SQLite has one).
    _, lacking = _wanting(SandboxPool.objects.all(), now)
    if not lacking:
        return 0
    started = 0
    with transaction.atomic():
        # One filler at a time: the pools' rows are the lock (SQLite: the write lock).
        ids = list(
            SandboxPool.objects.select_for_update()
            .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now), size__gt=0)
            .values_list("id", flat=True)
        )
        budget, lacking = _wanting(SandboxPool.objects.filter(id__in=ids), now)
        for status in lacking:
            for _ in range(min(status.shortfall, budget - started)):
                try:
                    _pooled_sandbox_create(pool=status.pool)
                except LabNotFound:
                    log.warning("pool %s: its lab %r is gone", status.pool.id, status.pool.lab_id)
                    break
                started += 1
    return started


def _wanting(pools: QuerySet[SandboxPool], now: dt.datetime) -> tuple[int, list[PoolStatus]]:
    """How many more pooled sandboxes may provision now, and the pools that lack
    some: workshops' before the standing ones, the soonest first."""
    in_flight = Sandbox.objects.filter(
        pool__isnull=False, owner__isnull=True, state=Sandbox.State.PROVISIONING
    ).count()
    budget = settings.POOL_CONCURRENCY - in_flight
    if budget <= 0:
        return 0, []
    open_pools = pools.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now), size__gt=0)
    lacking = [
        status
        for status in pool_statuses(pools=open_pools, now=now)
        if status.pool.is_filling(now) and not status.paused and status.shortfall
    ]
    lacking.sort(key=lambda s: (s.pool.standing, s.pool.starts_at or s.pool.created_at, s.pool.id))
    return (budget, lacking) if lacking else (0, [])


def _pooled_sandbox_create(*, pool: SandboxPool) -> Sandbox:
    from labapp.sandboxes.tasks import provision_pooled_sandbox

    lab = get_lab(pool.lab_id)
    slug = new_slug()
    sandbox = Sandbox.objects.create(
        pool=pool,
        lab_id=lab.id,
        slug=slug,
        namespaces=physical_namespaces(lab, slug),
        status_message="waiting for a worker to provision it for its pool",
    )
    provision_pooled_sandbox.delay_on_commit(sandbox.id)
    return sandbox


def _enqueue_fill() -> None:
    from labapp.sandboxes.tasks import fill_pools

    fill_pools.delay_on_commit()


def pooled_sandbox_provision(*, sandbox_id: int) -> Sandbox:
    """Provision a pooled sandbox, then start the next one its pools lack."""
    sandbox = sandbox_provision(sandbox_id=sandbox_id)
    pools_fill()
    return sandbox


def pools_sync_standing() -> None:
    """Every lab has its standing pool, of POOL_SELF_PACED_SIZE (0: none fill, and
    their unclaimed sandboxes are torn down); a lab that is gone gets size 0."""
    size = settings.POOL_SELF_PACED_SIZE
    labs = set(all_labs())
    if size:
        have = set(SandboxPool.objects.filter(standing=True).values_list("lab_id", flat=True))
        for lab_id in sorted(labs - have):
            SandboxPool.objects.get_or_create(
                standing=True, lab_id=lab_id, defaults={"size": size, "title": "self-paced"}
            )
    standing = SandboxPool.objects.filter(standing=True)
    standing.filter(lab_id__in=labs).exclude(size=size).update(size=size)
    standing.exclude(lab_id__in=labs).exclude(size=0).update(size=0)


def pools_recycle(*, now: dt.datetime | None = None) -> int:
    """Tear down unclaimed sandboxes older than POOL_MAX_AGE_MINUTES (0: never), and
    those of pools that ended or were sized 0; the fill replaces what is still wanted.
    Returns how many were torn down."""
    now = now or timezone.now()
    unclaimed = Sandbox.objects.filter(pool__isnull=False, owner__isnull=True)
    retired = _retire_all(
        unclaimed.filter(
            Q(pool__ends_at__lte=now) | Q(pool__size=0), state__in=LIVE_STATES
        ).select_related("pool"),
        "its pool closed",
    )
    if settings.POOL_MAX_AGE_MINUTES:
        cutoff = now - dt.timedelta(minutes=settings.POOL_MAX_AGE_MINUTES)
        retired += _retire_all(
            unclaimed.filter(state=Sandbox.State.READY, ready_at__lt=cutoff),
            f"recycled: unclaimed for over {settings.POOL_MAX_AGE_MINUTES} min",
        )
    return retired


@dataclass
class TendReport:
    retired: int
    started: int


def pools_tend(*, now: dt.datetime | None = None) -> TendReport:
    """Beat's round: standing pools, then recycling and closing, then filling."""
    now = now or timezone.now()
    pools_sync_standing()
    report = TendReport(retired=pools_recycle(now=now), started=pools_fill(now=now))
    if report.retired or report.started:
        log.info(
            "pools: %s unclaimed sandboxes torn down, %s started",
            report.retired,
            report.started,
        )
    return report


def _retire_all(sandboxes: Iterable[Sandbox], reason: str) -> int:
    """Tear down each unclaimed sandbox, unless a learner claims it first: the
    claim and the teardown each update the row only while it has no owner."""
    retired = 0
    for sandbox in list(sandboxes):
        marked = Sandbox.objects.filter(
            id=sandbox.id, owner__isnull=True, state__in=LIVE_STATES
        ).update(state=Sandbox.State.DELETED, status_message=reason, updated_at=timezone.now())
        if marked:
            _cleanup(sandbox)
            retired += 1
    return retired
