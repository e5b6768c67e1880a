"""Judging a learner's current step from the cluster and the step's history.

The tracker calls `progress_judge` whenever something a step reads changes in
the learner's namespaces, and when one of their runs ends; "Check again" calls
it too, reading the API directly. It judges only the current step: a passed
step is a record, and later steps open one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labapp.catalog.registry import get_lab
from labapp.checks.base import RunOutput
from labapp.checks.evaluate import evaluate_step
from labapp.checks.outcome import Outcome
from labapp.clusters.config import admin_kubeconfig
from labapp.clusters.objects import ApiReader, ObjectReader
from labapp.learning.models import LabProgress, StepProgress
from labapp.learning.services import progress_record_outcomes
from labapp.live.streams import dashboard_key, progress_key, publish
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox

COUNTED_STATES = (CommandRun.State.SUCCEEDED, CommandRun.State.FAILED)


@dataclass
class Judgement:
    progress_id: int
    steps: list[StepProgress] = field(default_factory=list)  # each step judged, in order
    changed: bool = False

    @property
    def advanced(self) -> bool:
        return any(step.state == StepProgress.State.PASSED for step in self.steps)


def step_outputs(*, progress: LabProgress, step: StepProgress) -> list[RunOutput]:
    """What every run counted for this step printed since the step became current."""
    runs = CommandRun.objects.filter(
        sandbox__owner_id=progress.user_id,
        sandbox__lab_id=progress.lab_id,
        step_id=step.step_id,
        state__in=COUNTED_STATES,
    )
    if step.started_at is not None:
        runs = runs.filter(queued_at__gte=step.started_at)
    return [
        RunOutput(stdout, stderr)
        for stdout, stderr in runs.order_by("queued_at").values_list("stdout", "stderr")
    ]


def _same(before: list[dict[str, Any]], after: list[Outcome]) -> bool:
    # Timing differs on every evaluation; what the learner sees is the rest.
    def shown(data: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in data.items() if key != "seconds"}

    return [shown(d) for d in before] == [shown(o.to_dict()) for o in after]


def progress_judge(
    *, progress: LabProgress, sandbox: Sandbox, reader: ObjectReader, run_id: int | None = None
) -> Judgement:
    """Judge the current step; when it passes, judge the one it opened, and so on.

    `run_id` names the run that asked for this judgement: it counts as the
    learner's attempt at the step it was counted for."""
    judgement = Judgement(progress.id)
    lab = get_lab(progress.lab_id)
    attempt_step = (
        CommandRun.objects.filter(id=run_id).values_list("step_id", flat=True).first()
        if run_id
        else None
    )
    for _ in lab.steps:
        progress.refresh_from_db(fields=["current_step_id", "completed_at"])
        if progress.completed_at is not None:
            break
        step = progress.steps.filter(step_id=progress.current_step_id).first()
        if step is None or step.state == StepProgress.State.PASSED:
            break  # no current step (a record from a lab that changed), or nothing to judge
        outcomes = evaluate_step(
            lab.step(step.step_id).checks,
            namespaces=sandbox.namespaces,
            reader=reader,
            outputs=step_outputs(progress=progress, step=step),
            wait=False,
        )
        attempt = attempt_step == step.step_id
        if _same(step.last_outcomes, outcomes) and not attempt:
            break  # nothing new to record or to tell anyone
        recorded = progress_record_outcomes(
            user=progress.user,
            lab_id=progress.lab_id,
            step_id=step.step_id,
            outcomes=outcomes,
            attempt=attempt,
        )
        assert recorded is not None
        judgement.steps.append(recorded)
        judgement.changed = True
        if recorded.state != StepProgress.State.PASSED:
            break
    if judgement.changed:
        progress_announce(progress=progress)
    return judgement


def progress_announce(*, progress: LabProgress) -> None:
    """Tell the learner's page, and their instructor's dashboard, that the record moved."""
    payload = {"progress": progress.id, "step": progress.current_step_id}
    publish(progress_key(progress.id), "progress", payload)
    if progress.workshop_id:
        publish(dashboard_key(progress.workshop_id), "progress", payload)


def progress_recheck(*, progress: LabProgress, step_id: str) -> StepProgress:
    """ "Check again": judge the current step now, straight from the API server. The
    retry offered when a check could not run."""
    sandbox = Sandbox.objects.exclude(state=Sandbox.State.DELETED).get(
        owner=progress.user, lab_id=progress.lab_id
    )
    progress_judge(progress=progress, sandbox=sandbox, reader=ApiReader(admin_kubeconfig()))
    return progress.steps.get(step_id=step_id)
