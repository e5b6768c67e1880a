"""A step attempt: one command a learner runs, and what it counts for.

run -> evaluate the step -> record progress -> finish. The run's record lives
in `labapp.runs`; this module is the one place that ties a run to a step.
"""

from __future__ import annotations

import logging

from django.db import transaction

from labapp.catalog.registry import get_lab
from labapp.checks.evaluate import evaluate_step
from labapp.checks.outcome import Outcome
from labapp.clusters.client import ClusterUnreachable
from labapp.clusters.config import admin_kubeconfig
from labapp.learning.services import progress_record_outcomes
from labapp.runs.models import CommandRun
from labapp.runs.services import run_claim, run_execute, run_finish, run_start
from labapp.sandboxes.models import Sandbox
from labapp.shell.execute import RunResult

log = logging.getLogger(__name__)


@transaction.atomic
def attempt_start(*, sandbox: Sandbox, command: str, step_id: str = "") -> CommandRun:
    """Record the command and queue it; a refused command is recorded and never queued."""
    run = run_start(sandbox=sandbox, command=command, step_id=step_id)
    if run.state == CommandRun.State.QUEUED:
        from labapp.learning.tasks import run_attempt

        run_attempt.delay_on_commit(run.id)
    return run


def attempt_execute(*, run_id: int, worker: str = "") -> CommandRun | None:
    """The worker's side of an attempt. Any failure ends the run with its cause:
    a run is never left RUNNING for the reaper to call "worker lost"."""
    claimed = run_claim(run_id=run_id, worker=worker)
    if claimed is None:
        return None
    run = claimed.run
    try:
        result = run_execute(claimed=claimed)
        outcomes = _evaluate(run, result)
    except ClusterUnreachable as exc:
        return run_finish(claimed=claimed, error=f"the sandbox cluster is unreachable: {exc}")
    except Exception as exc:
        log.exception("run %s failed inside the worker", run.id)
        return run_finish(
            claimed=claimed, error=f"the run could not complete ({type(exc).__name__}: {exc})"
        )
    # Progress first: the `done` event tells the page to refresh it.
    if run.step_id and outcomes:
        progress_record_outcomes(
            user=run.sandbox.owner,
            lab_id=run.sandbox.lab_id,
            step_id=run.step_id,
            outcomes=outcomes,
        )
    return run_finish(claimed=claimed, result=result, outcomes=outcomes)


def _evaluate(run: CommandRun, result: RunResult) -> list[Outcome]:
    if not run.step_id:
        return []
    step = get_lab(run.sandbox.lab_id).step(run.step_id)
    return evaluate_step(
        step.checks,
        namespaces=run.sandbox.namespaces,
        kubeconfig=admin_kubeconfig(),
        stdout=result.stdout,
        stderr=result.stderr,
    )
