"""The instructor's dashboard shows the workshop's warm pool: ready, provisioning
and failed sandboxes of its size, and how many learners claimed one.
Personas: the instructor, the learner, another instructor."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from labapp.instructor.services import workshop_create
from labapp.sandboxes.models import Sandbox

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture
def workshop(instructor, tiny_lab):
    return workshop_create(
        instructor=instructor,
        title="Pool class",
        lab_ids=[tiny_lab.id],
        starts_at=NOW - dt.timedelta(minutes=5),
        ends_at=NOW + dt.timedelta(hours=2),
        capacity=20,
    )


def fill(workshop, learner, **states: int) -> None:
    pool = workshop.pools.get()
    for state, count in states.items():
        for i in range(count):
            Sandbox.objects.create(
                pool=pool,
                lab_id=pool.lab_id,
                slug=f"{state[:4]}{i}",
                state=state,
                status_message="the cluster said no" if state == "failed" else "",
            )
    Sandbox.objects.create(
        pool=pool, owner=learner, lab_id=pool.lab_id, slug="mine01", state="ready"
    )


def shown(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-pool="(\w+)">(\d+)<', html))


def test_the_dashboard_shows_the_pool(workshop, learner, as_instructor):
    fill(workshop, learner, ready=2, provisioning=1, failed=1)
    page = as_instructor.get(f"/teach/{workshop.join_code}/").content.decode()
    assert shown(page) == {"ready": "2", "provisioning": "1", "failed": "1", "claimed": "1"}
    assert "failed, of 20" in page
    assert "Last failure: the cluster said no" in page
    assert 'hx-trigger="every 10s"' in page  # open: it keeps itself fresh


def test_the_pool_alone_as_a_fragment(workshop, learner, as_instructor):
    fill(workshop, learner, ready=3)
    fragment = as_instructor.get(
        f"/teach/{workshop.join_code}/?lab=tiny&part=pool", headers={"HX-Request": "true"}
    ).content.decode()
    assert fragment.lstrip().startswith('<section id="pool"')
    assert shown(fragment)["ready"] == "3"
    missing = as_instructor.get(
        f"/teach/{workshop.join_code}/?lab=nope&part=pool", headers={"HX-Request": "true"}
    )
    assert missing.status_code == 404


def test_a_pool_that_fills_later_says_when(settings, instructor, as_instructor, tiny_lab):
    settings.POOL_LEAD_MINUTES = 60
    later = workshop_create(
        instructor=instructor,
        title="Tomorrow",
        lab_ids=[tiny_lab.id],
        starts_at=dt.datetime(2099, 1, 2, 9, tzinfo=dt.UTC),
        ends_at=dt.datetime(2099, 1, 2, 12, tzinfo=dt.UTC),
        capacity=5,
    )
    page = as_instructor.get(f"/teach/{later.join_code}/").content.decode()
    assert "fills from 08:00 UTC" in page


def test_another_instructor_sees_no_pool(workshop, as_another_instructor):
    answer = as_another_instructor.get(
        f"/teach/{workshop.join_code}/?part=pool", headers={"HX-Request": "true"}
    )
    assert answer.status_code == 404
