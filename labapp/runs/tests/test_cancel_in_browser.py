"""The Cancel button in a real browser (Chromium), with JavaScript and without,
against the real stack: a watch that would run for a minute ends as cancelled."""

from __future__ import annotations

import pytest
from django.test import Client

from labapp.learning.services import lab_start
from labapp.runs.models import CommandRun
from labapp.runs.tests.processes import processes_with
from labapp.sandboxes.models import Sandbox
from tests.fixtures.learners import wait_until_ready
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


def sign_in(context, user, base_url: str) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": base_url}])


@pytest.fixture
def sandbox(learner, tiny_lab, live_stack):
    """The learner has started the tiny lab, and its sandbox is ready."""
    lab_start(user=learner, lab_id=tiny_lab.id)
    return wait_until_ready(Sandbox.objects.get(owner=learner, lab_id=tiny_lab.id))


def test_cancel_ends_a_running_watch_in_the_browser(page, live_stack, learner, sandbox):
    sign_in(page.context, learner, live_stack.url)
    page.goto(f"{live_stack.url}/labs/{sandbox.lab_id}/")
    namespace = sandbox.namespaces["shop"]
    box = page.locator("#command-input")
    box.fill(f"kubectl -n {namespace} get pods -w")
    box.press("Enter")
    panel = page.locator("#runs section.run").first
    panel.locator(".run-stdout", has_text="shop-").wait_for()  # the watch is running
    assert processes_with(f"{namespace} get pods -w")

    panel.get_by_role("button", name="Cancel this command").click()
    panel.locator(".run-state[data-state='cancelled']").wait_for(timeout=10_000)
    assert "Cancelled" in panel.locator(".run-done").inner_text()
    assert panel.get_by_role("button", name="Cancel this command").count() == 0
    assert "shop-" in panel.locator(".run-stdout").inner_text()  # what it printed stays
    assert not processes_with(f"{namespace} get pods -w")


def test_cancel_works_without_javascript(browser, live_stack, learner, sandbox):
    context = browser.new_context(java_script_enabled=False)
    try:
        sign_in(context, learner, live_stack.url)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{live_stack.url}/labs/{sandbox.lab_id}/")
        namespace = sandbox.namespaces["shop"]
        command = f"kubectl -n {namespace} get pods -w"
        page.locator("#command-input").fill(command)
        page.locator("#command-input").press("Enter")  # a plain form post, then the page
        run = CommandRun.objects.get(command=command)
        wait_for(lambda: processes_with(f"{namespace} get pods -w"), timeout=30, what="the watch")
        page.goto(f"{live_stack.url}/labs/{sandbox.lab_id}/?run={run.id}")
        page.locator(f"#run-{run.id}").get_by_role("button", name="Cancel this command").click()

        def cancelled() -> bool:
            run.refresh_from_db()
            return run.state == CommandRun.State.CANCELLED

        wait_for(cancelled, timeout=10, what="the run to be cancelled")
        page.goto(f"{live_stack.url}/labs/{sandbox.lab_id}/?run={run.id}")
        assert "Cancelled" in page.locator(f"#run-{run.id}").inner_text()
        assert not processes_with(f"{namespace} get pods -w")
    finally:
        context.close()
