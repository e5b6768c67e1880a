"""The learner's pages: reachable by their owner only, CSRF on every change,
usable without JavaScript. Personas: Ada (the learner), Bob (another learner)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from labapp.learning.models import Enrolment, LabProgress, Workshop
from labapp.learning.services import lab_start
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sandbox_home(settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path


@pytest.fixture
def ada(django_user_model):
    user = django_user_model.objects.create_user("ada", first_name="Ada")
    lab_start(user=user, lab_id="pss-baseline")
    Sandbox.objects.filter(owner=user).update(state=Sandbox.State.READY)
    return user


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob")


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def adas_run(ada) -> CommandRun:
    sandbox = Sandbox.objects.get(owner=ada)
    return CommandRun.objects.create(
        sandbox=sandbox,
        command="kubectl get pods",
        state=CommandRun.State.SUCCEEDED,
        exit_code=0,
        stdout="No resources\n",
        finished_at=timezone.now(),
    )


def test_bob_cannot_reach_adas_run_step_or_sandbox(ada, bob):
    run = adas_run(ada)
    sandbox = Sandbox.objects.get(owner=ada)
    as_bob = logged_in(bob)
    assert as_bob.get(f"/runs/{run.id}/").status_code == 404
    assert as_bob.get(f"/runs/{run.id}/stream/").status_code == 404
    assert (
        as_bob.post(f"/sandboxes/{sandbox.slug}/runs/", {"command": "kubectl get pods"}).status_code
        == 404
    )
    # Bob has no record of this lab: its step and sandbox URLs are Ada's business.
    for path in (
        "steps/label-namespace/hint/",
        "steps/label-namespace/solution/",
        "refresh/",
        "sandbox/",
    ):
        method = as_bob.get if path in ("refresh/", "sandbox/") else as_bob.post
        assert method(f"/labs/pss-baseline/{path}").status_code == 404, path
    reset = as_bob.post("/labs/pss-baseline/sandbox/reset/", {"confirm": "yes"})
    assert reset.status_code == 404
    assert Sandbox.objects.get(owner=ada).state == Sandbox.State.READY
    step = LabProgress.objects.get(user=ada).steps.get(step_id="label-namespace")
    assert step.hints_revealed == 0


@pytest.mark.parametrize(
    "path, data",
    [
        ("/join/", {"code": "X", "name": "n"}),
        ("/labs/pss-baseline/begin/", {}),
        ("/labs/pss-baseline/steps/label-namespace/hint/", {}),
        ("/labs/pss-baseline/steps/label-namespace/solution/", {}),
        ("/labs/pss-baseline/steps/label-namespace/reset/", {"confirm": "yes"}),
        ("/labs/pss-baseline/sandbox/reset/", {"confirm": "yes"}),
        ("SANDBOX_RUNS", {"command": "kubectl get pods"}),
    ],
)
def test_every_state_change_needs_the_csrf_token(ada, path, data):
    if path == "SANDBOX_RUNS":
        path = f"/sandboxes/{Sandbox.objects.get(owner=ada).slug}/runs/"
    strict = logged_in(ada, enforce_csrf_checks=True)
    assert strict.post(path, data).status_code == 403
    assert not CommandRun.objects.exists()


def test_the_lab_page_works_without_javascript(ada):
    client = logged_in(ada)
    page = client.get("/labs/pss-baseline/").content.decode()
    sandbox = Sandbox.objects.get(owner=ada)
    ns = sandbox.namespaces["assets"]
    # Readable: the steps' text, with the learner's own namespace, and plain forms.
    assert f"kubectl -n {ns} delete pod --all" in page
    assert f'<form method="post" action="/sandboxes/{sandbox.slug}/runs/"' in page
    # Without htmx, Run redirects back to the page, which shows that run.
    posted = client.post(
        f"/sandboxes/{sandbox.slug}/runs/",
        {"command": f"kubectl -n {ns} get pods", "step": "recycle-pods"},
    )
    run = CommandRun.objects.get()
    assert posted.status_code == 302
    assert posted["Location"] == f"/labs/pss-baseline/?run={run.id}#run-{run.id}"
    shown = client.get(posted["Location"]).content.decode()
    assert f'id="run-{run.id}"' in shown


def test_polling_fallback_stops_when_the_run_is_final(ada):
    run = adas_run(ada)
    client = logged_in(ada)
    CommandRun.objects.filter(id=run.id).update(state=CommandRun.State.RUNNING)
    running = client.get(f"/runs/{run.id}/?poll=1", headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert 'hx-trigger="every 2s [!document.hidden], every 15s [document.hidden]"' in (
        running.content.decode()
    )
    CommandRun.objects.filter(id=run.id).update(state=CommandRun.State.SUCCEEDED)
    done = client.get(f"/runs/{run.id}/?poll=1", headers={"HX-Request": "true"})
    assert done.status_code == 286  # htmx stops polling
    assert "No resources" in done.content.decode()


def test_resets_ask_for_confirmation_first(ada):
    client = logged_in(ada)
    unconfirmed = client.post("/labs/pss-baseline/sandbox/reset/")
    assert unconfirmed.status_code == 400
    assert "Are you sure?" in unconfirmed.content.decode()
    assert Sandbox.objects.get(owner=ada).state == Sandbox.State.READY
    confirmed = client.post("/labs/pss-baseline/steps/inspect-status/reset/", {"confirm": "yes"})
    assert confirmed.status_code == 302
    fresh = Sandbox.objects.exclude(state=Sandbox.State.DELETED).get(owner=ada)
    assert fresh.replay_steps == ["label-namespace", "recycle-pods"]
    states = dict(LabProgress.objects.get(user=ada).steps.values_list("step_id", "state"))
    assert states["inspect-status"] == "working"
    assert states["fix-deployment"] == "not_started"


def test_joining_a_workshop_by_code_and_coming_back(bob):
    workshop = Workshop.objects.create(
        title="PSS",
        join_code="ABC123",
        lab_ids=["pss-baseline"],
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
    assert wrong.status_code == 400 and "no workshop has the join code" in wrong.content.decode()
    Workshop.objects.filter(id=workshop.id).update(ends_at=timezone.now())
    closed = Client().post("/join/", {"code": "ABC123", "name": "Late"})
    assert closed.status_code == 400 and "is not open now" in closed.content.decode()
