"""Starting a lab takes a warm sandbox from a pool when one is ready, and the
tracker never judges a pooled sandbox before a learner has claimed it.
Personas: the learner (Ada), another learner (Bob), the instructor."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from labapp.instructor.services import workshop_close, workshop_create, workshop_extend
from labapp.learning import tracker as tracker_module
from labapp.learning.models import Enrolment, LabProgress
from labapp.learning.services import lab_start, progress_reset_sandbox, progress_reset_step
from labapp.learning.tracker import Pending, Tracker
from labapp.sandboxes import pools as pool_services
from labapp.sandboxes import services as sandbox_services
from labapp.sandboxes.models import Sandbox, SandboxPool

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture(autouse=True)
def sandbox_home(settings, tmp_path, monkeypatch):
    settings.SANDBOX_HOME = tmp_path
    monkeypatch.setattr(pool_services, "_cleanup", lambda sandbox: True)
    monkeypatch.setattr(sandbox_services, "_cleanup", lambda sandbox: True)


@pytest.fixture
def workshop(instructor, tiny_lab):
    return workshop_create(
        instructor=instructor,
        title="Tiny class",
        lab_ids=[tiny_lab.id, "tiny-privileged"],
        starts_at=NOW - dt.timedelta(minutes=5),
        ends_at=NOW + dt.timedelta(hours=2),
        capacity=20,
        sandbox_lifetime_minutes=90,
    )


def make_ready(pool: SandboxPool, n: int = 1) -> list[Sandbox]:
    made = []
    for i in range(n):
        slug = f"w{pool.id}x{i}"
        made.append(
            Sandbox.objects.create(
                pool=pool,
                lab_id=pool.lab_id,
                slug=slug,
                namespaces={"shop": f"shop-{slug}"},
                state=Sandbox.State.READY,
                ready_at=timezone.now(),
                learner_kubeconfig="apiVersion: v1",
            )
        )
    return made


def test_a_workshop_has_a_pool_per_lab_sized_from_its_capacity(workshop):
    pools = {pool.lab_id: pool for pool in workshop.pools.all()}
    assert set(pools) == {"tiny", "tiny-privileged"}
    for pool in pools.values():
        assert (pool.size, pool.capacity) == (20, 20)
        assert (pool.starts_at, pool.ends_at) == (workshop.starts_at, workshop.ends_at)
        assert not pool.standing


def test_no_pool_when_the_percentage_is_zero(settings, instructor, tiny_lab):
    settings.POOL_WORKSHOP_PERCENT = 0
    workshop = workshop_create(
        instructor=instructor,
        title="cold",
        lab_ids=[tiny_lab.id],
        starts_at=NOW,
        ends_at=NOW + dt.timedelta(hours=1),
        capacity=5,
    )
    assert not workshop.pools.exists()


def test_starting_a_lab_claims_a_pooled_sandbox_in_a_few_queries(
    workshop, learner, django_capture_on_commit_callbacks
):
    Enrolment.objects.create(workshop=workshop, user=learner, display_name="Ada")
    pool = workshop.pools.get(lab_id="tiny")
    (warm,) = make_ready(pool)
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks() as callbacks,
    ):
        lab_start(user=learner, lab_id="tiny", workshop=workshop)
    sandbox = Sandbox.objects.get(owner=learner)
    assert sandbox.id == warm.id and sandbox.state == Sandbox.State.READY
    assert sandbox.expires_at == sandbox.bound_at + dt.timedelta(minutes=90)
    # A row update: no sandbox row is made, nothing is provisioned. The one task
    # queued on commit is the pool's refill.
    sql = [q["sql"] for q in queries.captured_queries]
    assert not [s for s in sql if s.startswith('INSERT INTO "sandboxes_sandbox"')]
    queued = [callback.func.__self__.name for callback in callbacks]
    assert queued == ["labapp.sandboxes.tasks.fill_pools"]
    assert len(sql) < 20, sql


def test_without_a_ready_one_a_sandbox_is_made_as_before(workshop, learner):
    pool = workshop.pools.get(lab_id="tiny")
    Sandbox.objects.create(
        pool=pool, lab_id="tiny", slug="busy1", namespaces={}, state=Sandbox.State.PROVISIONING
    )
    lab_start(user=learner, lab_id="tiny", workshop=workshop)
    sandbox = Sandbox.objects.get(owner=learner)
    assert sandbox.pool is None and sandbox.state == Sandbox.State.PROVISIONING


def test_a_self_paced_learner_claims_from_the_standing_pool(settings, learner, tiny_lab):
    pool = SandboxPool.objects.create(lab_id=tiny_lab.id, standing=True, size=2)
    (warm,) = make_ready(pool)
    lab_start(user=learner, lab_id=tiny_lab.id)
    sandbox = Sandbox.objects.get(owner=learner)
    assert sandbox.id == warm.id
    assert sandbox.expires_at == sandbox.bound_at + dt.timedelta(
        minutes=settings.SELF_PACED_IDLE_MINUTES
    )


def test_starting_again_keeps_the_same_sandbox(workshop, learner):
    pool = workshop.pools.get(lab_id="tiny")
    make_ready(pool, 2)
    lab_start(user=learner, lab_id="tiny", workshop=workshop)
    first = Sandbox.objects.get(owner=learner)
    lab_start(user=learner, lab_id="tiny", workshop=workshop)
    assert list(Sandbox.objects.filter(owner=learner)) == [first]


def test_resetting_to_the_start_claims_a_warm_sandbox_too(workshop, learner):
    """The lab's start is what pools keep: a whole reset is a claim, like a start."""
    pool = workshop.pools.get(lab_id="tiny")
    first, spare = make_ready(pool, 2)
    lab_start(user=learner, lab_id="tiny", workshop=workshop)
    progress = LabProgress.objects.get(user=learner, lab_id="tiny")
    fresh = progress_reset_sandbox(progress=progress)
    assert fresh.id == spare.id and fresh.state == Sandbox.State.READY
    assert fresh.expires_at == fresh.bound_at + dt.timedelta(minutes=90)
    assert Sandbox.objects.get(id=first.id).state == Sandbox.State.DELETED
    # The pool is empty now: the next reset makes one, as before pools.
    again = progress_reset_sandbox(progress=progress)
    assert again.pool is None and again.state == Sandbox.State.PROVISIONING
    assert Sandbox.objects.get(id=spare.id).state == Sandbox.State.DELETED


def test_resetting_a_later_step_makes_a_sandbox_that_replays_the_earlier_ones(
    workshop, learner, tiny_lab
):
    pool = workshop.pools.get(lab_id="tiny")
    make_ready(pool, 2)
    lab_start(user=learner, lab_id="tiny", workshop=workshop)
    progress = LabProgress.objects.get(user=learner, lab_id="tiny")
    second = tiny_lab.steps[1].id
    fresh = progress_reset_step(progress=progress, step_id=second)
    assert fresh.pool is None and fresh.state == Sandbox.State.PROVISIONING
    assert fresh.replay_steps == [tiny_lab.steps[0].id]


def test_extending_a_workshop_extends_its_pools_and_closing_closes_them(workshop):
    workshop_extend(workshop=workshop, minutes=30)
    workshop.refresh_from_db()
    assert {p.ends_at for p in workshop.pools.all()} == {workshop.ends_at}
    make_ready(workshop.pools.get(lab_id="tiny"), 2)
    assert workshop_close(workshop=workshop) == 2
    workshop.refresh_from_db()
    assert not workshop.is_open()
    assert all(not pool.is_open() for pool in workshop.pools.all())
    assert not Sandbox.objects.exclude(state=Sandbox.State.DELETED).exists()


# -- the tracker ---------------------------------------------------------------------


def bare_tracker() -> Tracker:
    """The tracker's judging half, without its informers."""
    tracker = Tracker.__new__(Tracker)
    tracker._pending, tracker._wake = Pending(), threading.Condition()
    tracker.reader, tracker.judged = None, 0
    return tracker


def test_the_tracker_never_judges_an_unclaimed_sandbox(monkeypatch, workshop, learner):
    judged = []
    monkeypatch.setattr(
        tracker_module, "progress_judge", lambda **kwargs: judged.append(kwargs["sandbox"].id)
    )
    pooled = make_ready(workshop.pools.get(lab_id="tiny"), 2)
    tracker = bare_tracker()
    tracker.catch_up()
    assert tracker._pending.sandboxes == {}  # nobody's yet: nothing to catch up on
    for sandbox in pooled:
        tracker._judge(sandbox.id, None)  # as when its namespace changes
    assert judged == []
    lab_start(user=learner, lab_id="tiny", workshop=workshop)
    claimed = Sandbox.objects.get(owner=learner)
    tracker.catch_up()
    assert set(tracker._pending.sandboxes) == {claimed.id}
    for sandbox in pooled:
        tracker._judge(sandbox.id, None)
    assert judged == [claimed.id]
