"""A learner in a real browser (Debian's Chromium) against the real stack:
uvicorn, a Celery worker, Redis and the local control plane. Screenshots go
to test-artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from labapp.learning.models import LabProgress, Workshop
from tests.fixtures.browser import screenshot

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def workshop():
    return Workshop.objects.create(
        title="Pod Security, hands on",
        join_code="PSS2026",
        lab_ids=["pss-baseline"],
        starts_at=timezone.now() - dt.timedelta(minutes=5),
        ends_at=timezone.now() + dt.timedelta(hours=2),
    )


def run_and_wait(page, button) -> str:
    """Click a Run button; return the text of the run's panel once it is done."""
    before = page.locator("#runs section.run").count()
    button.click()
    page.wait_for_function(f"document.querySelectorAll('#runs section.run').length > {before}")
    panel = page.locator("#runs section.run").first
    panel.locator(".run-done").wait_for()
    # The header's state label follows the run to its end (an out-of-band swap).
    state = panel.locator(".run-state")
    assert state.get_attribute("data-state") in ("succeeded", "failed"), state.inner_text()
    return panel.inner_text()


def test_a_learner_joins_and_completes_the_baseline_lab_by_clicking_run(page, live_stack, workshop):
    page.goto(live_stack.url + "/")
    page.get_by_label("Join code").fill("pss2026")
    page.get_by_label("Your name, as your instructor will see it").fill("Ada")
    page.get_by_role("button", name="Join").click()
    page.get_by_role("link", name="Pod Security Standards: the Baseline profile").click()
    page.get_by_role("button", name="Start this lab").click()

    # Provisioning shows progress, then the page reloads with a ready sandbox.
    page.locator("#sandbox.sandbox-ready").wait_for(timeout=120_000)
    screenshot(page, "baseline-01-ready")
    outputs = []
    steps = ["label-namespace", "recycle-pods", "inspect-status", "fix-deployment"]
    for number, step_id in enumerate(steps, 1):
        step = page.locator(f"#step-{step_id}")
        runs = step.get_by_role("button", name="Run:")
        for index in range(runs.count()):
            command = step.locator(".command").nth(index)
            if command.locator(".note").count():
                continue  # exec: needs real containers, as the step explains
            outputs.append(
                run_and_wait(
                    page,
                    page.locator(f"#step-{step_id}").get_by_role("button", name="Run:").nth(index),
                )
            )
        page.locator(f"#step-{step_id} .state-badge[data-state='passed']").wait_for()
        checks = page.locator(f"#step-{step_id} .check")
        assert checks.count() == page.locator(f"#step-{step_id} .check-pass").count() > 0
        screenshot(page, f"baseline-{number + 1:02d}-{step_id}")

    everything = "\n".join(outputs)
    assert 'violate the new PodSecurity enforce level "baseline:latest"' in everything
    assert "type: ReplicaFailure" in everything
    assert 'violates PodSecurity "baseline:latest": privileged' in everything
    assert page.get_by_test_id("progress").inner_text() == "100%"
    assert page.get_by_text("✓ Lab complete").is_visible()
    record = LabProgress.objects.get(lab_id="pss-baseline")
    assert record.completed_at is not None
    assert record.workshop == workshop


def sign_in(page, user, base_url: str) -> None:
    """A self-paced learner's browser, signed in (the session cookie of a real login)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": base_url}])


def type_and_wait(page, command: str) -> str:
    """Type a command into the command box and press Enter, as a learner who never
    clicks Run; return the run panel's text once the run is done."""
    before = page.locator("#runs section.run").count()
    box = page.locator("#command-input")
    box.fill(command)
    box.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('#runs section.run').length > {before}")
    panel = page.locator("#runs section.run").first
    panel.locator(".run-done").wait_for()
    return panel.inner_text()


@pytest.mark.parametrize("lab_id", ["pss-privileged", "pss-baseline", "pss-restricted"])
def test_a_learner_who_only_types_completes_the_lab(page, live_stack, django_user_model, lab_id):
    learner = django_user_model.objects.create_user(f"typist-{lab_id}", first_name="Tess")
    sign_in(page, learner, live_stack.url)
    page.goto(f"{live_stack.url}/labs/{lab_id}/")
    page.get_by_role("button", name="Start this lab").click()
    page.locator("#sandbox.sandbox-ready").wait_for(timeout=120_000)
    steps = page.locator("section.step")
    for index in range(steps.count()):
        step = steps.nth(index)
        step_id = step.get_attribute("id")
        # What the page shows is what the learner types: every command, in order,
        # exec included (on simulated nodes it fails, and the step must not mind).
        for command in step.locator(".command code").all_inner_texts():
            type_and_wait(page, command)
        # No click and no reload: the tick arrives over the page's live channel.
        page.locator(f"#{step_id} .state-badge[data-state='passed']").wait_for(timeout=30_000)
        checks = page.locator(f"#{step_id} .check")
        assert checks.count() == page.locator(f"#{step_id} .check-pass").count() > 0
    screenshot(page, f"typed-{lab_id}-done")
    assert page.get_by_test_id("progress").inner_text() == "100%"
    assert LabProgress.objects.get(user=learner, lab_id=lab_id).completed_at is not None
