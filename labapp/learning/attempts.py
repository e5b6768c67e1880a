"""A step attempt: one command a learner runs, and the step it counts for.

The server decides the step: a Run button's command counts for the step it
belongs to; a typed command counts for the learner's current step when the run
starts. The worker runs the command and ends the run as soon as kubectl exits;
judging the step is the tracker's work (`labapp.learning.tracking`), so no
worker slot waits for the cluster to converge.
"""

from __future__ import annotations

import logging

from django.db import transaction

from labapp.clusters.client import ClusterUnreachable
from labapp.learning.models import LabProgress
from labapp.live.streams import tracker_notify
from labapp.runs.models import CommandRun
from labapp.runs.services import run_claim, run_execute, run_finish, run_queue, run_start
from labapp.sandboxes.models import Sandbox

log = logging.getLogger(__name__)


@transaction.atomic
def attempt_start(
    *, sandbox: Sandbox, command: str, step_id: str = "", counts: bool = True
) -> CommandRun:
    """Record the command and queue it; a refused command is recorded and never queued.
    Without `step_id` (a typed command), it counts for the current step; with `counts`
    false (the Files panel's Preview, which only looks) it counts for no step."""
    assert sandbox.owner_id is not None  # runs start on a learner's sandbox, never a pool's
    if not counts:
        step_id = ""
    elif not step_id:
        step_id = (
            LabProgress.objects.filter(user_id=sandbox.owner_id, lab_id=sandbox.lab_id)
            .values_list("current_step_id", flat=True)
            .first()
        ) or ""
    run = run_start(sandbox=sandbox, command=command, step_id=step_id)
    if run.state == CommandRun.State.QUEUED:
        from labapp.learning.tasks import run_attempt

        run_attempt.apply_async_on_commit((run.id,), queue=run_queue(run))
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
    except ClusterUnreachable as exc:
        finished = run_finish(claimed=claimed, error=f"the sandbox cluster is unreachable: {exc}")
    except Exception as exc:
        log.exception("run %s failed inside the worker", run.id)
        finished = run_finish(
            claimed=claimed, error=f"the run could not complete ({type(exc).__name__}: {exc})"
        )
    else:
        finished = run_finish(claimed=claimed, result=result)
    if finished.step_id:
        tracker_notify(sandbox_id=run.sandbox_id, run_id=run.id)
    return finished
