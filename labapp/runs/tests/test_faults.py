"""Faults under real processes: a worker killed mid-run, Redis restarted mid-run.

Each test gets its own Redis and worker, so killing them harms no other test.
A learner's kubectl runs in a process group of its own, so killing the worker's
group misses it: its parent-death signal is what takes it down with the worker.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from labapp.learning.attempts import attempt_start
from labapp.ops.devstack import RedisServer, Stack, kill_group
from labapp.runs.models import CommandRun
from labapp.runs.services import WORKER_LOST, runs_reap
from labapp.runs.tests.processes import Process, processes_with
from labapp.sandboxes.services import sandbox_create
from tests.fixtures.learners import wait_until_ready
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

# Short limits so "within the deadline" is seconds, not minutes.
RUN_TIMEOUT, GRACE = 8, 2


@dataclass
class FaultyStack:
    """A test's own Redis and worker, to kill and restart at will."""

    stack: Stack
    redis: RedisServer
    worker: subprocess.Popen


@pytest.fixture
def faulty_stack(private_stack, monkeypatch) -> FaultyStack:
    monkeypatch.setattr(settings, "RUN_TIMEOUT_SECONDS", RUN_TIMEOUT)
    monkeypatch.setattr(settings, "RUN_DEADLINE_GRACE_SECONDS", GRACE)
    worker = private_stack.stack.start_worker(
        "faulty",
        LABAPP_RUN_TIMEOUT_SECONDS=str(RUN_TIMEOUT),
        LABAPP_RUN_DEADLINE_GRACE_SECONDS=str(GRACE),
    )
    return FaultyStack(private_stack.stack, private_stack.redis, worker)


@pytest.fixture
def ready_sandbox(faulty_stack, learner, tiny_lab):
    return wait_until_ready(sandbox_create(owner=learner, lab_id=tiny_lab.id))


def running(run: CommandRun) -> CommandRun | None:
    run.refresh_from_db()
    return run if run.state == CommandRun.State.RUNNING else None


def final(run: CommandRun) -> CommandRun | None:
    run.refresh_from_db()
    return run if run.is_final else None


def long_watch(sandbox) -> str:
    return f"kubectl -n {sandbox.namespaces['shop']} get pods -w --request-timeout=6s"


def endless_watch(sandbox) -> str:
    """A watch that would outlive the run's timeout if nothing stopped it."""
    return f"kubectl -n {sandbox.namespaces['shop']} get pods -w --request-timeout=60s"


def watching(run: CommandRun, sandbox) -> list[Process]:
    """The run's kubectl, once the run is RUNNING and its kubectl has started."""
    if running(run) is None:
        return []
    return processes_with(f"{sandbox.namespaces['shop']} get pods -w")


def gone_soon(sandbox, seconds: float = 3) -> bool:
    return wait_for(
        lambda: not processes_with(f"{sandbox.namespaces['shop']} get pods -w"),
        timeout=seconds,
        interval=0.1,
        what="the learner's kubectl to end with its worker",
    )


def test_a_killed_worker_leaves_the_run_failed_worker_lost_within_the_deadline(
    faulty_stack, ready_sandbox
):
    run = attempt_start(sandbox=ready_sandbox, command=endless_watch(ready_sandbox))
    wait_for(lambda: watching(run, ready_sandbox), timeout=30, what="the watch to start")
    kill_group(faulty_stack.worker)  # the whole worker: main process and pool
    assert gone_soon(ready_sandbox)

    # What the beat schedule runs every few seconds; called here directly.
    reaped = wait_for(
        lambda: final(run) if runs_reap() or final(run) else None,
        timeout=RUN_TIMEOUT + GRACE + 10,
        interval=0.5,
        what="the reaper",
    )
    assert reaped.state == CommandRun.State.FAILED
    assert reaped.error == WORKER_LOST
    # Ended once its deadline passed, and promptly after it.
    assert reaped.deadline_at <= reaped.finished_at < reaped.deadline_at + dt.timedelta(seconds=5)


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _pool_children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_a_killed_pool_process_is_noticed_at_once_and_the_run_is_not_repeated(
    faulty_stack, ready_sandbox
):
    run = attempt_start(sandbox=ready_sandbox, command=long_watch(ready_sandbox))
    wait_for(lambda: running(run), timeout=30, what="the run to start")
    for child in _pool_children(faulty_stack.worker.pid):
        os.kill(child, signal.SIGKILL)
    # Celery hands the task back (acks_late + reject_on_worker_lost); the
    # service sees a RUNNING run redelivered and ends it instead of re-running.
    ended = wait_for(lambda: final(run), timeout=RUN_TIMEOUT, what="the run to end")
    assert ended.error == WORKER_LOST
    assert ended.stdout == ""


def test_a_killed_pool_process_takes_its_learners_kubectl_with_it(faulty_stack, ready_sandbox):
    run = attempt_start(sandbox=ready_sandbox, command=endless_watch(ready_sandbox))
    (kubectl,) = wait_for(lambda: watching(run, ready_sandbox), timeout=30, what="the watch")
    pool = _pool_children(faulty_stack.worker.pid)
    assert _parent(kubectl.pid) in pool  # a child of the pool process, in its own group
    assert os.getpgid(kubectl.pid) != os.getpgid(faulty_stack.worker.pid)
    for child in pool:
        os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()
    assert gone_soon(ready_sandbox)
    assert time.monotonic() - killed_at < 3
    # The run itself still ends as "worker lost", and is not run again.
    ended = wait_for(lambda: final(run), timeout=RUN_TIMEOUT, what="the run to end")
    assert ended.error == WORKER_LOST
    assert not processes_with(f"{ready_sandbox.namespaces['shop']} get pods -w")


def test_after_redis_restarts_mid_run_the_final_result_is_still_stored(faulty_stack, ready_sandbox):
    run = attempt_start(sandbox=ready_sandbox, command=long_watch(ready_sandbox))
    wait_for(lambda: running(run), timeout=30, what="the run to start")
    faulty_stack.redis.restart()  # no persistence: every stream entry is gone
    done = wait_for(lambda: final(run), timeout=30, what="the run to finish")
    assert done.state == CommandRun.State.SUCCEEDED
    assert done.exit_code == 0
    assert "shop-" in done.stdout  # the pod row printed before the restart survived
