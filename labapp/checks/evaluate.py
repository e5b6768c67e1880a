"""Evaluate a step's checks, polling those that may take a moment to pass."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from labapp.checks.base import Check, CheckContext, RunOutput
from labapp.checks.outcome import Outcome, Status
from labapp.clusters.objects import ObjectReader

POLL_INTERVAL = 0.5


def evaluate_checks(
    checks: Sequence[Check],
    ctx: CheckContext,
    *,
    wait: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> list[Outcome]:
    """One Outcome per check, in order.

    With `wait`, a failing check with a `wait` budget is retried until it
    passes or its budget runs out; all checks poll together, so the total is
    the largest budget, not the sum. Errors are final: retrying a broken
    check only delays the message.
    """
    started = clock()
    outcomes = [_timed(check, ctx, clock) for check in checks]
    while wait:
        pending = [
            i
            for i, (check, outcome) in enumerate(zip(checks, outcomes, strict=True))
            if outcome.status is Status.FAIL and clock() - started < check.wait
        ]
        if not pending:
            break
        time.sleep(POLL_INTERVAL)
        for i in pending:
            outcomes[i] = _timed(checks[i], ctx, clock, since=started)
    return outcomes


def _timed(
    check: Check, ctx: CheckContext, clock: Callable[[], float], since: float | None = None
) -> Outcome:
    begun = clock()
    outcome = check.evaluate(ctx)
    elapsed = clock() - (since if since is not None else begun)
    return Outcome(
        outcome.status,
        outcome.title,
        outcome.expected,
        outcome.found,
        outcome.detail,
        round(elapsed, 3),
    )


def evaluate_step(
    checks: Sequence[Check],
    *,
    namespaces: Mapping[str, str],
    reader: ObjectReader,
    outputs: Sequence[RunOutput] = (),
    wait: bool = True,
) -> list[Outcome]:
    """A step's (or a setup's) checks, rendered for one sandbox and judged with admin
    credentials: the one evaluation that the tracker, Check again, setup and rehearsal
    share. `outputs` are the step's runs since it became current."""
    rendered = [check.render(namespaces) for check in checks]
    return evaluate_checks(rendered, CheckContext(reader, outputs), wait=wait)
