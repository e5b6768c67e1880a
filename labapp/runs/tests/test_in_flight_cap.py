"""A sandbox takes a few commands at a time (queued + running); the next is refused.
Persona: the learner (Ada), clicking Run faster than the worker runs."""

from __future__ import annotations

import pytest
from django.utils import timezone

from labapp.learning.services import lab_start
from labapp.runs.models import CommandRun
from labapp.runs.services import RunNotAllowed, run_start
from labapp.sandboxes.models import Sandbox
from tests.fixtures.personas import logged_in

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def sandbox(settings, tmp_path, learner, tiny_lab) -> Sandbox:
    settings.SANDBOX_HOME = tmp_path
    settings.RUN_IN_FLIGHT_PER_SANDBOX = 3
    lab_start(user=learner, lab_id=tiny_lab.id)
    Sandbox.objects.filter(owner=learner).update(state=Sandbox.State.READY)
    return Sandbox.objects.get(owner=learner)


def test_the_fourth_command_in_flight_is_refused_and_records_nothing(sandbox):
    first, second, _ = (run_start(sandbox=sandbox, command="kubectl get pods") for _ in "123")
    CommandRun.objects.filter(id=first.id).update(state=CommandRun.State.RUNNING)
    with pytest.raises(RunNotAllowed, match="you already have 3 commands queued or running"):
        run_start(sandbox=sandbox, command="kubectl get pods")
    assert CommandRun.objects.count() == 3
    assert set(CommandRun.objects.values_list("state", flat=True)) == {"queued", "running"}
    # One finishes: a slot is free again.
    CommandRun.objects.filter(id=second.id).update(
        state=CommandRun.State.SUCCEEDED, finished_at=timezone.now()
    )
    assert run_start(sandbox=sandbox, command="kubectl get pods").state == "queued"


def test_refused_and_finished_commands_do_not_count(sandbox):
    for _ in range(5):  # the restricted shell refuses these: nothing is in flight
        assert run_start(sandbox=sandbox, command="rm -rf /").state == "refused"
    CommandRun.objects.create(sandbox=sandbox, command="kubectl get ns", state="failed")
    for _ in range(3):
        assert run_start(sandbox=sandbox, command="kubectl get pods").state == "queued"


def test_the_cap_is_per_sandbox(sandbox, another_learner, tiny_lab):
    for _ in range(3):
        run_start(sandbox=sandbox, command="kubectl get pods")
    lab_start(user=another_learner, lab_id=tiny_lab.id)
    Sandbox.objects.filter(owner=another_learner).update(state=Sandbox.State.READY)
    bobs = Sandbox.objects.get(owner=another_learner)
    assert run_start(sandbox=bobs, command="kubectl get pods").state == "queued"


def test_the_learner_sees_why_the_fourth_click_did_nothing(sandbox, learner):
    as_learner = logged_in(learner)
    url, data = f"/sandboxes/{sandbox.slug}/runs/", {"command": "kubectl get pods"}
    for _ in range(3):
        assert as_learner.post(url, data, headers=HTMX).status_code == 202
    refused = as_learner.post(url, data, headers=HTMX)
    assert refused.status_code == 409
    assert "you already have 3 commands queued or running; wait for one to finish" in (refused.text)
    assert CommandRun.objects.count() == 3
