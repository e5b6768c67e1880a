"""Command runs: start (web), execute (worker), reap (beat)."""

from __future__ import annotations

import datetime as dt
import logging
import socket

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labapp.catalog.registry import get_lab
from labapp.checks.evaluate import evaluate_checks
from labapp.checks.kinds import CheckContext
from labapp.clusters.client import ClusterUnreachable
from labapp.clusters.config import admin_kubeconfig
from labapp.learning.services import progress_record_run
from labapp.runner.command import run_command_line
from labapp.runner.models import CommandRun
from labapp.runner.shell import CommandRefused, parse_command
from labapp.runner.streams import RunStreamWriter
from labapp.runner.tools import default_tools
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.services import sandbox_materialize, sandbox_refresh_token

log = logging.getLogger(__name__)
WORKER_LOST = "worker lost: the worker running this command stopped before it finished"
MAX_COMMAND_LENGTH = 2000


class RunNotAllowed(ValueError):
    """The sandbox cannot take commands now (provisioning, failed, expired)."""


@transaction.atomic
def run_start(*, sandbox: Sandbox, command: str, step_id: str = "") -> CommandRun:
    """Record the command; queue it if the restricted shell accepts it."""
    if sandbox.state != Sandbox.State.READY:
        raise RunNotAllowed(f"your sandbox is {sandbox.state}: {sandbox.status_message}")
    if sandbox.is_expired():
        raise RunNotAllowed("your sandbox has expired")
    if step_id:
        get_lab(sandbox.lab_id).step(step_id)  # KeyError for a step the lab does not have
    command = command.strip()
    try:
        parse_command(command)
    except CommandRefused as exc:
        return CommandRun.objects.create(
            sandbox=sandbox, step_id=step_id, command=command[:MAX_COMMAND_LENGTH],
            state=CommandRun.State.REFUSED, error=exc.reason, finished_at=timezone.now())
    run = CommandRun.objects.create(sandbox=sandbox, step_id=step_id, command=command)
    from labapp.runner.tasks import run_command

    run_command.delay_on_commit(run.id)
    return run


def run_execute(*, run_id: int, worker: str = "") -> CommandRun:
    """Run a QUEUED command to its end. Called by the task; safe to call twice."""
    with transaction.atomic():
        run = CommandRun.objects.select_for_update().select_related("sandbox").get(id=run_id)
        if run.state == CommandRun.State.RUNNING:
            # Redelivered: the worker that took it died mid-run. Never run it twice.
            return _finish_lost(run)
        if run.state != CommandRun.State.QUEUED:
            return run
        now = timezone.now()
        run.state, run.started_at, run.worker = CommandRun.State.RUNNING, now, worker or _host()
        run.deadline_at = now + dt.timedelta(
            seconds=settings.RUN_TIMEOUT_SECONDS + settings.RUN_DEADLINE_GRACE_SECONDS)
        run.save(update_fields=["state", "started_at", "worker", "deadline_at"])

    stream = RunStreamWriter(run.id)
    sandbox = run.sandbox
    try:
        sandbox = sandbox_refresh_token(sandbox=sandbox)
        sandbox_materialize(sandbox=sandbox)
        result = run_command_line(
            run.command, tools=default_tools(), kubeconfig=sandbox.kubeconfig_path,
            workdir=sandbox.workspace, timeout=settings.RUN_TIMEOUT_SECONDS,
            output_cap=settings.RUN_OUTPUT_CAP_BYTES, on_chunk=stream.chunk)
        checks = _evaluate_step_checks(run, sandbox, result.stdout, result.stderr)
    except ClusterUnreachable as exc:
        return _finish(run, stream, state=CommandRun.State.FAILED,
                       error=f"the sandbox cluster is unreachable: {exc}")
    except Exception as exc:
        # Never leave the run RUNNING for the reaper to call "worker lost".
        log.exception("run %s failed inside the worker", run.id)
        return _finish(run, stream, state=CommandRun.State.FAILED,
                       error=f"the run could not complete ({type(exc).__name__}: {exc})")
    succeeded = result.exit_code == 0 and not result.error
    return _finish(
        run, stream,
        state=CommandRun.State.SUCCEEDED if succeeded else CommandRun.State.FAILED,
        exit_code=result.exit_code, stdout=result.stdout, stderr=result.stderr,
        truncated=result.truncated, error=result.error or "", check_results=checks,
        first_byte_ms=_ms(result.first_byte_s), duration_ms=_ms(result.duration_s))


def _evaluate_step_checks(run: CommandRun, sandbox: Sandbox, stdout: str,
                          stderr: str) -> list[dict]:
    if not run.step_id:
        return []
    step = get_lab(sandbox.lab_id).step(run.step_id)
    checks = [check.render(sandbox.namespaces) for check in step.checks]
    ctx = CheckContext(admin_kubeconfig(), stdout=stdout, stderr=stderr)
    return [outcome.to_dict() for outcome in evaluate_checks(checks, ctx)]


def _finish(run: CommandRun, stream: RunStreamWriter, **fields) -> CommandRun:
    with transaction.atomic():
        current = CommandRun.objects.select_for_update().get(id=run.id)
        if current.is_final:
            return current  # the reaper got there first; its verdict stands
        for name, value in fields.items():
            setattr(current, name, value)
        current.finished_at = timezone.now()
        current.save()
    # Progress first: the `done` event tells the page to refresh it.
    progress_record_run(user=run.sandbox.owner, lab_id=run.sandbox.lab_id,
                        step_id=current.step_id, outcomes=current.check_results)
    stream.done(current.done_payload(complete=not stream.failed))
    return current


def _finish_lost(run: CommandRun) -> CommandRun:
    run.state, run.error, run.finished_at = CommandRun.State.FAILED, WORKER_LOST, timezone.now()
    run.save(update_fields=["state", "error", "finished_at"])
    RunStreamWriter(run.id).done(run.done_payload(complete=False))
    return run


def runs_reap(*, now: dt.datetime | None = None) -> list[int]:
    """End runs that can no longer finish by themselves. Returns their ids."""
    now = now or timezone.now()
    reaped = []
    with transaction.atomic():
        lost = CommandRun.objects.select_for_update().filter(
            state=CommandRun.State.RUNNING, deadline_at__lt=now)
        for run in lost:
            run.state, run.error, run.finished_at = CommandRun.State.FAILED, WORKER_LOST, now
            run.save(update_fields=["state", "error", "finished_at"])
            reaped.append(run)
        unclaimed = CommandRun.objects.select_for_update().filter(
            state=CommandRun.State.QUEUED,
            queued_at__lt=now - dt.timedelta(seconds=settings.RUN_QUEUE_DEADLINE_SECONDS))
        for run in unclaimed:
            run.state, run.finished_at = CommandRun.State.FAILED, now
            run.error = ("no worker took this command within "
                         f"{settings.RUN_QUEUE_DEADLINE_SECONDS}s; is a worker running?")
            run.save(update_fields=["state", "error", "finished_at"])
            reaped.append(run)
    for run in reaped:
        RunStreamWriter(run.id).done(run.done_payload(complete=False))
    return [run.id for run in reaped]


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _host() -> str:
    return socket.gethostname()
