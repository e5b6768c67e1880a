"""An instructor's whole workflow in a real browser against the real stack: create a
workshop (a form error first), share its join link (copy, QR code), broadcast and
clear (a learner's page follows live), watch the dashboard update without losing
focus, read the charts and a learner's command history, then edit, close and
delete the workshop. Screenshots go to test-artifacts/teach-*."""

from __future__ import annotations

import pytest

from labapp.learning.models import Enrolment, LabProgress, Workshop
from labapp.learning.services import lab_start
from labapp.sandboxes.models import Sandbox
from tests.e2e.test_learner_in_browser import sign_in
from tests.fixtures.browser import ARTIFACTS, screenshot
from tests.fixtures.learners import HttpLearner, wait_until_ready

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]
LAB = "pss-baseline"


def shoot(page, name: str) -> None:
    """The whole page (as every browser test keeps it), and what the instructor sees."""
    screenshot(page, name)
    page.screenshot(path=str(ARTIFACTS / f"{name}-view.png"))


def browser_of(browser, user, base_url: str, *, width: int = 1400, dark: bool = False):
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme="dark" if dark else "light",
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_in(page, user, base_url)
    return context, page


def test_an_instructor_runs_a_workshop_from_creation_to_deletion(
    live_stack, browser, instructor, learner
):
    context, page = browser_of(browser, instructor, live_stack.url)
    page.goto(f"{live_stack.url}/teach/")

    # No lab ticked: the form says so at the labs, and keeps what was typed.
    page.get_by_label("Title").fill("PSS, Friday")
    page.get_by_role("button", name="Create").click()
    alert = page.get_by_role("alert")
    assert "Tick at least one lab." in alert.inner_text()
    assert page.get_by_label("Title").input_value() == "PSS, Friday"
    assert not Workshop.objects.exists()
    shoot(page, "teach-01-no-lab-ticked")
    page.get_by_label("Pod Security Standards: the Baseline profile").check()
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/teach/*/")
    workshop = Workshop.objects.get(title="PSS, Friday")
    code = workshop.join_code

    # The join link: a copy button, and a QR code of it.
    link = f"{live_stack.url}/join/{code}/"
    assert page.locator("#join-link").inner_text() == link
    page.get_by_role("button", name="Copy the join link").click()
    assert page.evaluate("navigator.clipboard.readText()") == link
    qr = page.get_by_role("img", name="QR code of the join link")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    shoot(page, "teach-02-dashboard-share")

    # A learner joins and starts the lab; their page is open.
    Enrolment.objects.create(workshop=workshop, user=learner, display_name="Ada")
    lab_start(user=learner, lab_id=LAB, workshop=workshop)
    sandbox = wait_until_ready(Sandbox.objects.get(owner=learner), timeout=120)
    learner_context, learner_page = browser_of(browser, learner, live_stack.url)
    learner_page.goto(f"{live_stack.url}/labs/{LAB}/")
    learner_page.locator("#sandbox.sandbox-ready").wait_for()
    page.reload()

    # Broadcast: confirmed to the instructor, shown live to the learner, then cleared.
    page.get_by_label("Broadcast").fill("Break until 11:00")
    page.get_by_role("button", name="Send to every learner").click()
    assert "Sent to 1 learner: “Break until 11:00”" in page.get_by_role("status").inner_text()
    learner_page.locator("#broadcasts .broadcast").wait_for()
    assert "Break until 11:00" in learner_page.locator("#broadcasts").inner_text()
    shoot(page, "teach-03-broadcast-sent")
    learner_page.screenshot(path=str(ARTIFACTS / "teach-03-broadcast-learner-view.png"))
    page.get_by_role("button", name="Clear the broadcast").click()
    assert "Cleared" in page.get_by_role("status").inner_text()
    learner_page.locator("#broadcasts .broadcast").wait_for(state="detached")
    assert page.get_by_role("button", name="Clear the broadcast").count() == 0

    # The board is pushed over SSE: it changes in place, and the instructor typing a
    # broadcast keeps the focus and the text.
    page.evaluate("window.notReloaded = true")
    box = page.get_by_label("Broadcast")
    box.click()
    box.type("Half the class is on step")
    http = HttpLearner.login(learner, live_stack.url)
    posted = http.post(
        f"/sandboxes/{sandbox.slug}/runs/",
        {
            "command": "kubectl label --dry-run=server --overwrite namespace "
            f"{sandbox.namespaces['assets']} pod-security.kubernetes.io/enforce=baseline"
        },
    )
    assert posted.status_code == 202
    row = page.locator("tr[data-learner='Ada']")
    page.wait_for_function(
        "document.querySelector(\"tr[data-learner='Ada']\").innerText.includes('--dry-run')",
        timeout=30_000,
    )
    assert page.evaluate("window.notReloaded") is True
    assert page.evaluate("document.activeElement.id") == "bc"
    assert box.input_value() == "Half the class is on step"
    # A learner link that has the focus keeps it through the next update.
    row.get_by_role("link", name="Ada").focus()
    missing = f"kubectl get deployment nosuch -n {sandbox.namespaces['assets']}"
    assert http.post(f"/sandboxes/{sandbox.slug}/runs/", {"command": missing}).status_code == 202
    page.wait_for_function(
        "document.querySelector(\"tr[data-learner='Ada']\").innerText.includes('nosuch')",
        timeout=30_000,
    )
    assert page.evaluate("document.activeElement.textContent") == "Ada"

    # Charts: an x axis with ticks and its unit, and a legend.
    for chart_id, unit in (("funnel", "learners (of 1)"), ("medians", "minutes on the step")):
        chart = page.locator(f"svg#chart-{chart_id}")
        assert unit in chart.locator("[data-axis=x]").text_content()
        assert chart.locator("[data-axis=x] .tick-label").count() >= 2
        assert chart.locator("[data-legend] text").count() >= 1
    assert "passed the step" in page.locator("svg#chart-funnel [data-legend]").text_content()
    page.locator(".charts").scroll_into_view_if_needed()
    shoot(page, "teach-04-dashboard-charts")

    # The learner's page: every command, with its outcome.
    row.get_by_role("link", name="Ada").click()
    history = page.locator("table.history-table tbody tr")
    assert history.count() == 2
    assert "--dry-run=server" in history.nth(0).inner_text()
    assert "✓ exit 0" in history.nth(0).inner_text()
    assert "✗ exit 1" in history.nth(1).inner_text()
    shoot(page, "teach-05-learner-history")

    # Edit, close, delete: all in the UI.
    page.goto(f"{live_stack.url}/teach/{code}/")
    page.get_by_role("link", name="Edit, close or delete").click()
    page.get_by_label("Title").fill("PSS, Friday (room 2)")
    shoot(page, "teach-06-edit")
    page.get_by_role("button", name="Save changes").click()
    assert "Saved" in page.get_by_role("status").inner_text()
    assert page.locator("h1").inner_text() == "PSS, Friday (room 2)"
    page.get_by_role("link", name="Edit, close or delete").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Close the workshop now").click()
    assert "Closed: nobody can join" in page.get_by_role("status").inner_text()
    workshop.refresh_from_db()
    assert not workshop.is_open()
    page.get_by_role("link", name="Edit, close or delete").click()
    page.get_by_role("link", name="Delete the workshop…").click()
    shoot(page, "teach-07-delete-confirm")
    page.get_by_role("button", name="Yes, delete the workshop").click()
    assert "Deleted the workshop" in page.get_by_role("status").inner_text()
    assert not Workshop.objects.filter(id=workshop.id).exists()
    assert LabProgress.objects.get(user=learner).workshop is None  # Ada keeps her record
    shoot(page, "teach-08-deleted")
    learner_context.close()
    context.close()


def test_the_teaching_pages_fit_a_phone_in_both_themes(live_stack, browser, instructor):
    for dark in (False, True):
        context, page = browser_of(browser, instructor, live_stack.url, width=390, dark=dark)
        page.goto(f"{live_stack.url}/teach/")
        page.get_by_label("Title").fill("Phone class")
        page.get_by_label("Pod Security Standards: the Baseline profile").check()
        page.get_by_role("button", name="Create").click()
        page.wait_for_url("**/teach/*/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        suffix = "-dark" if dark else ""
        shoot(page, f"teach-09-dashboard-phone{suffix}")
        context.close()
