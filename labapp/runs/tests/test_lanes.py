"""Two lanes, two workers: a quick command runs while the slow lane's only slot is
busy, and a second slow command waits for that slot instead of taking the quick one.
Slow commands run at a lower CPU priority."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from labapp.learning.attempts import attempt_start
from labapp.runs.models import CommandRun
from labapp.runs.services import limits_for, run_cancel, runs_reap
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.services import sandbox_create
from tests.fixtures.learners import wait_until_ready
from tests.fixtures.waiting import wait_for


def reload(run: CommandRun) -> CommandRun:
    run.refresh_from_db()
    return run


def final(run: CommandRun) -> CommandRun | None:
    return run if reload(run).is_final else None


@pytest.mark.django_db(transaction=True)
def test_a_get_is_not_queued_behind_a_busy_slow_lane(private_stack, learner, tiny_lab):
    stack = private_stack.stack
    stack.start_worker("quick", concurrency=1, queues="interactive,provisioning")
    stack.start_worker("slow", concurrency=1, queues="slow")
    sandbox = wait_until_ready(sandbox_create(owner=learner, lab_id=tiny_lab.id))
    shop = sandbox.namespaces["shop"]
    watch = f"kubectl -n {shop} get pods -w --request-timeout=30s"

    first = attempt_start(sandbox=sandbox, command=watch)
    wait_for(lambda: reload(first).state == CommandRun.State.RUNNING, timeout=30, what="the watch")
    second = attempt_start(sandbox=sandbox, command=watch)
    get = attempt_start(sandbox=sandbox, command=f"kubectl -n {shop} get pods")
    assert (first.lane, second.lane, get.lane) == ("slow", "slow", "quick")

    done = wait_for(lambda: final(get), timeout=30, what="the get")
    assert done.state == CommandRun.State.SUCCEEDED
    assert done.worker.startswith("quick@")
    assert reload(first).state == CommandRun.State.RUNNING
    assert reload(first).worker.startswith("slow@")
    # The slow lane's one slot is taken: the second watch waits for it.
    assert reload(second).state == CommandRun.State.QUEUED

    run_cancel(run=reload(first))
    wait_for(
        lambda: reload(second).state == CommandRun.State.RUNNING,
        timeout=30,
        what="the second watch to take the freed slot",
    )
    assert reload(second).worker.startswith("slow@")
    run_cancel(run=reload(second))
    wait_for(lambda: final(second), timeout=30, what="the second watch to stop")


@pytest.mark.parametrize(
    ("lane", "niceness"), [("quick", 0), ("slow", 10), ("", 10)], ids=["quick", "slow", "none"]
)
def test_slow_commands_run_at_the_lower_priority(settings, lane: str, niceness: int) -> None:
    settings.SLOW_RUN_NICENESS = 10
    assert limits_for(CommandRun(lane=lane)).niceness == niceness


@pytest.mark.django_db
def test_a_run_no_worker_takes_names_its_lane_s_queue(redis_server, learner, tiny_lab) -> None:
    """A deployment that runs no worker for the slow lane hears which queue is unserved."""
    sandbox = Sandbox.objects.create(
        owner=learner, lab_id=tiny_lab.id, slug="lane01", state=Sandbox.State.READY
    )
    long_ago = timezone.now() - dt.timedelta(seconds=settings.RUN_QUEUE_DEADLINE_SECONDS + 1)
    slow = CommandRun.objects.create(
        sandbox=sandbox, command="kubectl apply -k x", lane="slow", queued_at=long_ago
    )
    quick = CommandRun.objects.create(
        sandbox=sandbox, command="kubectl get pods", lane="quick", queued_at=long_ago
    )
    assert sorted(runs_reap()) == sorted([slow.id, quick.id])
    assert reload(slow).error.endswith("is a worker running on the `slow` queue?")
    assert reload(quick).error.endswith("is a worker running on the `interactive` queue?")
    assert reload(slow).state == CommandRun.State.FAILED
