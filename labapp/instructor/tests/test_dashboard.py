"""The instructor dashboard: the stuck rule, exports, roles and query count.
Personas: the instructor, another instructor, an outsider, and the learners
they enrol (Ada, Bob and a cohort)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time

import pytest
from django.test import Client
from django.utils import timezone

from labapp.checks.outcome import Outcome, Status
from labapp.instructor.selectors import dashboard
from labapp.instructor.services import workshop_create
from labapp.learning.models import Enrolment, LabProgress, StepProgress, Workshop
from labapp.learning.services import lab_start, progress_record_outcomes
from tests.fixtures.personas import logged_in

pytestmark = pytest.mark.django_db

PASS = Outcome(Status.PASS, "ok")
FAIL = Outcome(Status.FAIL, "label enforce", expected="baseline", found="none")
NOW = timezone.now()


@pytest.fixture(autouse=True)
def sandbox_home(settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path


@pytest.fixture
def workshop(instructor, tiny_lab):
    return workshop_create(
        instructor=instructor,
        title="PSS",
        lab_ids=[tiny_lab.id],
        starts_at=NOW - dt.timedelta(hours=1),
        ends_at=NOW + dt.timedelta(hours=2),
    )


def enrol(workshop, django_user_model, name: str):
    user = django_user_model.objects.create_user(name.lower())
    Enrolment.objects.create(workshop=workshop, user=user, display_name=name)
    return lab_start(user=user, lab_id="tiny", workshop=workshop)


def passed_step_one(record, minutes: float):
    step = record.steps.get(step_id="label-namespace")
    step.state, step.started_at = "passed", NOW - dt.timedelta(minutes=minutes + 1)
    step.passed_at = step.started_at + dt.timedelta(minutes=minutes)
    step.save()
    following = record.steps.get(step_id="configure")
    following.state, following.started_at = "working", step.passed_at
    following.save()
    return following


def test_three_failed_checks_in_a_row_flag_a_learner_as_stuck(workshop, django_user_model):
    ada = enrol(workshop, django_user_model, "Ada")
    enrol(workshop, django_user_model, "Bob")
    for _ in range(3):
        progress_record_outcomes(
            user=ada.user, lab_id="tiny", step_id="label-namespace", outcomes=[PASS, FAIL]
        )
    board = dashboard(workshop=workshop)
    first = board.rows[0]
    assert first.enrolment.display_name == "Ada"  # stuck learners come first
    assert first.stuck_reason == "3 failed checks in a row on step 1: label enforce"
    assert board.rows[1].stuck_reason == ""
    assert first.last_failed_check.found == "none"


def test_twice_the_cohort_median_on_a_step_is_stuck(workshop, django_user_model):
    # Three learners took 4, 5 and 6 minutes on step 2: the median is 5.
    for name, minutes in (("Bob", 4), ("Cy", 5), ("Di", 6)):
        record = enrol(workshop, django_user_model, name)
        following = passed_step_one(record, 1)
        following.state, following.passed_at = (
            "passed",
            following.started_at + dt.timedelta(minutes=minutes),
        )
        following.save()
    slow = passed_step_one(enrol(workshop, django_user_model, "Zed"), 1)
    steady = passed_step_one(enrol(workshop, django_user_model, "Amy"), 1)
    StepProgress.objects.filter(id=slow.id).update(started_at=NOW - dt.timedelta(minutes=11))
    StepProgress.objects.filter(id=steady.id).update(started_at=NOW - dt.timedelta(minutes=9))

    board = dashboard(workshop=workshop, now=NOW)
    reasons = {row.enrolment.display_name: row.stuck_reason for row in board.rows}
    assert reasons["Zed"] == "11 min on step 2, over twice the cohort's median of 5 min"
    assert reasons["Amy"] == ""  # 9 minutes is under twice the median
    assert board.rows[0].enrolment.display_name == "Zed"
    assert board.steps[1].median == dt.timedelta(minutes=5)


def test_each_cell_names_its_state_for_screen_readers(workshop, django_user_model, as_instructor):
    ada = enrol(workshop, django_user_model, "Ada")
    progress_record_outcomes(
        user=ada.user, lab_id="tiny", step_id="label-namespace", outcomes=[PASS]
    )
    page = as_instructor.get(f"/teach/{workshop.join_code}/").content.decode()
    hidden = re.findall(r'<span class="visually-hidden"> ([^<]*)</span></td>', page)
    # Step 1 passed, step 2 is the one being worked on, step 3 is still ahead.
    assert hidden == ["Passed", "Working", "not started"]


def test_exports_have_one_row_per_learner_lab_and_step(workshop, django_user_model, as_instructor):
    ada = enrol(workshop, django_user_model, "Ada")
    progress_record_outcomes(
        user=ada.user, lab_id="tiny", step_id="label-namespace", outcomes=[PASS]
    )
    client = as_instructor
    text = client.get(f"/teach/{workshop.join_code}/export.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "display_name",
        "username",
        "lab_id",
        "lab_started_at",
        "lab_completed_at",
        "step_position",
        "step_id",
        "step_state",
        "attempts",
        "step_started_at",
        "step_passed_at",
        "step_seconds",
        "hints_revealed",
        "solution_revealed",
        "certificate_url",
    ]
    assert len(rows) == 3  # the tiny lab's three steps
    first = rows[0]
    assert (first["display_name"], first["step_id"], first["step_state"], first["attempts"]) == (
        "Ada",
        "label-namespace",
        "passed",
        "1",
    )
    assert rows[1]["step_state"] == "working" and rows[1]["attempts"] == "0"
    assert first["lab_completed_at"] == "" and first["certificate_url"] == ""
    data = json.loads(client.get(f"/teach/{workshop.join_code}/export.json").content)
    assert data["join_code"] == workshop.join_code
    assert data["rows"][0]["step_seconds"] == int(first["step_seconds"])


def test_learners_other_instructors_and_outsiders_are_refused(
    workshop, django_user_model, another_instructor, outsider
):
    ada = enrol(workshop, django_user_model, "Ada")
    workshop_create(
        instructor=another_instructor,
        title="Their own",
        lab_ids=workshop.lab_ids,
        starts_at=NOW,
        ends_at=NOW + dt.timedelta(hours=1),
    )
    enrolment = Enrolment.objects.get(user=ada.user)
    code = workshop.join_code
    # Without the instructor role: 403. Another instructor: this workshop is not theirs (404).
    for someone, refused in ((ada.user, 403), (another_instructor, 404), (outsider, 403)):
        client = logged_in(someone)
        for path in (
            f"/teach/{code}/",
            f"/teach/{code}/learners/{enrolment.id}/",
            f"/teach/{code}/export.csv",
            f"/teach/{code}/export.json",
        ):
            assert client.get(path).status_code == refused, (someone, path)
        assert client.post(f"/teach/{code}/broadcast/", {"message": "hi"}).status_code == refused
        assert client.post(f"/teach/{code}/extend/", {"minutes": "30"}).status_code == refused
        assert (
            client.post(
                f"/teach/{code}/learners/{enrolment.id}/reset/", {"lab": "tiny"}
            ).status_code
            == refused
        )
    workshop.refresh_from_db()
    assert workshop.broadcast == ""
    assert workshop.ends_at == NOW + dt.timedelta(hours=2)


def test_a_certificate_shows_what_was_verified(workshop, django_user_model):
    ada = enrol(workshop, django_user_model, "Ada")
    for step_id in ("label-namespace", "configure", "recycle-pods"):
        progress_record_outcomes(
            user=ada.user,
            lab_id="tiny",
            step_id=step_id,
            outcomes=[Outcome(Status.PASS, f"{step_id} verified")],
        )
    ada.refresh_from_db()
    page = Client().get(f"/certificates/{ada.certificate_id}/").content.decode()
    assert "Ada completed “Tiny: a lab for the tests”" in page
    assert "✓ recycle-pods verified" in page
    unfinished = enrol(workshop, django_user_model, "Bob")
    assert Client().get(f"/certificates/{unfinished.certificate_id}/").status_code == 404


@pytest.fixture
def ten_step_lab(lab_copy):
    """A ten-step lab beside the test labs, for the size test."""

    def ten_steps(lab):
        lab["steps"] = [
            {**lab["steps"][0], "id": f"step-{i}", "text": "Step text."} for i in range(10)
        ]

    return lab_copy.derive("ten-steps", ten_steps)


def make_cohort(workshop, django_user_model, size: int) -> None:
    users = django_user_model.objects.bulk_create(
        [django_user_model(username=f"l{workshop.id}-{i}") for i in range(size)]
    )
    Enrolment.objects.bulk_create(
        [Enrolment(workshop=workshop, user=u, display_name=f"L{i}") for i, u in enumerate(users)]
    )
    records = LabProgress.objects.bulk_create(
        [LabProgress(user=u, lab_id="ten-steps", workshop=workshop) for u in users]
    )
    StepProgress.objects.bulk_create(
        [
            StepProgress(
                lab_progress=r,
                step_id=f"step-{s}",
                position=s,
                state="passed" if s < i % 10 else "working" if s == i % 10 else "not_started",
                started_at=NOW - dt.timedelta(minutes=10 - s),
                passed_at=NOW - dt.timedelta(minutes=9 - s) if s < i % 10 else None,
                failed_in_a_row=i % 4,
            )
            for i, r in enumerate(records)
            for s in range(10)
        ]
    )


def test_the_dashboard_for_500_learners_by_10_steps_uses_constant_queries(
    ten_step_lab, instructor, as_instructor, django_user_model, django_assert_num_queries
):
    small = Workshop.objects.create(
        title="S", join_code="SMALL1", lab_ids=[ten_step_lab], ends_at=NOW + dt.timedelta(hours=1)
    )
    large = Workshop.objects.create(
        title="L", join_code="LARGE1", lab_ids=[ten_step_lab], ends_at=NOW + dt.timedelta(hours=1)
    )
    small.instructors.add(instructor)
    large.instructors.add(instructor)
    make_cohort(small, django_user_model, 5)
    make_cohort(large, django_user_model, 500)
    client = as_instructor
    client.get("/teach/SMALL1/")  # warm: session, caches
    with django_assert_num_queries(8) as small_queries:  # the role, and one the warm pool
        small_page = client.get("/teach/SMALL1/")
    started = time.perf_counter()
    with django_assert_num_queries(len(small_queries)):
        large_page = client.get("/teach/LARGE1/")
    elapsed = time.perf_counter() - started
    print(
        f"\ndashboard, 500 learners x 10 steps: {elapsed * 1000:.0f} ms, "
        f"{len(small_queries)} queries (same as for 5 learners)"
    )
    assert small_page.status_code == large_page.status_code == 200
    assert large_page.content.decode().count('data-learner="') == 500


def test_an_instructor_creates_a_workshop_in_the_ui(instructor, as_instructor, tiny_lab):
    client = as_instructor
    created = client.post(
        "/teach/",
        {
            "title": "Friday PSS",
            "labs": ["tiny", "tiny-privileged"],
            "starts_at": "2026-12-04T09:00",
            "ends_at": "2026-12-04T12:00",
            "capacity": "40",
            "lifetime": "180",
        },
    )
    workshop = Workshop.objects.get(title="Friday PSS")
    assert created.status_code == 302 and created["Location"] == f"/teach/{workshop.join_code}/"
    assert workshop.lab_ids == ["tiny", "tiny-privileged"]
    assert (workshop.capacity, workshop.sandbox_lifetime_minutes) == (40, 180)
    assert list(workshop.instructors.all()) == [instructor]
    refused = client.post(
        "/teach/",
        {
            "title": "Bad",
            "labs": ["no-such-lab"],
            "starts_at": "2026-12-04T09:00",
            "ends_at": "2026-12-04T12:00",
        },
    )
    assert refused.status_code == 400
    assert "no lab &#x27;no-such-lab&#x27;" in refused.content.decode()


def test_extending_a_workshop_extends_its_sandboxes(workshop, django_user_model, as_instructor):
    from labapp.sandboxes.models import Sandbox

    ada = enrol(workshop, django_user_model, "Ada")
    sandbox = Sandbox.objects.get(owner=ada.user)
    before, ends = sandbox.expires_at, workshop.ends_at
    assert (
        as_instructor.post(f"/teach/{workshop.join_code}/extend/", {"minutes": "45"}).status_code
        == 302
    )
    sandbox.refresh_from_db()
    workshop.refresh_from_db()
    assert sandbox.expires_at - before == dt.timedelta(minutes=45)
    assert workshop.ends_at - ends == dt.timedelta(minutes=45)
