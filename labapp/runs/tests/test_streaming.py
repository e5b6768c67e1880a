"""The whole path through real processes: uvicorn serves the SSE view, a real
Celery worker runs real kubectl with the learner's token, Redis carries the
stream. Nothing here is mocked."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from labapp.runs.models import CommandRun
from labapp.sandboxes.services import sandbox_create
from tests.fixtures.learners import HttpLearner, wait_until_ready
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sandbox(learner, tiny_lab, live_stack):
    """The learner's sandbox for the tiny lab, made by the stack's worker."""
    return wait_until_ready(sandbox_create(owner=learner, lab_id=tiny_lab.id))


def read_events(response: httpx.Response):
    """Parse SSE from a streaming httpx response; yields (id, event, data, arrived_at)."""
    event_id, event, data = None, None, []
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and event:
            yield event_id, event, "\n".join(data), time.monotonic()
            event_id, event, data = None, None, []


def start_run(learner: HttpLearner, sandbox, command: str, step: str = "") -> int:
    response = learner.post(f"/sandboxes/{sandbox.slug}/runs/", {"command": command, "step": step})
    assert response.status_code == 202, response.text
    return int(re.search(r'id="run-(\d+)"', response.text).group(1))


def test_first_chunk_arrives_before_the_command_ends(learner, sandbox, live_stack):
    ada = HttpLearner.login(learner, live_stack.url)
    ns = sandbox.namespaces["shop"]
    run_id = start_run(ada, sandbox, f"kubectl -n {ns} get pods -w --request-timeout=4s")
    events = []
    with ada.client.stream("GET", f"/runs/{run_id}/stream/?format=json") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in read_events(response):
            events.append(event)
            if event[1] == "done":
                break
    chunks = [e for e in events if e[1] == "stdout"]
    done = events[-1]
    # The pod's row came through live, seconds before the command ended.
    early = "".join(json.loads(c[2]) for c in chunks if done[3] - c[3] > 2.0)
    assert "shop-" in early, events
    payload = json.loads(done[2])
    assert (payload["state"], payload["exit_code"]) == ("succeeded", 0)
    stored = CommandRun.objects.get(id=run_id)
    assert stored.stdout == "".join(json.loads(c[2]) for c in chunks)


def test_a_reconnect_with_last_event_id_resumes_exactly(learner, sandbox, live_stack, kubectl):
    ada = HttpLearner.login(learner, live_stack.url)
    ns = sandbox.namespaces["shop"]
    run_id = start_run(ada, sandbox, f"kubectl -n {ns} get pods -w --request-timeout=6s")
    first = []
    with ada.client.stream("GET", f"/runs/{run_id}/stream/?format=json") as response:
        for event in read_events(response):
            first.append(event)
            break  # the browser drops the connection after one chunk
    # While nobody listens, the watch keeps printing: scale the Deployment up.
    scaled = kubectl("-n", ns, "scale", "deployment", "shop", "--replicas=3")
    assert scaled.returncode == 0, scaled.stderr
    rest = []
    headers = {"Last-Event-ID": first[-1][0]}
    with ada.client.stream(
        "GET", f"/runs/{run_id}/stream/?format=json", headers=headers
    ) as response:
        for event in read_events(response):
            rest.append(event)
            if event[1] == "done":
                break
    ids = [e[0] for e in first + rest]
    assert len(ids) == len(set(ids)), "an event was repeated"
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    text = "".join(json.loads(e[2]) for e in first + rest if e[1] == "stdout")
    stored = CommandRun.objects.get(id=run_id)
    assert stored.state == CommandRun.State.SUCCEEDED
    assert text == stored.stdout  # nothing lost, nothing repeated
    assert text.count("shop-") >= 3


def test_a_finished_run_replays_from_the_database_when_redis_has_no_stream(
    learner, sandbox, live_stack, redis_server
):
    ada = HttpLearner.login(learner, live_stack.url)
    ns = sandbox.namespaces["shop"]
    run_id = start_run(ada, sandbox, f"kubectl -n {ns} get configmap shop -o name")
    wait_for(
        lambda: CommandRun.objects.get(id=run_id).state == "succeeded",
        timeout=30,
        what="the run to finish",
    )
    import redis

    redis.Redis.from_url(redis_server.url).delete(f"labapp:run:{run_id}")
    with ada.client.stream("GET", f"/runs/{run_id}/stream/?format=json") as response:
        events = list(read_events(response))
    assert [e[1] for e in events] == ["stdout", "done"]
    assert json.loads(events[0][2]) == "configmap/shop\n"


def test_a_refused_command_is_recorded_and_never_queued(learner, sandbox, live_stack):
    ada = HttpLearner.login(learner, live_stack.url)
    response = ada.post(
        f"/sandboxes/{sandbox.slug}/runs/", {"command": "kubectl get pods; cat /etc/passwd"}
    )
    assert response.status_code == 422
    assert "Not run." in response.text and "`;`" in response.text
    run = CommandRun.objects.get(sandbox=sandbox)
    assert (run.state, run.started_at) == ("refused", None)
    # Its stream ends at once with the verdict: no live stream will ever come.
    started = time.monotonic()
    with ada.client.stream("GET", f"/runs/{run.id}/stream/?format=json") as stream:
        events = list(read_events(stream))
    assert time.monotonic() - started < 3
    assert [e[1] for e in events] == ["done"]
    assert json.loads(events[0][2])["state"] == "refused"


def test_another_learner_cannot_reach_the_learners_run_or_sandbox(
    learner, sandbox, live_stack, another_learner
):
    ada = HttpLearner.login(learner, live_stack.url)
    ns = sandbox.namespaces["shop"]
    run_id = start_run(ada, sandbox, f"kubectl -n {ns} get pods")
    bob = HttpLearner.login(another_learner, live_stack.url)
    assert bob.client.get(f"/runs/{run_id}/stream/").status_code == 404
    assert bob.client.get(f"/runs/{run_id}/").status_code == 404
    stolen = bob.post(f"/sandboxes/{sandbox.slug}/runs/", {"command": "kubectl get pods"})
    assert stolen.status_code == 404
    assert CommandRun.objects.filter(sandbox=sandbox).count() == 1
