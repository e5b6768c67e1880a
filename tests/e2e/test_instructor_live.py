"""The instructor's live view and broadcasts, through the real stack."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.utils import timezone

from labapp.instructor.services import workshop_broadcast, workshop_create
from labapp.learning.models import Enrolment
from labapp.learning.services import lab_start
from labapp.sandboxes.models import Sandbox
from tests.fixtures.browser import screenshot
from tests.fixtures.learners import HttpLearner, wait_until_ready
from tests.fixtures.personas import logged_in

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def workshop(instructor):
    return workshop_create(
        instructor=instructor,
        title="PSS live",
        lab_ids=["pss-baseline"],
        starts_at=timezone.now() - dt.timedelta(minutes=1),
        ends_at=timezone.now() + dt.timedelta(hours=1),
    )


@pytest.fixture
def ada(workshop, learner):
    """The learner, enrolled in the workshop, with the Baseline lab started."""
    Enrolment.objects.create(workshop=workshop, user=learner, display_name="Ada")
    lab_start(user=learner, lab_id="pss-baseline", workshop=workshop)
    return learner


def test_a_broadcast_reaches_a_learners_sse_stream(live_stack, workshop, ada, outsider):
    learner = HttpLearner.login(ada, live_stack.url)
    received = []
    timer = threading.Timer(
        1.0, lambda: workshop_broadcast(workshop=workshop, message="Break until 11:00 <b>sharp</b>")
    )
    with learner.client.stream("GET", f"/w/{workshop.join_code}/events/") as response:
        assert response.status_code == 200
        timer.start()
        for line in response.iter_lines():
            received.append(line)
            if line.startswith("data:"):
                break
    assert "event: broadcast" in received
    assert "Break until 11:00 &lt;b&gt;sharp&lt;/b&gt;" in received[-1]  # escaped, as text
    eve = HttpLearner.login(outsider, live_stack.url)
    assert eve.client.get(f"/w/{workshop.join_code}/events/").status_code == 404


def test_the_instructor_watches_a_learner_progress_without_reloading(
    live_stack, browser, workshop, ada, instructor
):
    sandbox = wait_until_ready(Sandbox.objects.get(owner=ada))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    session = logged_in(instructor)
    context.add_cookies(
        [{"name": "sessionid", "value": session.cookies["sessionid"].value, "url": live_stack.url}]
    )
    page = context.new_page()
    page.goto(f"{live_stack.url}/teach/{workshop.join_code}/")
    page.evaluate("window.notReloaded = true")
    cell = page.locator("tr[data-learner='Ada'] td.cell").first
    assert cell.get_attribute("data-state") == "working"
    screenshot(page, "dashboard-01-before")

    learner = HttpLearner.login(ada, live_stack.url)
    posted = learner.post(
        f"/sandboxes/{sandbox.slug}/runs/",
        {"command": "kubectl apply -k assets/baseline-namespace", "step": "label-namespace"},
    )
    assert posted.status_code == 202

    page.locator("tr[data-learner='Ada'] td.cell[data-state='passed']").first.wait_for(
        timeout=30_000
    )
    assert page.evaluate("window.notReloaded") is True  # the matrix changed in place
    assert (
        page.locator("tr[data-learner='Ada'] td.cell").nth(1).get_attribute("data-state")
        == "working"
    )
    assert (
        "kubectl apply -k assets/baseline-namespace"
        in page.locator("tr[data-learner='Ada']").inner_text()
    )
    screenshot(page, "dashboard-02-after")
    context.close()
