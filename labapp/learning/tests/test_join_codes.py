"""Join-code answers tell an outsider nothing about which codes exist.

A wrong code, and a workshop that is not open (not yet, or no longer), get the
same answer. "Full" is said only of an open workshop, whose code an outsider
could not use anyway; guessing is rate-limited (test_rate_limits.py).
Personas: a newcomer with the code, an outsider guessing, the learner."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from labapp.learning.models import Enrolment, Workshop
from labapp.learning.services import NO_OPEN_WORKSHOP, WORKSHOP_FULL
from tests.fixtures.personas import logged_in

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def workshop(code: str, *, starts: dt.timedelta, ends: dt.timedelta, capacity: int = 10):
    return Workshop.objects.create(
        title=f"Secret title {code}",
        join_code=code,
        lab_ids=["tiny"],
        starts_at=NOW + starts,
        ends_at=NOW + ends,
        capacity=capacity,
    )


@pytest.fixture
def workshops(tiny_lab) -> None:
    hour = dt.timedelta(hours=1)
    workshop("OPEN01", starts=-hour, ends=hour)
    workshop("LATER1", starts=hour, ends=2 * hour)
    workshop("ENDED1", starts=-2 * hour, ends=-hour)
    full = workshop("FULL01", starts=-hour, ends=hour, capacity=1)
    learner = Client()
    assert learner.post("/join/", {"code": "FULL01", "name": "First"}).status_code == 302
    assert full.enrolments.count() == 1


def answer(code: str, name: str = "Eve", client: Client | None = None) -> tuple[int, str]:
    response = (client or Client()).post("/join/", {"code": code, "name": name})
    found = re.search(r'<p class="problem" role="alert">(.*?)</p>', response.text)
    return response.status_code, found.group(1) if found else ""


def test_a_wrong_code_and_a_workshop_not_open_get_the_same_answer(workshops):
    expected = (400, NO_OPEN_WORKSHOP)
    for code in ("NOPE42", "LATER1", "ENDED1", ""):
        assert answer(code) == expected, code
    assert not Enrolment.objects.filter(workshop__join_code__in=["LATER1", "ENDED1"]).exists()


def test_a_full_workshop_says_so_without_naming_itself(workshops):
    status, message = answer("FULL01")
    assert (status, message) == (400, WORKSHOP_FULL)
    assert "Secret title" not in Client().post("/join/", {"code": "FULL01", "name": "X"}).text


def test_no_answer_names_the_workshop_or_its_times(workshops):
    for code in ("LATER1", "ENDED1", "FULL01"):
        text = Client().post("/join/", {"code": code, "name": "Eve"}).text
        assert "Secret title" not in text and "UTC" not in text, code


def test_a_missing_name_is_asked_for_before_the_code_is_looked_up(workshops):
    # The same answer for a good code and a wrong one: the name is no oracle.
    assert answer("OPEN01", name=" ") == answer("NOPE42", name=" ")
    assert answer("OPEN01", name="")[0] == 400
    assert not Enrolment.objects.filter(workshop__join_code="OPEN01").exists()


def test_a_newcomer_with_the_code_joins(workshops):
    assert Client().post("/join/", {"code": " open01 ", "name": "Grace"}).status_code == 302
    assert Enrolment.objects.get(workshop__join_code="OPEN01").display_name == "Grace"


def test_a_signed_in_learner_joins_without_retyping_a_name(workshops, learner):
    # The join form asks a signed-in learner for the code only.
    response = logged_in(learner).post("/join/", {"code": "OPEN01"})
    assert response.status_code == 302
    assert Enrolment.objects.get(user=learner).display_name == "Ada"


def test_an_enrolled_learner_comes_back_after_the_workshop_ends(workshops, learner):
    as_learner = logged_in(learner)
    assert as_learner.post("/join/", {"code": "OPEN01"}).status_code == 302
    Workshop.objects.filter(join_code="OPEN01").update(ends_at=NOW - dt.timedelta(minutes=1))
    assert as_learner.post("/join/", {"code": "OPEN01"}).status_code == 302
