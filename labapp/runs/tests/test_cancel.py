"""The learner's Cancel on a run: a queued run ends without running, a running one's
process group is stopped by its worker, and the run ends as CANCELLED.
Personas: the learner (Ada) who cancels, another learner (Bob) who may not."""

from __future__ import annotations

import json
import time
from typing import cast

import pytest
import redis

from labapp.learning.attempts import attempt_execute
from labapp.learning.services import lab_start
from labapp.live.streams import StreamEntries, stream_key
from labapp.runs.cancel import CancelWatch, cancel_key
from labapp.runs.models import CommandRun
from labapp.runs.services import CANCELLED, run_cancel, run_claim, run_finish, run_start
from labapp.runs.tests.processes import processes_with
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.services import sandbox_create
from labapp.shell.execute import RunResult
from labapp.shell.learner_user import LearnerUser
from tests.fixtures.learners import HttpLearner, wait_until_ready
from tests.fixtures.personas import logged_in
from tests.fixtures.waiting import wait_for

HTMX = {"HX-Request": "true"}


@pytest.fixture
def sandbox(settings, tmp_path, learner, tiny_lab) -> Sandbox:
    settings.SANDBOX_HOME = tmp_path
    lab_start(user=learner, lab_id=tiny_lab.id)
    Sandbox.objects.filter(owner=learner).update(state=Sandbox.State.READY)
    return Sandbox.objects.get(owner=learner)


@pytest.fixture
def redis_url(redis_server, settings) -> str:
    """The session's Redis, without what earlier tests left under the same run ids
    (each test's database numbers its runs from 1 again)."""
    settings.REDIS_URL = redis_server.url
    client = redis.Redis.from_url(redis_server.url)
    for key in client.scan_iter("labapp:run:*"):
        client.delete(key)
    return redis_server.url


def stream_entries(redis_url: str, run_id: int) -> list[tuple[str, str]]:
    entries = cast(StreamEntries, redis.Redis.from_url(redis_url).xrange(stream_key(run_id)))
    return [(fields[b"kind"].decode(), fields[b"text"].decode()) for _, fields in entries]


# --- the service ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_cancelled_queued_run_ends_at_once_and_never_runs(sandbox, redis_url):
    run = run_start(sandbox=sandbox, command="kubectl get pods")
    cancelled = run_cancel(run=run)
    assert (cancelled.state, cancelled.error) == (CommandRun.State.CANCELLED, CANCELLED)
    kind, text = stream_entries(redis_url, run.id)[-1]
    assert kind == "done" and json.loads(text)["state"] == "cancelled"
    # The worker that takes its queue message later finds nothing to run.
    assert attempt_execute(run_id=run.id, worker="test") is None
    run.refresh_from_db()
    assert (run.state, run.started_at) == (CommandRun.State.CANCELLED, None)


@pytest.mark.django_db
def test_cancelling_a_running_run_tells_its_worker(sandbox, redis_url):
    run = run_start(sandbox=sandbox, command="kubectl get pods -w")
    CommandRun.objects.filter(id=run.id).update(state=CommandRun.State.RUNNING)
    watch = CancelWatch(run.id)
    assert watch() is False
    assert run_cancel(run=run).state == CommandRun.State.RUNNING  # its worker ends it
    watch.next_look = 0.0
    assert watch() is True
    assert redis.Redis.from_url(redis_url).ttl(cancel_key(run.id)) > 0


@pytest.mark.django_db
def test_a_run_its_worker_cancelled_is_recorded_as_cancelled(sandbox, redis_url):
    run = run_start(sandbox=sandbox, command="kubectl get pods -w")
    claimed = run_claim(run_id=run.id, worker="test")
    result = RunResult(
        exit_code=None,
        stdout="NAME   READY\n",
        stderr="",
        duration_s=1.5,
        first_byte_s=0.1,
        timed_out=False,
        truncated=False,
        error="cancelled",
        cancelled=True,
    )
    finished = run_finish(claimed=claimed, result=result)
    assert (finished.state, finished.error) == (CommandRun.State.CANCELLED, CANCELLED)
    assert finished.stdout == "NAME   READY\n"  # what it printed before it was stopped
    assert json.loads(stream_entries(redis_url, run.id)[-1][1])["state"] == "cancelled"


@pytest.mark.django_db
def test_a_finished_run_stays_as_it_ended(sandbox, redis_url):
    run = run_start(sandbox=sandbox, command="kubectl get pods")
    CommandRun.objects.filter(id=run.id).update(state=CommandRun.State.SUCCEEDED, exit_code=0)
    assert run_cancel(run=run).state == CommandRun.State.SUCCEEDED
    assert not redis.Redis.from_url(redis_url).exists(cancel_key(run.id))


# --- the button and the view ----------------------------------------------------------


@pytest.mark.django_db
def test_the_panel_offers_cancel_while_the_run_can_end(sandbox, learner, redis_url):
    ada = logged_in(learner)
    run = run_start(sandbox=sandbox, command="kubectl get pods")
    panel = ada.get(f"/runs/{run.id}/").content.decode()
    assert f'action="/runs/{run.id}/cancel/"' in panel and "csrfmiddlewaretoken" in panel
    assert ada.post(f"/runs/{run.id}/cancel/", headers=HTMX).status_code == 204
    panel = ada.get(f"/runs/{run.id}/").content.decode()
    assert 'class="run-cancel"' not in panel
    assert 'data-state="cancelled"' in panel and "Cancelled" in panel


@pytest.mark.django_db
def test_without_javascript_cancel_returns_to_the_lab_page(sandbox, learner, redis_url):
    run = run_start(sandbox=sandbox, command="kubectl get pods")
    response = logged_in(learner).post(f"/runs/{run.id}/cancel/")
    assert response.status_code == 302
    assert response["Location"] == f"/labs/{sandbox.lab_id}/?run={run.id}#run-{run.id}"
    run.refresh_from_db()
    assert run.state == CommandRun.State.CANCELLED


@pytest.mark.django_db
def test_another_learner_cannot_cancel_or_see_the_button(sandbox, another_learner):
    run = run_start(sandbox=sandbox, command="kubectl get pods")
    bob = logged_in(another_learner)
    assert bob.post(f"/runs/{run.id}/cancel/", headers=HTMX).status_code == 404
    assert bob.get(f"/runs/{run.id}/").status_code == 404
    run.refresh_from_db()
    assert run.state == CommandRun.State.QUEUED


@pytest.mark.django_db
def test_cancel_is_a_post_with_a_csrf_token(sandbox, learner):
    run = run_start(sandbox=sandbox, command="kubectl get pods")
    assert logged_in(learner).get(f"/runs/{run.id}/cancel/").status_code == 405
    strict = logged_in(learner, enforce_csrf_checks=True)
    assert strict.post(f"/runs/{run.id}/cancel/", headers=HTMX).status_code == 403
    run.refresh_from_db()
    assert run.state == CommandRun.State.QUEUED


@pytest.mark.django_db
def test_when_the_worker_cannot_be_told_the_learner_hears_why(
    sandbox, learner, settings, unused_tcp_port
):
    settings.REDIS_URL = f"redis://127.0.0.1:{unused_tcp_port}/0"
    run = run_start(sandbox=sandbox, command="kubectl get pods -w")
    CommandRun.objects.filter(id=run.id).update(state=CommandRun.State.RUNNING)
    response = logged_in(learner).post(f"/runs/{run.id}/cancel/", headers=HTMX)
    assert response.status_code == 503
    assert "could not be cancelled now" in response.content.decode()


# --- through the real worker ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_running_watch_through_the_real_worker(learner, tiny_lab, live_stack):
    sandbox = wait_until_ready(sandbox_create(owner=learner, lab_id=tiny_lab.id))
    ada = HttpLearner.login(learner, live_stack.url)
    namespace = sandbox.namespaces["shop"]
    command = f"kubectl -n {namespace} get pods -w"
    response = ada.post(f"/sandboxes/{sandbox.slug}/runs/", {"command": command})
    assert response.status_code == 202, response.text
    run = CommandRun.objects.get(sandbox=sandbox, command=command)
    assert 'class="run-cancel"' in response.text

    def watching():
        run.refresh_from_db()
        return run.state == CommandRun.State.RUNNING and processes_with(f"{namespace} get pods -w")

    (kubectl,) = wait_for(watching, timeout=30, what="the watch to start")
    # The worker is root here: the learner's kubectl runs as the sandbox's own uid.
    assert kubectl.uid == LearnerUser.for_sandbox(sandbox.id).uid

    asked = time.monotonic()
    assert ada.post(f"/runs/{run.id}/cancel/", {}).status_code == 204

    def ended() -> bool:
        run.refresh_from_db()
        return run.is_final

    wait_for(ended, timeout=10, what="the run to end")
    assert time.monotonic() - asked < 8  # about a second, unless the machine is busy
    assert (run.state, run.error) == (CommandRun.State.CANCELLED, CANCELLED)
    assert not processes_with(f"{namespace} get pods -w")
    # The panel says so, and so does the end of its stream.
    assert "Cancelled" in ada.client.get(f"/runs/{run.id}/").text
    with ada.client.stream("GET", f"/runs/{run.id}/stream/?format=json") as stream:
        last = [line for line in stream.iter_lines() if line.startswith("data: ")][-1]
    assert json.loads(last.removeprefix("data: "))["state"] == "cancelled"
