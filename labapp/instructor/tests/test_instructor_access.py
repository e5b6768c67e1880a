"""Teaching needs the instructor role: the "instructors" group, or staff.

Personas: a guest learner (who started a lab without an account), the learner,
the instructor who runs the workshop, another instructor, and staff."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, get_resolver
from django.utils import timezone

from labapp.instructor.roles import INSTRUCTORS_GROUP, user_is_instructor
from labapp.instructor.services import instructor_grant, workshop_create
from labapp.learning.models import Enrolment, LabProgress, Workshop
from labapp.learning.services import lab_start
from tests.fixtures.personas import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sandbox_home(settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path


@pytest.fixture
def teaching(instructor, another_instructor, tiny_lab) -> Workshop:
    """The instructor's open workshop, with the learner enrolled in it."""
    instructor_grant(user=instructor)
    instructor_grant(user=another_instructor)
    now = timezone.now()
    return workshop_create(
        instructor=instructor,
        title="Tiny class",
        lab_ids=[tiny_lab.id],
        starts_at=now - dt.timedelta(hours=1),
        ends_at=now + dt.timedelta(hours=2),
    )


@pytest.fixture
def enrolment(teaching, learner) -> Enrolment:
    enrolment = Enrolment.objects.create(workshop=teaching, user=learner, display_name="Ada")
    lab_start(user=learner, lab_id="tiny", workshop=teaching)
    return enrolment


@pytest.fixture
def guest(tiny_lab) -> Client:
    """Someone who typed a name and started a lab: a signed-in guest learner."""
    client = Client()
    assert client.post("/labs/tiny/begin/", {"name": "Mallory"}).status_code == 302
    return client


def teach_requests(workshop: Workshop, enrolment: Enrolment) -> list[tuple[str, str, str, dict]]:
    """Every /teach/ URL: (URL name, method, path, data)."""
    code = workshop.join_code
    learner = f"/teach/{code}/learners/{enrolment.id}"
    new_workshop = {
        "title": "Mine now",
        "labs": ["tiny"],
        "starts_at": "2030-01-01T09:00",
        "ends_at": "2030-01-01T12:00",
    }
    return [
        ("teach", "get", "/teach/", {}),
        ("teach", "post", "/teach/", new_workshop),
        ("teach-dashboard", "get", f"/teach/{code}/", {}),
        ("teach-learner", "get", f"{learner}/", {}),
        ("teach-learner-reset", "post", f"{learner}/reset/", {"lab": "tiny"}),
        ("teach-events", "get", f"/teach/{code}/events/", {}),
        ("teach-broadcast", "post", f"/teach/{code}/broadcast/", {"message": "pwned"}),
        ("teach-extend", "post", f"/teach/{code}/extend/", {"minutes": "600"}),
        ("teach-export", "get", f"/teach/{code}/export.csv", {}),
        ("teach-export", "get", f"/teach/{code}/export.json", {}),
        ("teach-edit", "get", f"/teach/{code}/edit/", {}),
        ("teach-edit", "post", f"/teach/{code}/edit/", new_workshop),
        ("teach-close", "post", f"/teach/{code}/close/", {}),
        ("teach-join-qr", "get", f"/teach/{code}/join.svg", {}),
        ("teach-delete", "get", f"/teach/{code}/delete/", {}),
        ("teach-delete", "post", f"/teach/{code}/delete/", {"confirm": "yes"}),
    ]


def test_every_teach_url_is_covered_here():
    """A new /teach/ URL must join the list above, and so be tested for the role."""
    names = {
        pattern.name
        for pattern in get_resolver().url_patterns
        if isinstance(pattern, URLPattern) and str(pattern.pattern).startswith("teach/")
    }
    listed = teach_requests(Workshop(join_code="X"), Enrolment(id=1))
    assert names == {name for name, *_ in listed}


def test_a_guest_learner_gets_403_on_every_teach_url(guest, teaching, enrolment):
    for _, method, path, data in teach_requests(teaching, enrolment):
        response = getattr(guest, method)(path, data)
        assert response.status_code == 403, (method, path, response.status_code)
    assert Workshop.objects.count() == 1
    teaching.refresh_from_db()
    assert teaching.broadcast == ""
    assert teaching.ends_at - teaching.starts_at == dt.timedelta(hours=3)


def test_a_learner_in_the_workshop_gets_403_too(learner, teaching, enrolment):
    as_learner = logged_in(learner)
    for _, method, path, data in teach_requests(teaching, enrolment):
        assert getattr(as_learner, method)(path, data).status_code == 403, (method, path)


def test_anonymous_visitors_are_sent_to_sign_in(teaching, enrolment):
    for name, method, path, data in teach_requests(teaching, enrolment):
        response = getattr(Client(), method)(path, data)
        if name == "teach-events":
            assert response.status_code == 404  # an event stream: nowhere to redirect
            continue
        assert response.status_code == 302, (method, path)
        assert response["Location"].startswith("/accounts/login/?next="), path


def test_another_instructors_workshop_stays_a_404(another_instructor, teaching, enrolment):
    as_other = logged_in(another_instructor)
    for _, method, path, data in teach_requests(teaching, enrolment):
        expected = 404
        if path == "/teach/":
            expected = 200 if method == "get" else 302  # their own list, their own workshop
        assert getattr(as_other, method)(path, data).status_code == expected, (method, path)
    assert teaching.join_code not in as_other.get("/teach/").content.decode()


def test_the_instructor_and_staff_may_teach(instructor, teaching, enrolment, admin_user):
    as_instructor = logged_in(instructor)
    assert as_instructor.get("/teach/").status_code == 200
    assert as_instructor.get(f"/teach/{teaching.join_code}/").status_code == 200
    assert as_instructor.get(f"/teach/{teaching.join_code}/export.csv").status_code == 200
    # Staff may open /teach/ without the group (their own workshops only).
    assert user_is_instructor(admin_user) and not admin_user.groups.exists()
    assert logged_in(admin_user).get("/teach/").status_code == 200


def test_the_teach_link_is_shown_to_instructors_only(instructor, learner, teaching):
    assert 'href="/teach/"' in logged_in(instructor).get("/").content.decode()
    assert 'href="/teach/"' not in logged_in(learner).get("/").content.decode()


def test_certificates_stay_public(learner, teaching, enrolment):
    record = LabProgress.objects.get(user=learner)
    LabProgress.objects.filter(id=record.id).update(completed_at=timezone.now())
    assert Client().get(f"/certificates/{record.certificate_id}/").status_code == 200


def test_the_migration_made_the_group():
    assert Group.objects.filter(name=INSTRUCTORS_GROUP).exists()


def test_the_instructor_command_grants_lists_and_revokes(django_user_model, capsys):
    django_user_model.objects.create_user("grace")
    call_command("instructor", "grant", "grace")
    grace = django_user_model.objects.get(username="grace")
    assert user_is_instructor(grace)
    call_command("instructor", "grant", "linus", "--create")
    linus = django_user_model.objects.get(username="linus")
    assert user_is_instructor(linus) and not linus.has_usable_password()
    call_command("instructor", "list")
    listed = capsys.readouterr().out
    assert "grace\n" in listed and "linus\n" in listed
    call_command("instructor", "revoke", "grace")
    assert not user_is_instructor(django_user_model.objects.get(username="grace"))
    logged_out = logged_in(django_user_model.objects.get(username="grace"))
    assert logged_out.get("/teach/").status_code == 403
