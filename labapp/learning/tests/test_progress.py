"""Progress is recorded from check outcomes, never from what the browser says."""

from __future__ import annotations

import pytest

from labapp.checks.outcome import Outcome, Status
from labapp.learning.models import StepProgress
from labapp.learning.services import (
    lab_start,
    progress_record_outcomes,
    progress_reveal_hint,
    progress_reveal_solution,
)

pytestmark = pytest.mark.django_db

PASS = Outcome(Status.PASS, "t")
FAIL = Outcome(Status.FAIL, "t", expected="a", found="b")
ERROR = Outcome(Status.ERROR, "t", detail="API down")


@pytest.fixture
def record(learner, tiny_lab, settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path
    return lab_start(user=learner, lab_id=tiny_lab.id)


def states(record) -> list[str]:
    return list(record.steps.order_by("position").values_list("state", flat=True))


def record_run(record, step_id, *outcomes):
    return progress_record_outcomes(
        user=record.user, lab_id=record.lab_id, step_id=step_id, outcomes=list(outcomes)
    )


def test_a_new_record_opens_the_first_step_only(record):
    assert states(record) == ["working", "not_started", "not_started"]
    assert record.current_step_id == "label-namespace"


def test_all_checks_passing_passes_the_step_and_opens_the_next(record):
    step = record_run(record, "label-namespace", PASS, PASS)
    assert step.state == StepProgress.State.PASSED and step.passed_at is not None
    record.refresh_from_db()
    assert states(record) == ["passed", "working", "not_started"]
    assert record.current_step_id == "configure"


def test_a_failing_check_counts_failures_in_a_row(record):
    for _ in range(3):
        step = record_run(record, "label-namespace", PASS, FAIL)
    assert (step.state, step.failed_in_a_row, step.attempts) == ("failing", 3, 3)
    step = record_run(record, "label-namespace", PASS, PASS)
    assert (step.state, step.failed_in_a_row) == ("passed", 0)


def test_a_check_that_could_not_run_is_not_the_learners_failure(record):
    step = record_run(record, "label-namespace", PASS, ERROR)
    assert step.state == StepProgress.State.WORKING
    assert step.failed_in_a_row == 0
    assert step.last_outcomes[1]["status"] == "error"


def test_a_passed_step_stays_passed_when_a_later_run_fails(record):
    record_run(record, "label-namespace", PASS)
    step = record_run(record, "label-namespace", FAIL)
    assert step.state == StepProgress.State.PASSED


def test_passing_every_step_completes_the_lab(record):
    for step_id in ("label-namespace", "configure"):
        record_run(record, step_id, PASS)
        record.refresh_from_db()
        assert record.completed_at is None
    record_run(record, "recycle-pods", PASS)
    record.refresh_from_db()
    assert record.completed_at is not None


def test_hints_are_revealed_one_at_a_time_and_recorded(record):
    assert progress_reveal_hint(progress=record, step_id="label-namespace").hints_revealed == 1
    assert progress_reveal_hint(progress=record, step_id="label-namespace").hints_revealed == 2
    # The step has two hints: asking again reveals nothing more.
    assert progress_reveal_hint(progress=record, step_id="label-namespace").hints_revealed == 2
    assert (
        progress_reveal_solution(progress=record, step_id="label-namespace").solution_revealed
        is True
    )


def test_a_run_without_a_step_or_outcomes_changes_nothing(record):
    assert record_run(record, "", PASS) is None
    assert record_run(record, "label-namespace") is None
    assert states(record)[0] == "working"
