"""Cancelling a running command: the web sets a flag in Redis; the worker running
it looks between reads of its output and stops the process group.

A queued run needs no flag: `run_cancel` ends it in the database, and the worker
that takes it later finds nothing to run.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings

from labapp.live.streams import sync_client

log = logging.getLogger(__name__)
# How often the worker asks Redis: a cancel takes effect within about this long.
POLL_SECONDS = 0.5
# After Redis failed to answer: a hung Redis must not slow the run's output down.
RETRY_SECONDS = 5.0


class CancelUnavailable(RuntimeError):
    """Redis cannot be reached, so the worker cannot be told."""


def cancel_key(run_id: int) -> str:
    return f"labapp:run:{run_id}:cancel"


def cancel_request(run_id: int) -> None:
    """Ask the run's worker to stop it. The flag outlives any run's deadline."""
    lifetime = settings.RUN_TIMEOUT_SECONDS + settings.RUN_DEADLINE_GRACE_SECONDS + 60
    try:
        sync_client().set(cancel_key(run_id), "1", ex=lifetime)
    except redis.RedisError as exc:
        raise CancelUnavailable(f"the command could not be cancelled now ({exc})") from exc


class CancelWatch:
    """The executor's `cancelled` question for one run: a Redis read at most every
    POLL_SECONDS. Redis being away means "not cancelled": the run's timeout still
    ends it."""

    def __init__(self, run_id: int, client: redis.Redis | None = None) -> None:
        self.key = cancel_key(run_id)
        self.client = client or sync_client()
        self.next_look = 0.0
        self.seen = False
        self.failed = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.seen or now < self.next_look:
            return self.seen
        self.next_look = now + POLL_SECONDS
        try:
            self.seen = bool(self.client.exists(self.key))
        except redis.RedisError as exc:
            self.next_look = time.monotonic() + RETRY_SECONDS
            if not self.failed:
                log.warning("cannot see cancels of %s (%s); its timeout applies", self.key, exc)
            self.failed = True
        return self.seen
