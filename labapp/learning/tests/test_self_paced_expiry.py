"""A sandbox outside a workshop expires after a while without activity (a run or a
visit to its lab page); a workshop's sandboxes live as long as the workshop says.
Personas: the learner (Ada, on her own) and another learner (Bob, in a workshop)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from labapp.learning.models import Enrolment, Workshop
from labapp.learning.services import lab_start
from labapp.runs.services import RunNotAllowed, run_start
from labapp.sandboxes.models import Sandbox
from tests.fixtures.personas import logged_in

pytestmark = pytest.mark.django_db
IDLE = dt.timedelta(minutes=45)


@pytest.fixture(autouse=True)
def idle_setting(settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path
    settings.SELF_PACED_IDLE_MINUTES = 45


@pytest.fixture
def started_at():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def ready_sandbox(user, tiny_lab, workshop: Workshop | None = None) -> Sandbox:
    lab_start(user=user, lab_id=tiny_lab.id, workshop=workshop)
    Sandbox.objects.filter(owner=user).update(state=Sandbox.State.READY)
    return Sandbox.objects.get(owner=user)


def test_a_self_paced_sandbox_expires_when_idle(started_at, learner, tiny_lab):
    start = timezone.now()
    sandbox = ready_sandbox(learner, tiny_lab)
    assert sandbox.expires_at == start + IDLE
    started_at.shift(IDLE + dt.timedelta(seconds=1))
    sandbox.refresh_from_db()
    assert sandbox.is_expired()
    with pytest.raises(RunNotAllowed, match="expired"):
        run_start(sandbox=sandbox, command="kubectl get pods")
    # The expiry job picks it up (state READY, expires_at in the past).
    assert Sandbox.objects.filter(state="ready", expires_at__lt=timezone.now()).get() == sandbox


def test_a_page_visit_or_a_run_keeps_it_alive(started_at, learner, tiny_lab):
    sandbox = ready_sandbox(learner, tiny_lab)
    as_learner = logged_in(learner)
    started_at.shift(dt.timedelta(minutes=30))
    page = as_learner.get("/labs/tiny/")
    assert page.status_code == 200
    sandbox.refresh_from_db()
    assert sandbox.expires_at == timezone.now() + IDLE
    assert f"until {sandbox.expires_at:%H:%M} UTC" in page.text  # the page shows the new time
    started_at.shift(dt.timedelta(minutes=30))
    posted = as_learner.post(
        f"/sandboxes/{sandbox.slug}/runs/", {"command": "kubectl get pods"}, HTTP_HX_REQUEST="true"
    )
    assert posted.status_code == 202
    sandbox.refresh_from_db()
    assert sandbox.expires_at == timezone.now() + IDLE
    started_at.shift(dt.timedelta(minutes=44))
    sandbox.refresh_from_db()
    assert not sandbox.is_expired()  # 104 minutes after it was made, active all along


def test_an_expired_sandbox_stays_expired(started_at, learner, tiny_lab):
    sandbox = ready_sandbox(learner, tiny_lab)
    started_at.shift(IDLE + dt.timedelta(minutes=1))
    page = logged_in(learner).get("/labs/tiny/")
    assert "Your sandbox has expired" in page.text
    sandbox.refresh_from_db()
    assert sandbox.is_expired()


def test_a_workshop_sandbox_keeps_the_workshops_lifetime(started_at, another_learner, tiny_lab):
    start = timezone.now()
    workshop = Workshop.objects.create(
        title="Tiny",
        join_code="LIFE01",
        lab_ids=[tiny_lab.id],
        ends_at=start + dt.timedelta(hours=3),
        sandbox_lifetime_minutes=180,
    )
    Enrolment.objects.create(workshop=workshop, user=another_learner, display_name="Bob")
    sandbox = ready_sandbox(another_learner, tiny_lab, workshop=workshop)
    assert sandbox.expires_at == start + dt.timedelta(hours=3)
    started_at.shift(dt.timedelta(minutes=30))
    assert logged_in(another_learner).get("/labs/tiny/").status_code == 200
    sandbox.refresh_from_db()
    assert sandbox.expires_at == start + dt.timedelta(hours=3)  # not moved by the visit


def test_a_sandbox_made_before_expiry_existed_gets_one_on_its_next_visit(
    started_at, learner, tiny_lab
):
    sandbox = ready_sandbox(learner, tiny_lab)
    Sandbox.objects.filter(id=sandbox.id).update(expires_at=None)
    assert logged_in(learner).get("/labs/tiny/").status_code == 200
    sandbox.refresh_from_db()
    assert sandbox.expires_at == timezone.now() + IDLE
