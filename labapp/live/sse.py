"""Server-sent events from Redis streams, resumable by Last-Event-ID.

Each event's id is its Redis stream id, so a browser that reconnects with
Last-Event-ID resumes exactly after the last event it saw.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from django.conf import settings

BLOCK_MS = 15_000
STREAM_ID_START = "0-0"


def sse_event(event: str, data: str, event_id: str | None = None) -> str:
    lines = [f"id: {event_id}"] if event_id else []
    lines.append(f"event: {event}")
    lines += [f"data: {line}" for line in data.split("\n")]
    return "\n".join(lines) + "\n\n"


def valid_stream_id(value: str | None) -> str:
    """Last-Event-ID comes from the client: accept only a Redis stream id."""
    if value:
        ms, _, seq = value.partition("-")
        if ms.isdigit() and seq.isdigit():
            return value
    return STREAM_ID_START


def async_client() -> aioredis.Redis:
    # The read timeout must outlast the blocking XREAD, or every idle wait
    # would look like a Redis failure.
    return aioredis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=BLOCK_MS / 1000 + 10
    )
