"""A learner in a real browser (Debian's Chromium) against the real stack:
uvicorn, a Celery worker, Redis and the local control plane. Screenshots go
to test-artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
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
