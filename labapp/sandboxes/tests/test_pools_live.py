"""Warm pools through real processes: the local control plane, a Celery worker
provisioning the pools, the tracker and uvicorn. Personas: the instructor, the
learner (Ada), another learner (Bob), and a few more racing learners."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import threading
import time
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from labapp.celery import app as celery_app
from labapp.instructor.services import workshop_create
from labapp.learning.models import LabProgress, StepProgress, Workshop
from labapp.learning.services import lab_start, workshop_join
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox, SandboxPool
from labapp.sandboxes.pools import pools_close, pools_fill, pools_recycle
from tests.fixtures.learners import HttpLearner, wait_until_ready
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def settled(live_stack, tiny_lab) -> Iterator[None]:
    """After each test: nothing fills any more, nothing is left provisioning (the
    test database is emptied next, under the worker's feet), the pools are closed."""
    yield
    SandboxPool.objects.update(size=0)
    wait_for(
        lambda: not Sandbox.objects.filter(state=Sandbox.State.PROVISIONING).exists(),
        timeout=180,
        what="provisioning to settle",
    )
    pools_close(pools=SandboxPool.objects.all())


@pytest.fixture
def enqueued(monkeypatch) -> list[str]:
    """The name of every task this process sends from now on."""
    names: list[str] = []
    send = celery_app.send_task

    def recording(name, *args, **kwargs):
        names.append(name)
        return send(name, *args, **kwargs)

    monkeypatch.setattr(celery_app, "send_task", recording)
    return names


def wait_pool(pool: SandboxPool, ready: int, timeout: float = 180) -> list[Sandbox]:
    """Wait until the pool holds `ready` unclaimed ready sandboxes and provisions none."""

    def filled() -> list[Sandbox] | None:
        unclaimed = Sandbox.objects.filter(pool=pool, owner__isnull=True)
        failed = unclaimed.filter(state=Sandbox.State.FAILED).first()
        assert failed is None, failed.status_message
        if unclaimed.filter(state=Sandbox.State.PROVISIONING).exists():
            return None
        found = list(unclaimed.filter(state=Sandbox.State.READY))
        return found if len(found) == ready else None

    return wait_for(filled, timeout=timeout, what=f"{ready} ready in {pool}")


def namespace_gone(kubectl, name: str) -> bool:
    shown = kubectl("get", "namespace", name, "-o", "jsonpath={.status.phase}")
    return shown.returncode != 0 or shown.stdout == "Terminating"


def timed_start(user, lab_id: str, workshop: Workshop | None = None):
    """lab_start, timed, with the SQL it ran."""
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        lab_start(user=user, lab_id=lab_id, workshop=workshop)
        elapsed = time.perf_counter() - started
    return elapsed, [q["sql"] for q in queries.captured_queries]


def run(who: HttpLearner, sandbox: Sandbox, command: str) -> CommandRun:
    response = who.post(f"/sandboxes/{sandbox.slug}/runs/", {"command": command})
    assert response.status_code == 202, response.text
    run_id = int(re.search(r'id="run-(\d+)"', response.text).group(1))
    return wait_for(
        lambda: CommandRun.objects.filter(id=run_id, finished_at__isnull=False).first(),
        timeout=60,
        what=f"run {run_id} to end",
    )


def test_a_workshops_pool_fills_before_it_starts_and_a_learner_begins_on_a_warm_sandbox(
    settings, instructor, learner, tiny_lab, live_stack, enqueued, kubectl
):
    settings.POOL_WORKSHOP_PERCENT = 50  # 2 ready for a capacity of 4
    workshop = workshop_create(
        instructor=instructor,
        title="Warm class",
        lab_ids=[tiny_lab.id],
        starts_at=timezone.now() + dt.timedelta(minutes=30),  # within the lead time
        ends_at=timezone.now() + dt.timedelta(hours=3),
        capacity=4,
    )
    pool = workshop.pools.get()
    assert pool.size == 2
    assert pools_fill() == 1  # one at a time (POOL_CONCURRENCY): the worker goes on
    warm = wait_pool(pool, ready=2)
    assert timezone.now() < workshop.starts_at  # ready before it starts
    for sandbox in warm:  # provisioned for real: namespaces, token, setup
        assert kubectl("get", "namespace", sandbox.namespaces["shop"]).returncode == 0
        assert sandbox.learner_kubeconfig
    # The workshop starts (moved, rather than waited for); Ada joins and begins.
    Workshop.objects.filter(id=workshop.id).update(starts_at=timezone.now())
    workshop.refresh_from_db()
    workshop_join(user=learner, join_code=workshop.join_code, display_name="Ada")
    enqueued.clear()
    elapsed, sql = timed_start(learner, tiny_lab.id, workshop)
    sandbox = Sandbox.objects.get(owner=learner)
    print(f"\nclaim from the workshop's pool: {elapsed * 1000:.1f} ms, {len(sql)} queries")
    # At once: ready, one of the pool's, bound to Ada. A DB-only operation: no sandbox
    # row was made and nothing was sent to provision; the one task is the refill.
    assert sandbox.state == Sandbox.State.READY
    assert sandbox.id in {s.id for s in warm} and sandbox.bound_at is not None
    assert not [s for s in sql if s.startswith('INSERT INTO "sandboxes_sandbox"')]
    assert enqueued == ["labapp.sandboxes.tasks.fill_pools"]
    assert sandbox.expires_at == sandbox.bound_at + workshop.sandbox_lifetime
    # Her page names her namespaces; her commands run with the sandbox's own token
    # and the tracker ticks her step.
    ada = HttpLearner.login(learner, live_stack.url)
    assert sandbox.namespaces["shop"] in ada.client.get(f"/labs/{tiny_lab.id}/").text
    first = run(ada, sandbox, "kubectl apply -k shop/restricted")
    assert first.state == CommandRun.State.SUCCEEDED, first.stderr
    progress = LabProgress.objects.get(user=learner)
    wait_for(
        lambda: progress.steps.filter(
            step_id="label-namespace", state=StepProgress.State.PASSED
        ).exists(),
        timeout=30,
        what="step 1 to pass",
    )
    # The pool refills behind her: two ready again, and never hers.
    refilled = wait_pool(pool, ready=2)
    assert sandbox.id not in {s.id for s in refilled}


def test_learners_starting_at_once_never_share_a_sandbox(
    django_user_model, instructor, tiny_lab, live_stack
):
    workshop = workshop_create(
        instructor=instructor,
        title="Race",
        lab_ids=[tiny_lab.id],
        starts_at=timezone.now(),
        ends_at=timezone.now() + dt.timedelta(hours=1),
        capacity=3,
    )
    pool = workshop.pools.get()
    pools_fill()
    wait_pool(pool, ready=3)
    racers = [django_user_model.objects.create_user(f"racer{i}") for i in range(5)]
    barrier = threading.Barrier(len(racers))
    errors: list[BaseException] = []

    def begin(user) -> None:
        try:
            barrier.wait()
            lab_start(user=user, lab_id=tiny_lab.id, workshop=workshop)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=begin, args=(user,)) for user in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    mine = {
        user.id: list(Sandbox.objects.filter(owner=user).exclude(state=Sandbox.State.DELETED))
        for user in racers
    }
    assert all(len(sandboxes) == 1 for sandboxes in mine.values()), mine
    claimed = [s for (s,) in mine.values() if s.pool_id == pool.id]
    # Three were ready: three learners got one each, all different; the other two
    # got sandboxes made for them, as before pools.
    assert len(claimed) == 3 and len({s.id for s in claimed}) == 3
    assert all(s.state == Sandbox.State.READY for s in claimed)
    made = [s for (s,) in mine.values() if s.pool_id is None]
    assert len(made) == 2
    for sandbox in made:
        wait_until_ready(sandbox)


def test_a_self_paced_lab_keeps_a_standing_pool(learner, another_learner, tiny_lab, live_stack):
    standing = SandboxPool.objects.create(lab_id=tiny_lab.id, standing=True, size=2)
    pools_fill()
    warm = wait_pool(standing, ready=2)
    elapsed, sql = timed_start(learner, tiny_lab.id)
    print(f"\nclaim from a standing pool: {elapsed * 1000:.1f} ms, {len(sql)} queries")
    sandbox = Sandbox.objects.get(owner=learner)
    assert sandbox.state == Sandbox.State.READY and sandbox.id in {s.id for s in warm}
    assert sandbox.expires_at is not None  # the self-paced idle expiry, from the claim
    wait_pool(standing, ready=2)  # refilled
    lab_start(user=another_learner, lab_id=tiny_lab.id)
    assert Sandbox.objects.get(owner=another_learner).state == Sandbox.State.READY


def test_old_pooled_sandboxes_are_recycled(settings, tiny_lab, live_stack, kubectl):
    settings.POOL_MAX_AGE_MINUTES = 60
    standing = SandboxPool.objects.create(lab_id=tiny_lab.id, standing=True, size=1)
    pools_fill()
    (old,) = wait_pool(standing, ready=1)
    assert pools_recycle() == 0  # young
    Sandbox.objects.filter(id=old.id).update(ready_at=timezone.now() - dt.timedelta(minutes=61))
    assert pools_recycle() == 1
    assert Sandbox.objects.get(id=old.id).state == Sandbox.State.DELETED
    assert namespace_gone(kubectl, old.namespaces["shop"])
    assert pools_fill() == 1
    (fresh,) = wait_pool(standing, ready=1)
    assert fresh.slug != old.slug


def test_closing_a_workshop_tears_its_unclaimed_pool_down(
    instructor, learner, another_learner, tiny_lab, live_stack, kubectl
):
    out = io.StringIO()
    call_command(
        "workshop", "create", "--lab", tiny_lab.id, "--capacity", "3",
        "--instructor", instructor.username, "--json", stdout=out,
    )  # fmt: skip
    code = json.loads(out.getvalue())["code"]
    workshop = Workshop.objects.get(join_code=code)
    pool = workshop.pools.get()
    pools_fill()
    wait_pool(pool, ready=3)
    workshop_join(user=learner, join_code=code, display_name="Ada")
    lab_start(user=learner, lab_id=tiny_lab.id, workshop=workshop)
    adas = Sandbox.objects.get(owner=learner)
    assert adas.pool_id == pool.id
    unclaimed = list(Sandbox.objects.filter(pool=pool, owner__isnull=True))
    SandboxPool.objects.filter(id=pool.id).update(size=0)  # no refill racing the close
    out = io.StringIO()
    call_command("workshop", "close", code, stdout=out)
    assert f"{len(unclaimed)} unclaimed pooled sandboxes torn down" in out.getvalue()
    for sandbox in unclaimed:
        assert Sandbox.objects.get(id=sandbox.id).state == Sandbox.State.DELETED
        assert namespace_gone(kubectl, sandbox.namespaces["shop"])
    # Ada keeps hers; Bob, starting after the end, gets nothing from the pool.
    assert Sandbox.objects.get(id=adas.id).state == Sandbox.State.READY
    assert not namespace_gone(kubectl, adas.namespaces["shop"])
    lab_start(user=another_learner, lab_id=tiny_lab.id, workshop=workshop)
    assert Sandbox.objects.get(owner=another_learner).pool_id is None
