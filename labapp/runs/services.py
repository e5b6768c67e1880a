"""Command runs as records: start (web), claim and execute (worker), finish, cancel
(web), reap (beat).

What a run counts for (its step, the learner's progress) is the step attempt's
business, in `labapp.learning.attempts`; nothing here reaches up to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import socket
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labapp.catalog.registry import get_lab
from labapp.clusters.tools import default_tools
from labapp.live.streams import RunStreamWriter
from labapp.runs.cancel import CancelWatch, cancel_request
from labapp.runs.learner import learner_user, shell_policy
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.services import sandbox_materialize, sandbox_refresh_token
from labapp.shell.command import run_command_line
from labapp.shell.execute import RunResult
from labapp.shell.lanes import Lane, command_lane
from labapp.shell.limits import DEFAULT_LIMITS, ProcessLimits
from labapp.shell.parse import CommandRefused, parse_command

log = logging.getLogger(__name__)
WORKER_LOST = "worker lost: the worker running this command stopped before it finished"
CANCELLED = "cancelled by the learner"
MAX_COMMAND_LENGTH = 2000


class RunNotAllowed(ValueError):
    """The sandbox cannot take commands now (provisioning, failed, expired)."""


@dataclass
class Claimed:
    """A run this worker now owns, with the stream its output goes to."""

    run: CommandRun
    stream: RunStreamWriter


@transaction.atomic
def run_start(*, sandbox: Sandbox, command: str, step_id: str = "") -> CommandRun:
    """Record the command: QUEUED if the restricted shell accepts it, else REFUSED
    with the reason. The caller queues it for a worker. RunNotAllowed when the
    sandbox cannot take it (not ready, expired, or too many commands in flight)."""
    # The row lock serialises starts on one sandbox: two cannot both take its last slot.
    sandbox = Sandbox.objects.select_for_update().get(id=sandbox.id)
    if sandbox.state != Sandbox.State.READY:
        raise RunNotAllowed(f"your sandbox is {sandbox.state}: {sandbox.status_message}")
    if sandbox.is_expired():
        raise RunNotAllowed("your sandbox has expired")
    if step_id:
        get_lab(sandbox.lab_id).step(step_id)  # KeyError for a step the lab does not have
    command = command.strip()
    try:
        pipeline = parse_command(command, shell_policy(sandbox))
    except CommandRefused as exc:
        return CommandRun.objects.create(
            sandbox=sandbox,
            step_id=step_id,
            command=command[:MAX_COMMAND_LENGTH],
            state=CommandRun.State.REFUSED,
            error=exc.reason,
            finished_at=timezone.now(),
        )
    in_flight = CommandRun.objects.filter(
        sandbox=sandbox, state__in=[CommandRun.State.QUEUED, CommandRun.State.RUNNING]
    ).count()
    if in_flight >= settings.RUN_IN_FLIGHT_PER_SANDBOX:
        raise RunNotAllowed(
            f"you already have {in_flight} commands queued or running; "
            "wait for one to finish, then run this one again"
        )
    return CommandRun.objects.create(
        sandbox=sandbox, step_id=step_id, command=command, lane=command_lane(pipeline)
    )


def run_claim(*, run_id: int, worker: str = "") -> Claimed | None:
    """QUEUED -> RUNNING for this worker. None when there is nothing to run: the
    run is over already, or it was redelivered after its worker died mid-run
    (then it ends as "worker lost": a command never runs twice)."""
    with transaction.atomic():
        run = CommandRun.objects.select_for_update().select_related("sandbox").get(id=run_id)
        if run.state == CommandRun.State.RUNNING:
            _mark_lost(run)
            return None
        if run.state != CommandRun.State.QUEUED:
            return None
        now = timezone.now()
        run.state, run.started_at, run.worker = CommandRun.State.RUNNING, now, worker or _host()
        run.deadline_at = now + dt.timedelta(
            seconds=settings.RUN_TIMEOUT_SECONDS + settings.RUN_DEADLINE_GRACE_SECONDS
        )
        run.save(update_fields=["state", "started_at", "worker", "deadline_at"])
    return Claimed(run, RunStreamWriter(run.id))


def run_execute(*, claimed: Claimed) -> RunResult:
    """Run the command with the learner's own credentials (and, where the worker is
    root, the sandbox's own uid), streaming its output, until it ends, times out or
    is cancelled. Raises ClusterUnreachable when the learner's token cannot be renewed."""
    sandbox = sandbox_refresh_token(sandbox=claimed.run.sandbox)
    sandbox_materialize(sandbox=sandbox)
    return run_command_line(
        claimed.run.command,
        tools=default_tools(),
        kubeconfig=sandbox.kubeconfig_path,
        workdir=sandbox.workspace,
        timeout=settings.RUN_TIMEOUT_SECONDS,
        output_cap=settings.RUN_OUTPUT_CAP_BYTES,
        on_chunk=claimed.stream.chunk,
        policy=shell_policy(sandbox),
        limits=limits_for(claimed.run),
        user=learner_user(sandbox),
        cancelled=CancelWatch(claimed.run.id, claimed.stream.client),
    )


def run_queue(run: CommandRun) -> str:
    """The Celery queue of the run's lane (settings.RUN_LANE_QUEUES)."""
    return settings.RUN_LANE_QUEUES[run.lane or Lane.SLOW]


def limits_for(run: CommandRun) -> ProcessLimits:
    """Slow commands run at a lower CPU priority (settings.SLOW_RUN_NICENESS)."""
    if run.lane == Lane.QUICK:
        return DEFAULT_LIMITS
    return dataclasses.replace(DEFAULT_LIMITS, niceness=settings.SLOW_RUN_NICENESS)


def run_finish(*, claimed: Claimed, result: RunResult | None = None, error: str = "") -> CommandRun:
    """RUNNING -> SUCCEEDED or FAILED, then the stream's `done`. With `error`, the
    run failed for a reason of ours (the cluster, the worker), named to the learner."""
    fields: dict = {}
    if result is not None:
        succeeded = result.exit_code == 0 and not result.error and not error
        state = CommandRun.State.SUCCEEDED if succeeded else CommandRun.State.FAILED
        if result.cancelled:
            state, error = CommandRun.State.CANCELLED, CANCELLED
        fields.update(
            state=state,
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            truncated=result.truncated,
            error=error or result.error or "",
            first_byte_ms=_ms(result.first_byte_s),
            duration_ms=_ms(result.duration_s),
        )
    else:
        fields.update(state=CommandRun.State.FAILED, error=error)
    with transaction.atomic():
        current = CommandRun.objects.select_for_update().get(id=claimed.run.id)
        if current.is_final:
            return current  # the reaper got there first; its verdict stands
        for name, value in fields.items():
            setattr(current, name, value)
        current.finished_at = timezone.now()
        current.save()
    claimed.stream.done(current.done_payload(complete=not claimed.stream.failed))
    return current


def run_cancel(*, run: CommandRun) -> CommandRun:
    """The learner's Cancel. A queued run ends here as CANCELLED (the worker that
    takes it finds nothing to run); a running one's worker is told, stops the
    process group and ends it as CANCELLED; a run that is over stays as it is.
    Raises CancelUnavailable when the worker cannot be told (Redis is away)."""
    with transaction.atomic():
        current = CommandRun.objects.select_for_update().get(id=run.id)
        if current.state == CommandRun.State.QUEUED:
            current.state, current.error = CommandRun.State.CANCELLED, CANCELLED
            current.finished_at = timezone.now()
            current.save(update_fields=["state", "error", "finished_at"])
            ended = True
        else:
            ended = False
    if ended:
        RunStreamWriter(current.id).done(current.done_payload())
    elif current.state == CommandRun.State.RUNNING:
        cancel_request(current.id)
    return current


def _mark_lost(run: CommandRun) -> None:
    run.state, run.error, run.finished_at = CommandRun.State.FAILED, WORKER_LOST, timezone.now()
    run.save(update_fields=["state", "error", "finished_at"])
    RunStreamWriter(run.id).done(run.done_payload(complete=False))


def runs_reap(*, now: dt.datetime | None = None) -> list[int]:
    """End runs that can no longer finish by themselves. Returns their ids."""
    now = now or timezone.now()
    reaped = []
    with transaction.atomic():
        lost = CommandRun.objects.select_for_update().filter(
            state=CommandRun.State.RUNNING, deadline_at__lt=now
        )
        for run in lost:
            run.state, run.error, run.finished_at = CommandRun.State.FAILED, WORKER_LOST, now
            run.save(update_fields=["state", "error", "finished_at"])
            reaped.append(run)
        unclaimed = CommandRun.objects.select_for_update().filter(
            state=CommandRun.State.QUEUED,
            queued_at__lt=now - dt.timedelta(seconds=settings.RUN_QUEUE_DEADLINE_SECONDS),
        )
        for run in unclaimed:
            run.state, run.finished_at = CommandRun.State.FAILED, now
            run.error = (
                "no worker took this command within "
                f"{settings.RUN_QUEUE_DEADLINE_SECONDS}s; is a worker running "
                f"on the `{run_queue(run)}` queue?"
            )
            run.save(update_fields=["state", "error", "finished_at"])
            reaped.append(run)
    for run in reaped:
        RunStreamWriter(run.id).done(run.done_payload(complete=False))
    return [run.id for run in reaped]


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _host() -> str:
    return socket.gethostname()
