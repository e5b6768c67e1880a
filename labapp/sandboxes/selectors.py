"""Reads over sandboxes and their pools."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from labapp.sandboxes.models import Sandbox, SandboxPool

# A pool whose sandboxes failed this often within FAILURE_WINDOW stops filling until
# the window has passed, rather than provisioning a broken lab over and over.
FAILURE_PAUSE_COUNT = 3
FAILURE_WINDOW = dt.timedelta(minutes=30)


@dataclass
class PoolStatus:
    """A pool and its unclaimed sandboxes by state, and how many were claimed."""

    pool: SandboxPool
    ready: int
    provisioning: int
    failed: int
    failed_lately: int
    claimed: int
    last_failure: str

    @property
    def target(self) -> int:
        """Unclaimed sandboxes it aims to hold now: its size, and never more than
        what its capacity has left to hand out."""
        if self.pool.capacity is None:
            return self.pool.size
        return min(self.pool.size, max(0, self.pool.capacity - self.claimed))

    @property
    def shortfall(self) -> int:
        return max(0, self.target - self.ready - self.provisioning)

    @property
    def paused(self) -> bool:
        return self.failed_lately >= FAILURE_PAUSE_COUNT


def pool_statuses(
    *, pools: QuerySet[SandboxPool], now: dt.datetime | None = None
) -> list[PoolStatus]:
    """Each pool's counts, in one query."""
    now = now or timezone.now()
    unclaimed = Q(sandboxes__owner__isnull=True)
    failed = unclaimed & Q(sandboxes__state=Sandbox.State.FAILED)
    last_failure = (
        Sandbox.objects.filter(pool=OuterRef("pk"), owner__isnull=True, state=Sandbox.State.FAILED)
        .order_by("-updated_at")
        .values("status_message")[:1]
    )
    rows = pools.order_by("id").annotate(
        n_ready=Count("sandboxes", filter=unclaimed & Q(sandboxes__state=Sandbox.State.READY)),
        n_provisioning=Count(
            "sandboxes", filter=unclaimed & Q(sandboxes__state=Sandbox.State.PROVISIONING)
        ),
        n_failed=Count("sandboxes", filter=failed),
        n_failed_lately=Count(
            "sandboxes", filter=failed & Q(sandboxes__updated_at__gte=now - FAILURE_WINDOW)
        ),
        n_claimed=Count("sandboxes", filter=Q(sandboxes__owner__isnull=False)),
        last_failure=Subquery(last_failure),
    )
    return [
        PoolStatus(
            pool=row,
            ready=row.n_ready,
            provisioning=row.n_provisioning,
            failed=row.n_failed,
            failed_lately=row.n_failed_lately,
            claimed=row.n_claimed,
            last_failure=row.last_failure or "",
        )
        for row in rows
    ]
