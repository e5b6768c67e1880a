"""An instructor manages a workshop in the UI: create (mistakes named at their
field), edit, close, delete; shares its join link; broadcasts and clears; reads
charts with axes and a learner's command history. Personas: the instructor,
the learner (Ada). The browser side is in tests/e2e/test_instructor_workflow.py."""

from __future__ import annotations

import datetime as dt
import re
from unittest import mock

import pytest
from django.utils import timezone

from labapp.checks.outcome import Outcome, Status
from labapp.instructor import charts
from labapp.instructor.selectors import StepStats, learner_history
from labapp.instructor.services import workshop_create
from labapp.learning.models import Enrolment, LabProgress, Workshop
from labapp.learning.services import lab_start, progress_record_outcomes
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox, SandboxPool

pytestmark = pytest.mark.django_db
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
        capacity=10,
    )


@pytest.fixture
def ada(workshop, learner):
    enrolment = Enrolment.objects.create(workshop=workshop, user=learner, display_name="Ada")
    lab_start(user=learner, lab_id="tiny", workshop=workshop)
    return enrolment


FORM = {
    "title": "Friday PSS",
    "starts_at": "2030-12-04T09:00",
    "ends_at": "2030-12-04T12:00",
    "capacity": "40",
    "lifetime": "180",
}


def test_creating_a_workshop_with_no_lab_ticked_is_a_form_error(as_instructor, tiny_lab):
    refused = as_instructor.post("/teach/", FORM)
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "Tick at least one lab." in page
    assert 'role="alert"' in page
    assert 'value="Friday PSS"' in page  # what was typed stays
    assert 'value="2030-12-04T09:00"' in page
    assert not Workshop.objects.exists()


def test_an_end_before_the_start_is_named_at_its_field(as_instructor, tiny_lab):
    refused = as_instructor.post(
        "/teach/", {**FORM, "labs": ["tiny"], "ends_at": "2030-12-04T08:00"}
    )
    assert refused.status_code == 400
    assert "The workshop must end after it starts." in refused.content.decode()


def test_the_instructor_edits_a_workshop_and_its_pools_follow(workshop, as_instructor, settings):
    settings.POOL_WORKSHOP_PERCENT = 50
    page = as_instructor.get(f"/teach/{workshop.join_code}/edit/").content.decode()
    assert 'value="PSS"' in page and re.search(r'value="tiny" id="\w+" checked', page)
    saved = as_instructor.post(
        f"/teach/{workshop.join_code}/edit/", {**FORM, "labs": ["tiny", "tiny-privileged"]}
    )
    assert saved.status_code == 302 and saved["Location"] == f"/teach/{workshop.join_code}/"
    workshop.refresh_from_db()
    assert workshop.title == "Friday PSS"
    assert workshop.lab_ids == ["tiny", "tiny-privileged"]
    assert (workshop.capacity, workshop.sandbox_lifetime_minutes) == (40, 180)
    assert workshop.ends_at == dt.datetime(2030, 12, 4, 12, 0, tzinfo=dt.UTC)
    pools = {pool.lab_id: pool for pool in workshop.pools.all()}
    assert set(pools) == {"tiny", "tiny-privileged"}
    assert all(p.size == 20 and p.ends_at == workshop.ends_at for p in pools.values())
    shown = as_instructor.get(saved["Location"]).content.decode()
    assert "Saved: the workshop" in shown


def test_removing_a_lab_closes_its_pool(workshop, as_instructor, settings):
    settings.POOL_WORKSHOP_PERCENT = 50
    as_instructor.post(f"/teach/{workshop.join_code}/edit/", {**FORM, "labs": ["tiny"]})
    as_instructor.post(f"/teach/{workshop.join_code}/edit/", {**FORM, "labs": ["tiny-privileged"]})
    closed = SandboxPool.objects.get(workshops=workshop, lab_id="tiny")
    assert closed.ends_at is not None and closed.ends_at <= timezone.now()


def test_closing_ends_the_workshop_now(workshop, as_instructor):
    closed = as_instructor.post(f"/teach/{workshop.join_code}/close/")
    assert closed.status_code == 302
    workshop.refresh_from_db()
    assert not workshop.is_open()
    assert "Closed: nobody can join any more" in as_instructor.get(closed["Location"]).text


def test_deleting_asks_first_and_keeps_the_learners_records(workshop, ada, as_instructor):
    path = f"/teach/{workshop.join_code}/delete/"
    asked = as_instructor.get(path)
    assert asked.status_code == 200 and "Yes, delete the workshop" in asked.text
    assert as_instructor.post(path, {}).status_code == 400  # not confirmed: nothing happens
    assert Workshop.objects.filter(id=workshop.id).exists()
    deleted = as_instructor.post(path, {"confirm": "yes"})
    assert deleted.status_code == 302 and deleted["Location"] == "/teach/"
    assert not Workshop.objects.filter(id=workshop.id).exists()
    assert not Enrolment.objects.exists()
    record = LabProgress.objects.get(user=ada.user)
    assert record.workshop is None  # the learner's record stays theirs
    assert "Deleted the workshop “PSS”" in as_instructor.get("/teach/").text


def test_the_dashboard_shares_the_join_link_with_a_copy_button_and_a_qr_code(
    workshop, as_instructor
):
    page = as_instructor.get(f"/teach/{workshop.join_code}/").content.decode()
    link = f"http://testserver/join/{workshop.join_code}/"
    assert f'data-copy="{link}"' in page
    assert f'src="/teach/{workshop.join_code}/join.svg"' in page
    qr = as_instructor.get(f"/teach/{workshop.join_code}/join.svg")
    assert qr["Content-Type"] == "image/svg+xml"
    svg = qr.content.decode()
    assert svg.startswith("<?xml") and 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert "viewBox" in svg  # scales to any size, for a projector


def test_a_broadcast_is_confirmed_and_can_be_cleared(workshop, ada, as_instructor):
    with mock.patch("labapp.instructor.services.broadcast_publish") as publish:
        sent = as_instructor.post(
            f"/teach/{workshop.join_code}/broadcast/", {"message": "Break until 11:00"}
        )
        page = as_instructor.get(sent["Location"]).content.decode()
        assert "Sent to 1 learner: “Break until 11:00”" in page
        assert "Clear the broadcast" in page
        cleared = as_instructor.post(f"/teach/{workshop.join_code}/broadcast/", {"clear": "yes"})
        page = as_instructor.get(cleared["Location"]).content.decode()
    assert "Cleared: learners" in page and "Clear the broadcast" not in page
    workshop.refresh_from_db()
    assert workshop.broadcast == "" and workshop.broadcast_at is None
    assert [c.kwargs["payload"] for c in publish.call_args_list] == [
        {"message": "Break until 11:00"},
        {"message": ""},
    ]


def test_a_cleared_broadcast_empties_the_learners_banner():
    from labapp.live.broadcasts import render_broadcast

    assert "From your instructor" in render_broadcast("broadcast", {"message": "hi"})
    cleared = render_broadcast("broadcast", {"message": ""})
    assert cleared.strip() and "From your instructor" not in cleared  # an SSE event needs data


def test_charts_have_axes_units_and_a_legend():
    steps = [
        StepStats("a", "Label the namespace", reached=7, passed=5, median=dt.timedelta(minutes=3)),
        StepStats("b", "Recycle the pods", reached=5, passed=2, median=dt.timedelta(minutes=7)),
        StepStats("c", "Fix it", reached=2, passed=0, median=None),
    ]
    funnel = charts.funnel(steps, learners=7)
    assert funnel.axis_title == "learners (of 7)"
    assert [t.label for t in funnel.ticks] == ["0", "2", "4", "6", "8"]
    assert [item.label for item in funnel.legend] == ["passed the step", "reached it"]
    medians = charts.median_times(steps)
    assert medians.axis_title.startswith("minutes")
    assert [t.label for t in medians.ticks] == ["0", "2", "4", "6", "8"]
    assert medians.bars[2].value_text == "no one passed yet"
    # The bars sit on the axis's scale: 7 min of 8 is 7/8 of the plot.
    assert medians.bars[1].width == round(charts.PLOT_WIDTH * 7 / 8)


def test_the_dashboard_draws_the_charts_axes_and_legends(workshop, ada, as_instructor):
    page = as_instructor.get(f"/teach/{workshop.join_code}/").content.decode()
    assert page.count('data-axis="x"') == 2 and page.count("data-legend") == 2
    assert "learners (of 1)" in page and "minutes on the step" in page


def test_the_learner_page_shows_each_command_with_its_outcome(workshop, ada, as_instructor):
    sandbox = Sandbox.objects.get(owner=ada.user)
    runs = [
        CommandRun.objects.create(
            sandbox=sandbox,
            step_id="label-namespace",
            command="kubectl label ns shop x=y",
            state=CommandRun.State.FAILED,
            exit_code=1,
            stderr="Error from server (Forbidden)\n",
            duration_ms=120,
        ),
        CommandRun.objects.create(
            sandbox=sandbox, command="rm -rf /", state=CommandRun.State.REFUSED, error="no rm"
        ),
        CommandRun.objects.create(
            sandbox=sandbox,
            step_id="label-namespace",
            command="kubectl apply -k shop/restricted",
            state=CommandRun.State.SUCCEEDED,
            exit_code=0,
            stdout="namespace/shop configured\n",
        ),
    ]
    progress_record_outcomes(
        user=ada.user,
        lab_id="tiny",
        step_id="label-namespace",
        outcomes=[Outcome(Status.PASS, "enforce is restricted")],
    )
    records, history = learner_history(enrolment=ada)
    assert [row.outcome for row in history] == ["✗ exit 1", "⊘ refused", "✓ exit 0"]
    assert [row.passed_step for row in history] == [False, False, True]
    assert history[0].step_number == 1 and records[0].steps[0].title
    page = as_instructor.get(f"/teach/{workshop.join_code}/learners/{ada.id}/").content.decode()
    table = page[page.index('class="history-table"') :]
    first, last = "kubectl label ns shop x=y", "kubectl apply -k shop/restricted"
    assert table.index(first) < table.index(last)
    assert "✗ exit 1" in table and "120 ms" in table and "Error from server (Forbidden)" in table
    assert "⊘ refused" in table and "no rm" in table
    assert "→ the step passed" in table
    assert re.search(rf'id="run-{runs[2].id}" data-state="succeeded"', table)
