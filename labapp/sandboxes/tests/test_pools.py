"""Warm pools, in the database: what a claim takes, how fills are paced, when
pooled sandboxes are recycled or closed. (Against a real cluster and worker:
test_pools_live.py.) Personas: the learner (Ada) and another learner (Bob)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from labapp.sandboxes import pools as pool_services
from labapp.sandboxes.models import Sandbox, SandboxPool
from labapp.sandboxes.pools import (
    pool_create,
    pools_close,
    pools_fill,
    pools_recycle,
    pools_sync_standing,
    pools_tend,
    sandbox_claim,
    workshop_pool_size,
)
from labapp.sandboxes.selectors import FAILURE_PAUSE_COUNT, pool_statuses

pytestmark = pytest.mark.django_db

NOW = timezone.now()
HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch, settings, tmp_path):
    """Teardowns are recorded, not sent: these tests are about the rows."""
    settings.SANDBOX_HOME = tmp_path
    torn_down: list[str] = []
    monkeypatch.setattr(pool_services, "_cleanup", lambda sandbox: torn_down.append(sandbox.slug))
    return torn_down


def pooled(pool: SandboxPool, state=Sandbox.State.READY, *, age=dt.timedelta(0), n=1):
    made = []
    for _ in range(n):
        slug = f"p{Sandbox.objects.count():05d}"
        made.append(
            Sandbox.objects.create(
                pool=pool,
                lab_id=pool.lab_id,
                slug=slug,
                namespaces={"shop": f"shop-{slug}"},
                state=state,
                ready_at=NOW - age if state == Sandbox.State.READY else None,
                created_at=NOW - age,
            )
        )
    return made


def workshop_pool(tiny_lab, size=3, capacity=None, starts=-HOUR, ends=HOUR) -> SandboxPool:
    return pool_create(
        lab_id=tiny_lab.id,
        title="class",
        size=size,
        capacity=capacity,
        starts_at=NOW + starts,
        ends_at=NOW + ends,
    )


def standing_pool(tiny_lab, size=2) -> SandboxPool:
    return SandboxPool.objects.create(lab_id=tiny_lab.id, standing=True, size=size)


# -- claiming ------------------------------------------------------------------


def test_a_claim_binds_a_ready_pooled_sandbox_to_the_learner(learner, tiny_lab):
    pool = workshop_pool(tiny_lab)
    (ready,) = pooled(pool)
    pooled(pool, Sandbox.State.PROVISIONING)
    claimed = sandbox_claim(
        owner=learner, lab_id=tiny_lab.id, lifetime=dt.timedelta(minutes=90), pools=[pool]
    )
    assert claimed.id == ready.id
    assert claimed.owner == learner
    assert claimed.slug == ready.slug and claimed.namespaces == ready.namespaces  # no renaming
    assert claimed.bound_at is not None
    assert claimed.expires_at == claimed.bound_at + dt.timedelta(minutes=90)
    assert claimed.state == Sandbox.State.READY


def test_two_learners_never_get_the_same_sandbox(learner, another_learner, tiny_lab):
    pool = workshop_pool(tiny_lab)
    pooled(pool, n=2)
    adas = sandbox_claim(owner=learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool])
    bobs = sandbox_claim(owner=another_learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool])
    assert adas.id != bobs.id
    assert sandbox_claim(owner=learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool]) is None


def test_nothing_is_claimed_when_nothing_is_ready(learner, tiny_lab):
    pool = workshop_pool(tiny_lab)
    pooled(pool, Sandbox.State.PROVISIONING)
    pooled(pool, Sandbox.State.FAILED)
    assert sandbox_claim(owner=learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool]) is None


def test_a_learner_with_a_live_sandbox_claims_none(learner, tiny_lab):
    pool = workshop_pool(tiny_lab)
    (mine,) = pooled(pool)
    pooled(pool)
    assert sandbox_claim(owner=learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool]) == mine
    assert sandbox_claim(owner=learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool]) is None


def test_a_pool_is_unclaimable_once_its_workshop_ended(learner, tiny_lab):
    pool = workshop_pool(tiny_lab, starts=-2 * HOUR, ends=-dt.timedelta(seconds=1))
    pooled(pool)
    assert sandbox_claim(owner=learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool]) is None


def test_a_claim_takes_the_workshops_own_pool_first_then_the_standing_pool(
    learner, another_learner, tiny_lab
):
    pool = workshop_pool(tiny_lab)
    standing = standing_pool(tiny_lab)
    (standing_one,) = pooled(standing, age=dt.timedelta(minutes=30))  # older, still second
    (own,) = pooled(pool)
    assert sandbox_claim(owner=learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool]) == own
    assert (
        sandbox_claim(owner=another_learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool])
        == standing_one
    )


def test_another_workshops_pool_is_not_claimed_from(learner, tiny_lab):
    theirs = workshop_pool(tiny_lab)
    mine = workshop_pool(tiny_lab)
    pooled(theirs)
    assert sandbox_claim(owner=learner, lab_id=tiny_lab.id, lifetime=None, pools=[mine]) is None
    assert sandbox_claim(owner=learner, lab_id=tiny_lab.id, lifetime=None) is None


# -- filling -------------------------------------------------------------------


def test_a_workshop_pool_is_sized_from_its_capacity(settings):
    assert workshop_pool_size(capacity=30) == 30
    settings.POOL_WORKSHOP_PERCENT = 70
    assert workshop_pool_size(capacity=30) == 21
    settings.POOL_WORKSHOP_PERCENT = 0
    assert workshop_pool_size(capacity=30) == 0


def test_filling_starts_the_lead_time_before_the_workshop(settings, tiny_lab):
    settings.POOL_LEAD_MINUTES = 60
    settings.POOL_CONCURRENCY = 10
    later = workshop_pool(tiny_lab, size=2, starts=2 * HOUR, ends=3 * HOUR)
    assert pools_fill(now=NOW) == 0
    assert pools_fill(now=NOW + dt.timedelta(minutes=61)) == 2
    assert later.sandboxes.filter(state=Sandbox.State.PROVISIONING, owner=None).count() == 2


def test_at_most_pool_concurrency_pooled_sandboxes_provision_at_once(settings, tiny_lab):
    settings.POOL_CONCURRENCY = 2
    pool = workshop_pool(tiny_lab, size=10)
    assert pools_fill(now=NOW) == 2
    assert pools_fill(now=NOW) == 0  # both still provisioning
    Sandbox.objects.filter(pool=pool).update(state=Sandbox.State.READY, ready_at=NOW)
    assert pools_fill(now=NOW) == 2
    assert pool.sandboxes.count() == 4


def test_a_workshop_pool_never_hands_out_more_than_its_capacity(
    settings, learner, another_learner, tiny_lab
):
    settings.POOL_CONCURRENCY = 10
    pool = workshop_pool(tiny_lab, size=2, capacity=3)
    pooled(pool, n=2)
    sandbox_claim(owner=learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool])
    assert pools_fill(now=NOW) == 1  # refills after a claim: 1 ready, 1 made
    Sandbox.objects.filter(pool=pool).update(state=Sandbox.State.READY, ready_at=NOW)
    sandbox_claim(owner=another_learner, lab_id=tiny_lab.id, lifetime=None, pools=[pool])
    # Two claimed, two ready: the capacity of 3 leaves room for one more only.
    assert pools_fill(now=NOW) == 0
    (status,) = pool_statuses(pools=SandboxPool.objects.filter(id=pool.id))
    assert (status.ready, status.claimed, status.target, status.shortfall) == (1, 2, 1, 0)


def test_a_pool_whose_sandboxes_keep_failing_waits(settings, tiny_lab):
    settings.POOL_CONCURRENCY = 10
    pool = workshop_pool(tiny_lab, size=5)
    for sandbox in pooled(pool, Sandbox.State.FAILED, n=FAILURE_PAUSE_COUNT):
        Sandbox.objects.filter(id=sandbox.id).update(
            status_message=f"broken {sandbox.slug}", updated_at=NOW
        )
    (status,) = pool_statuses(pools=SandboxPool.objects.filter(id=pool.id))
    assert status.paused and status.failed == FAILURE_PAUSE_COUNT
    assert status.last_failure.startswith("broken")
    assert pools_fill(now=NOW) == 0
    assert pools_fill(now=NOW + dt.timedelta(minutes=31)) == 5  # the failures are old news


# -- standing pools, recycling, closing -------------------------------------------


def test_every_lab_gets_a_standing_pool_of_the_configured_size(settings, tiny_lab):
    settings.POOL_SELF_PACED_SIZE = 2
    pools_sync_standing()
    pools_sync_standing()  # idempotent
    standing = {p.lab_id: p.size for p in SandboxPool.objects.filter(standing=True)}
    assert standing == {"tiny": 2, "tiny-privileged": 2}
    settings.POOL_SELF_PACED_SIZE = 0
    pools_sync_standing()
    assert set(SandboxPool.objects.filter(standing=True).values_list("size", flat=True)) == {0}


def test_size_zero_disables_standing_pools_and_drains_them(settings, no_cluster, tiny_lab):
    settings.POOL_SELF_PACED_SIZE = 0
    pools_sync_standing()
    assert not SandboxPool.objects.exists()  # none made when disabled
    pool = standing_pool(tiny_lab)
    (waiting,) = pooled(pool)
    pools_tend(now=NOW)
    assert Sandbox.objects.get(id=waiting.id).state == Sandbox.State.DELETED
    assert no_cluster == [waiting.slug]


def test_old_unclaimed_sandboxes_are_recycled_and_claimed_ones_never(
    settings, no_cluster, learner, tiny_lab
):
    settings.POOL_MAX_AGE_MINUTES = 60
    pool = standing_pool(tiny_lab, size=3)
    old, claimed_old = pooled(pool, age=2 * HOUR, n=2)
    (fresh,) = pooled(pool)
    Sandbox.objects.filter(id=claimed_old.id).update(owner=learner)
    assert pools_recycle(now=NOW) == 1
    assert no_cluster == [old.slug]
    states = dict(Sandbox.objects.values_list("id", "state"))
    assert states[old.id] == Sandbox.State.DELETED
    assert states[claimed_old.id] == states[fresh.id] == Sandbox.State.READY
    settings.POOL_MAX_AGE_MINUTES = 0  # never
    pooled(pool, age=100 * HOUR)
    assert pools_recycle(now=NOW) == 0


def test_closing_tears_down_the_unclaimed_and_leaves_the_claimed(no_cluster, learner, tiny_lab):
    pool = workshop_pool(tiny_lab)
    ready, claimed = pooled(pool, n=2)
    (provisioning,) = pooled(pool, Sandbox.State.PROVISIONING)
    Sandbox.objects.filter(id=claimed.id).update(owner=learner)
    assert pools_close(pools=[pool], now=NOW) == 2
    assert sorted(no_cluster) == sorted([ready.slug, provisioning.slug])
    assert Sandbox.objects.get(id=claimed.id).state == Sandbox.State.READY
    pool.refresh_from_db()
    assert pool.ends_at == NOW and not pool.is_open(NOW)
    assert pools_fill(now=NOW) == 0


def test_an_ended_workshops_pool_is_torn_down_by_the_beat(settings, no_cluster, tiny_lab):
    settings.POOL_SELF_PACED_SIZE = 0
    pool = workshop_pool(tiny_lab, size=1, ends=HOUR)
    (waiting,) = pooled(pool)
    pools_tend(now=NOW)
    assert Sandbox.objects.get(id=waiting.id).state == Sandbox.State.READY
    report = pools_tend(now=NOW + 2 * HOUR)
    assert report.retired == 1 and report.started == 0
    assert Sandbox.objects.get(id=waiting.id).state == Sandbox.State.DELETED


def test_an_unclaimed_sandbox_has_no_owner_and_needs_a_pool(tiny_lab):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Sandbox.objects.create(lab_id=tiny_lab.id, slug="orphan")


def test_the_beat_tends_the_pools(settings):
    from labapp.sandboxes import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["tend-pools"]
    assert entry["task"] == tasks.tend_pools.name
    assert entry["schedule"] <= 60
