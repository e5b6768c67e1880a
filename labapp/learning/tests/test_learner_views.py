"""The learner's pages: reachable by their owner only, CSRF on every change,
usable without JavaScript. Personas: the learner (Ada) and another learner (Bob)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from labapp.learning.models import Enrolment, LabProgress, Workshop
from labapp.learning.services import lab_start
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox
from tests.fixtures.personas import logged_in

pytestmark = pytest.mark.django_db
LAB = "/labs/tiny"


@pytest.fixture(autouse=True)
def sandbox_home(settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path


@pytest.fixture
def started(learner, tiny_lab) -> Sandbox:
    """The learner has started the tiny lab, and its sandbox is ready."""
    lab_start(user=learner, lab_id=tiny_lab.id)
    Sandbox.objects.filter(owner=learner).update(state=Sandbox.State.READY)
    return Sandbox.objects.get(owner=learner)


def the_learners_run(sandbox: Sandbox) -> CommandRun:
    return CommandRun.objects.create(
        sandbox=sandbox,
        command="kubectl get pods",
        state=CommandRun.State.SUCCEEDED,
        exit_code=0,
        stdout="No resources\n",
        finished_at=timezone.now(),
    )


def test_another_learner_cannot_reach_the_learners_run_step_or_sandbox(
    started, learner, as_another_learner
):
    run = the_learners_run(started)
    assert as_another_learner.get(f"/runs/{run.id}/").status_code == 404
    assert as_another_learner.get(f"/runs/{run.id}/stream/").status_code == 404
    stolen = as_another_learner.post(
        f"/sandboxes/{started.slug}/runs/", {"command": "kubectl get pods"}
    )
    assert stolen.status_code == 404
    # Bob has no record of this lab: its step and sandbox URLs are Ada's business.
    for path in ("steps/label-namespace/hint/", "steps/label-namespace/solution/"):
        assert as_another_learner.post(f"{LAB}/{path}").status_code == 404, path
    for path in ("refresh/", "sandbox/"):
        assert as_another_learner.get(f"{LAB}/{path}").status_code == 404, path
    reset = as_another_learner.post(f"{LAB}/sandbox/reset/", {"confirm": "yes"})
    assert reset.status_code == 404
    assert Sandbox.objects.get(owner=learner).state == Sandbox.State.READY
    step = LabProgress.objects.get(user=learner).steps.get(step_id="label-namespace")
    assert step.hints_revealed == 0
    assert CommandRun.objects.count() == 1


@pytest.mark.parametrize(
    "path, data",
    [
        ("/join/", {"code": "X", "name": "n"}),
        (f"{LAB}/begin/", {}),
        (f"{LAB}/steps/label-namespace/hint/", {}),
        (f"{LAB}/steps/label-namespace/solution/", {}),
        (f"{LAB}/steps/label-namespace/reset/", {"confirm": "yes"}),
        (f"{LAB}/sandbox/reset/", {"confirm": "yes"}),
        ("SANDBOX_RUNS", {"command": "kubectl get pods"}),
    ],
)
def test_every_state_change_needs_the_csrf_token(started, learner, path, data):
    if path == "SANDBOX_RUNS":
        path = f"/sandboxes/{started.slug}/runs/"
    strict = logged_in(learner, enforce_csrf_checks=True)
    assert strict.post(path, data).status_code == 403
    assert not CommandRun.objects.exists()


def test_the_lab_page_works_without_javascript(started, as_learner):
    page = as_learner.get(f"{LAB}/").content.decode()
    ns = started.namespaces["shop"]
    # Readable: the steps' text, with the learner's own namespace, and plain forms.
    assert f"kubectl -n {ns} delete pod --all" in page
    assert f'<form method="post" action="/sandboxes/{started.slug}/runs/"' in page
    # Without htmx, Run redirects back to the page, which shows that run.
    posted = as_learner.post(
        f"/sandboxes/{started.slug}/runs/",
        {"command": f"kubectl -n {ns} get pods", "step": "recycle-pods"},
    )
    run = CommandRun.objects.get()
    assert posted.status_code == 302
    assert posted["Location"] == f"{LAB}/?run={run.id}#run-{run.id}"
    shown = as_learner.get(posted["Location"]).content.decode()
    assert f'id="run-{run.id}"' in shown


def test_polling_fallback_stops_when_the_run_is_final(started, as_learner):
    run = the_learners_run(started)
    CommandRun.objects.filter(id=run.id).update(state=CommandRun.State.RUNNING)
    running = as_learner.get(f"/runs/{run.id}/?poll=1", headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert 'hx-trigger="every 2s [!document.hidden], every 15s [document.hidden]"' in (
        running.content.decode()
    )
    CommandRun.objects.filter(id=run.id).update(state=CommandRun.State.SUCCEEDED)
    done = as_learner.get(f"/runs/{run.id}/?poll=1", headers={"HX-Request": "true"})
    assert done.status_code == 286  # htmx stops polling
    assert "No resources" in done.content.decode()


def test_resets_ask_for_confirmation_first(started, learner, as_learner):
    unconfirmed = as_learner.post(f"{LAB}/sandbox/reset/")
    assert unconfirmed.status_code == 400
    assert "Are you sure?" in unconfirmed.content.decode()
    assert Sandbox.objects.get(owner=learner).state == Sandbox.State.READY
    # Every step passed; resetting the second starts it again, and the steps after it.
    LabProgress.objects.get(user=learner).steps.update(state="passed")
    confirmed = as_learner.post(f"{LAB}/steps/configure/reset/", {"confirm": "yes"})
    assert confirmed.status_code == 302
    fresh = Sandbox.objects.exclude(state=Sandbox.State.DELETED).get(owner=learner)
    assert fresh.id != started.id
    assert fresh.replay_steps == ["label-namespace"]
    states = dict(LabProgress.objects.get(user=learner).steps.values_list("step_id", "state"))
    assert states == {
        "label-namespace": "passed",
        "configure": "working",
        "recycle-pods": "not_started",
    }


def test_joining_a_workshop_by_code_and_coming_back(tiny_lab):
    workshop = Workshop.objects.create(
        title="PSS",
        join_code="ABC123",
        lab_ids=[tiny_lab.id],
        ends_at=timezone.now() + dt.timedelta(hours=1),
    )
    anonymous = Client()
    joined = anonymous.post("/join/", {"code": "abc123", "name": "Grace"})
    assert joined.status_code == 302 and joined["Location"] == "/w/ABC123/"
    enrolment = Enrolment.objects.get(workshop=workshop)
    assert enrolment.display_name == "Grace"
    page = anonymous.get("/w/ABC123/").content.decode()
    assert "Welcome, Grace" in page
    again = anonymous.post("/join/", {"code": "ABC123", "name": "Grace"})
    assert again.status_code == 302
    assert Enrolment.objects.count() == 1  # the same learner, resumed

    wrong = Client().post("/join/", {"code": "NOPE", "name": "X"})
    assert wrong.status_code == 400 and "No open workshop has this join code" in wrong.text
    Workshop.objects.filter(id=workshop.id).update(ends_at=timezone.now())
    closed = Client().post("/join/", {"code": "ABC123", "name": "Late"})
    assert closed.status_code == 400 and "No open workshop has this join code" in closed.text
