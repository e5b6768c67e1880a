"""The lab page as a learner uses it, in a real browser (Debian's Chromium) against
the real stack: two panes that stack on a phone, the Files panel and Preview, the
expiry countdown and its warning, focus that stays in the command box, Edit, the
keyboard shortcuts, the dark theme. Screenshots go to test-artifacts/workbench-*."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from labapp.learning.models import Enrolment, Workshop
from labapp.learning.services import lab_start
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox
from tests.e2e.test_learner_in_browser import sign_in
from tests.fixtures.browser import ARTIFACTS, screenshot
from tests.fixtures.learners import wait_until_ready

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]
LAB = "pss-baseline"


@pytest.fixture
def sandbox(learner) -> Sandbox:
    """Ada's Baseline lab in a workshop (so a visit does not move the expiry), ready."""
    workshop = Workshop.objects.create(
        title="Workbench",
        join_code="BENCH1",
        lab_ids=[LAB],
        starts_at=timezone.now() - dt.timedelta(minutes=5),
        ends_at=timezone.now() + dt.timedelta(hours=2),
    )
    Enrolment.objects.create(workshop=workshop, user=learner, display_name="Ada")
    lab_start(user=learner, lab_id=LAB, workshop=workshop)
    return wait_until_ready(Sandbox.objects.get(owner=learner, lab_id=LAB), timeout=120)


def open_lab(browser, live_stack, learner, *, width: int = 1400, dark: bool = False):
    context = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme="dark" if dark else "light"
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_in(page, learner, live_stack.url)
    page.goto(f"{live_stack.url}/labs/{LAB}/")
    page.locator("#sandbox.sandbox-ready").wait_for()
    page.locator(".workbench [role=tablist]:not([hidden])").wait_for()  # lab.js ran
    return context, page


def shoot(page, name: str) -> None:
    """The whole page (as every browser test keeps it), and what the learner sees."""
    screenshot(page, name)
    page.screenshot(path=str(ARTIFACTS / f"{name}-view.png"))


def newest_panel_done(page, before: int):
    page.wait_for_function(f"document.querySelectorAll('#runs section.run').length > {before}")
    panel = page.locator("#runs section.run").first
    panel.locator(".run-done").wait_for()
    return panel


def test_two_panes_on_a_laptop_stacked_on_a_phone(live_stack, browser, learner, sandbox):
    context, page = open_lab(browser, live_stack, learner)
    steps = page.locator(".steps").bounding_box()
    bench = page.locator(".workbench").bounding_box()
    assert steps["x"] + steps["width"] <= bench["x"]  # side by side
    assert bench["y"] < steps["y"] + 200
    shoot(page, "workbench-01-laptop")
    context.close()

    for dark in (False, True):
        context, page = open_lab(browser, live_stack, learner, width=390, dark=dark)
        steps = page.locator(".steps").bounding_box()
        bench = page.locator(".workbench").bounding_box()
        assert bench["y"] >= steps["y"] + steps["height"]  # the console below the steps
        # Nothing runs off the right edge: no sideways scroll, every title and text inside.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        overflowing = page.evaluate(
            """Array.from(document.querySelectorAll(
                 '.step h2, .step-text p, .command code, .check, .lab-header *'))
               .filter(e => e.getBoundingClientRect().right > 390.5)
               .map(e => e.outerHTML.slice(0, 80))"""
        )
        assert overflowing == []
        shoot(page, f"workbench-02-phone{'-dark' if dark else ''}")
        page.locator(".workbench").scroll_into_view_if_needed()
        page.screenshot(
            path=str(ARTIFACTS / f"workbench-02-phone-console{'-dark' if dark else ''}.png")
        )
        context.close()


def test_the_files_panel_shows_the_learners_manifests_and_previews_a_folder(
    live_stack, browser, learner, sandbox
):
    namespace = sandbox.namespaces["assets"]
    context, page = open_lab(browser, live_stack, learner)
    page.get_by_role("tab", name="Files").click()
    assert page.locator("#files").is_visible() and not page.locator("#console").is_visible()
    manifest = page.locator("details.file[data-path='assets/baseline-namespace/namespace.yaml']")
    manifest.locator("summary").click()
    code = manifest.locator("pre.highlight")
    code.wait_for()
    # The seed's namespace manifest, with the learner's own namespace, highlighted.
    assert f"name: {namespace}" in code.inner_text()
    assert "pod-security.kubernetes.io/enforce: baseline" in code.inner_text()
    key = code.locator(".nt").first
    assert key.evaluate("e => getComputedStyle(e).color") != code.evaluate(
        "e => getComputedStyle(e).color"
    )
    page.wait_for_timeout(300)  # let the opened file paint before the screenshot
    shoot(page, "workbench-03-files")

    # Preview: `kubectl kustomize` runs like a Run button, and the console shows it.
    before = page.locator("#runs section.run").count()
    page.get_by_role("button", name="Preview: kubectl kustomize assets/baseline-namespace").click()
    panel = newest_panel_done(page, before)
    assert page.locator("#console").is_visible()
    assert "$ kubectl kustomize assets/baseline-namespace" in panel.inner_text()
    output = panel.locator(".run-stdout")
    assert f"name: {namespace}" in output.inner_text()
    assert panel.locator(".run-state").get_attribute("data-state") == "succeeded"
    # Output stays monospace, and its long lines wrap inside the panel.
    style = output.evaluate("e => [getComputedStyle(e).fontFamily, getComputedStyle(e).whiteSpace]")
    assert "monospace" in style[0] and style[1] == "pre-wrap"
    assert output.evaluate("e => e.scrollWidth <= e.clientWidth")
    shoot(page, "workbench-04-preview")
    # A preview only looks: it counts for no step, so it never fails one.
    assert (
        CommandRun.objects.get(command="kubectl kustomize assets/baseline-namespace").step_id == ""
    )
    context.close()


def test_focus_stays_in_the_command_box_and_edit_fills_it(live_stack, browser, learner, sandbox):
    namespace = sandbox.namespaces["assets"]
    context, page = open_lab(browser, live_stack, learner)
    box = page.locator("#command-input")

    # The shortcuts are listed, and "/" goes to the command box.
    page.get_by_text("Keyboard shortcuts").click()
    keys = page.locator("details.shortcuts dl").inner_text()
    for what in ("go to the command box", "run the command", "clear the command box"):
        assert what in keys
    page.locator("h1").click()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "command-input"

    # Enter runs it; when its output arrives, the box still has the focus.
    before = page.locator("#runs section.run").count()
    box.fill(f"kubectl get deployment -n {namespace} assets -o yaml")
    box.press("Enter")
    panel = newest_panel_done(page, before)
    assert page.evaluate("document.activeElement.id") == "command-input"
    assert box.input_value() == ""
    # A long line (kubectl's last-applied annotation) wraps: nothing scrolls sideways.
    output = panel.locator(".run-stdout")
    assert output.evaluate("e => e.scrollWidth <= e.clientWidth")
    # ...so the next command is typed straight away.
    before = page.locator("#runs section.run").count()
    page.keyboard.type(f"kubectl get pods -n {namespace}")
    page.keyboard.press("Enter")
    newest_panel_done(page, before)
    assert page.evaluate("document.activeElement.id") == "command-input"
    shoot(page, "workbench-05-focus")

    # Edit puts a step's command into the box, to change before running it.
    command = page.locator("#step-label-namespace .command code").first.inner_text()
    page.locator("#step-label-namespace").get_by_role("button", name="Edit:").first.click()
    assert box.input_value() == command
    assert page.evaluate("document.activeElement.id") == "command-input"
    box.press("Escape")
    assert box.input_value() == ""
    context.close()


def test_the_countdown_warns_ten_minutes_before_the_sandbox_expires(
    live_stack, browser, learner, sandbox
):
    Sandbox.objects.filter(id=sandbox.id).update(
        expires_at=timezone.now() + dt.timedelta(minutes=10, seconds=15)
    )
    context, page = open_lab(browser, live_stack, learner)
    countdown = page.locator("#sandbox .countdown")
    assert page.locator(".expiry-warning").count() == 0
    assert countdown.inner_text() == "(10 min left)"
    # Ten minutes before the end, the page asks the server and shows its warning.
    warning = page.locator("#sandbox .expiry-warning[role=alert]")
    warning.wait_for(timeout=30_000)
    assert "expires in under 10 minutes" in warning.inner_text()
    first = countdown.inner_text()
    assert first.startswith("(9:5")  # the last ten minutes, to the second
    page.wait_for_function(  # it counts down
        f"document.querySelector('#sandbox .countdown').textContent !== {first!r}",
        timeout=10_000,
    )
    shoot(page, "workbench-06-expiry-warning")
    context.close()


def test_the_dark_theme_follows_the_system(live_stack, browser, learner, sandbox):
    context, page = open_lab(browser, live_stack, learner, dark=True)
    page.get_by_role("tab", name="Files").click()
    page.locator("details.file[data-path='assets/base/deployment.yaml'] summary").click()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    text = page.evaluate("getComputedStyle(document.body).color")
    assert background == "rgb(14, 19, 26)" and text == "rgb(228, 232, 238)"
    page.emulate_media(color_scheme="light")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    page.emulate_media(color_scheme="dark")
    page.wait_for_timeout(300)
    shoot(page, "workbench-07-dark")
    context.close()
