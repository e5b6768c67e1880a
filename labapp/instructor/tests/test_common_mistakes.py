"""Common mistakes on the instructor's dashboard: per step, the cohort's known
mistakes and failed checks with counts, and a stuck learner's card names the
mistake they are making. Personas: the instructor, and learners Ada, Bob, Cy and Di
on the Baseline lab."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from labapp.catalog.registry import all_labs
from labapp.checks.outcome import Outcome, Status
from labapp.instructor.selectors import dashboard
from labapp.instructor.services import workshop_create
from labapp.learning.models import Enrolment, StepProgress
from labapp.learning.services import lab_start
from tests.fixtures.catalog import SHIPPED_LABS, use_lab_root

pytestmark = pytest.mark.django_db
NOW = timezone.now()
NO_POD = "no assets pod is running"


@pytest.fixture(autouse=True)
def shipped_labs(settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path
    use_lab_root(settings, SHIPPED_LABS)
    yield
    all_labs.cache_clear()


@pytest.fixture
def workshop(instructor):
    return workshop_create(
        instructor=instructor,
        title="Pod Security",
        lab_ids=["pss-privileged", "pss-baseline", "pss-restricted"],
        starts_at=NOW - dt.timedelta(hours=1),
        ends_at=NOW + dt.timedelta(hours=2),
    )


def rollout_message() -> str:
    step = all_labs()["pss-baseline"].step("recycle-pods")
    return next(m.message for m in step.mistakes if "rollout" in m.title)


def on_recycle_pods(workshop, django_user_model, name: str, *, detail: str, failures: int = 1):
    """`name` is on step 2 (recycle-pods), its pod check failing with `detail`."""
    user = django_user_model.objects.create_user(name.lower())
    Enrolment.objects.create(workshop=workshop, user=user, display_name=name)
    record = lab_start(user=user, lab_id="pss-baseline", workshop=workshop)
    order = [step.id for step in all_labs()["pss-baseline"].steps]
    for step in record.steps.all():
        if order.index(step.step_id) < order.index("recycle-pods"):
            step.state, step.started_at, step.passed_at = "passed", NOW, NOW
        elif step.step_id == "recycle-pods":
            step.state, step.started_at = "failing", NOW - dt.timedelta(minutes=3)
            step.failed_in_a_row = failures
            step.last_outcomes = [
                Outcome(Status.FAIL, NO_POD, "0 Running pods", "1 Running", detail).to_dict(),
                Outcome(Status.FAIL, "kubectl found no pods", "a match", "none").to_dict(),
                Outcome(Status.PASS, "the assets Deployment is still there").to_dict(),
            ]
        else:
            step.state = StepProgress.State.NOT_STARTED
        step.save()
    record.current_step_id = "recycle-pods"
    record.save()


def test_the_cohorts_mistakes_and_failed_checks_are_counted_per_step(workshop, django_user_model):
    message = rollout_message()
    on_recycle_pods(workshop, django_user_model, "Ada", detail=message, failures=3)
    on_recycle_pods(workshop, django_user_model, "Bob", detail=message)
    on_recycle_pods(workshop, django_user_model, "Cy", detail="")
    board = dashboard(workshop=workshop, lab_id="pss-baseline", now=NOW)
    [step] = board.mistakes
    assert (step.position, step.step_id, step.learners) == (2, "recycle-pods", 3)
    assert step.mistakes == [("restarted the rollout instead of deleting the pods", 2)]
    assert step.failed_checks == [(NO_POD, 3), ("kubectl found no pods", 3)]
    rows = {row.enrolment.display_name: row for row in board.rows}
    assert rows["Cy"].mistake == ""
    # Ada is stuck, and her card says which mistake she is making.
    assert rows["Ada"].stuck_reason == (
        f"3 failed checks in a row on step 2: {NO_POD}; "
        "the mistake: restarted the rollout instead of deleting the pods"
    )


def test_the_dashboard_shows_the_common_mistakes(workshop, django_user_model, as_instructor):
    message = rollout_message()
    on_recycle_pods(workshop, django_user_model, "Ada", detail=message, failures=3)
    on_recycle_pods(workshop, django_user_model, "Di", detail=message)
    page = as_instructor.get(f"/teach/{workshop.join_code}/?lab=pss-baseline").content.decode()
    assert "Common mistakes" in page
    assert "<strong>2</strong> × restarted the rollout instead of deleting the pods" in page  # noqa: RUF001
    assert f"2 × failing: {NO_POD}" in page  # noqa: RUF001
    assert "<strong>Mistake:</strong> restarted the rollout" in page
    assert "the mistake: restarted the rollout instead of deleting the pods" in page


def test_the_workshop_form_offers_the_module_as_a_whole(as_instructor):
    page = as_instructor.get("/teach/").content.decode()
    assert "Module: Pod Security Standards" in page
    assert "Hand out the whole module" in page
    boxes = [
        page.find(f'value="{lab}"') for lab in ("pss-privileged", "pss-baseline", "pss-restricted")
    ]
    assert -1 not in boxes and boxes == sorted(boxes)
