"""A run's live output as a Redis stream: one entry per chunk, then `done`.

Stream ids double as SSE event ids, so a reconnect with Last-Event-ID
resumes exactly after the last chunk the browser saw.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import redis
from django.conf import settings
from redis.typing import EncodableT, FieldT

log = logging.getLogger(__name__)
MAX_ENTRIES = 20_000

# Stream replies as our clients get them (RESP2, bytes, no decode_responses). redis-py
# types them as the union of every protocol's shape, so readers cast to these.
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
XReadReply = list[tuple[bytes, StreamEntries]]  # [(key, entries), ...], one per stream


def stream_key(run_id: int) -> str:
    return f"labapp:run:{run_id}"


def workshop_events_key(workshop_id: int) -> str:
    return f"labapp:workshop:{workshop_id}:events"


def sync_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)


class RunStreamWriter:
    """Appends chunks; a Redis failure is logged, never fatal to the run."""

    def __init__(self, run_id: int, client: redis.Redis | None = None) -> None:
        self.key = stream_key(run_id)
        self.client = client or sync_client()
        self.failed = False

    def chunk(self, kind: str, text: str) -> None:
        self._add({"kind": kind, "text": text})

    def done(self, payload: dict[str, Any]) -> None:
        self._add({"kind": "done", "text": json.dumps(payload)})
        with contextlib.suppress(redis.RedisError):
            self.client.expire(self.key, settings.RUN_STREAM_TTL_SECONDS)

    def _add(self, fields: dict[FieldT, EncodableT]) -> None:
        try:
            self.client.xadd(self.key, fields, maxlen=MAX_ENTRIES, approximate=True)
        except redis.RedisError as exc:
            if not self.failed:
                log.warning(
                    "live output for %s lost (%s); the result is still stored", self.key, exc
                )
            self.failed = True


# -- the tracker's inbox, and what it publishes ----------------------------------

TRACKER_INBOX = "labapp:tracker:inbox"
TRACKER_HEARTBEAT = "labapp:tracker:heartbeat"


def progress_key(lab_progress_id: int) -> str:
    """A learner's lab page listens here: their steps changed."""
    return f"labapp:progress:{lab_progress_id}"


def dashboard_key(workshop_id: int) -> str:
    """An instructor's dashboard listens here: a learner of the workshop moved."""
    return f"labapp:workshop:{workshop_id}:dashboard"


def publish(key: str, kind: str, payload: dict[str, Any], *, maxlen: int = 200) -> bool:
    """Append one event; False when Redis is down (the page's next load shows the
    record, which is in the database)."""
    client = sync_client()
    try:
        client.xadd(
            key, {"kind": kind, "text": json.dumps(payload)}, maxlen=maxlen, approximate=True
        )
        client.expire(key, settings.RUN_STREAM_TTL_SECONDS)
    except redis.RedisError as exc:
        log.warning("could not publish %s to %s: %s", kind, key, exc)
        return False
    return True


def tracker_notify(*, sandbox_id: int, run_id: int | None = None) -> bool:
    """Ask the tracker to judge a sandbox's current step now: a run ended, a step was
    reset, a sandbox became ready. Its informers see cluster changes by themselves."""
    payload = {"sandbox": sandbox_id, "run": run_id}
    return publish(TRACKER_INBOX, "judge", payload, maxlen=10_000)
