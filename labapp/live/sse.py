"""Server-sent events from Redis streams, resumable by Last-Event-ID.

Each event's id is its Redis stream id, so a browser that reconnects with
Last-Event-ID resumes exactly after the last event it saw.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, cast

import redis.asyncio as aioredis
from django.conf import settings
from django.http import StreamingHttpResponse
from redis.exceptions import RedisError

from labapp.live.streams import StreamEntries, XReadReply

BLOCK_MS = 15_000
STREAM_ID_START = "0-0"


# Every line ending the SSE parser knows (CRLF, CR, LF): any of them in the data
# would end its `data:` line, and what follows could pass for a field.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def sse_event(event: str, data: str, event_id: str | None = None) -> str:
    """One event. `data` may hold any text (a learner's command output): each of
    its lines becomes a `data:` line of its own, so no text starts a field or ends
    the event; the browser joins them with LF (a CR arrives as LF). The type and
    id are ours, and must be single lines."""
    for field in (event, event_id or ""):
        if _LINE_BREAK.search(field) or "\x00" in field:
            raise ValueError(f"an SSE event type or id must be one line: {field!r}")
    lines = [f"id: {event_id}"] if event_id else []
    lines.append(f"event: {event}")
    lines += [f"data: {line}" for line in _LINE_BREAK.split(data)]
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


def positions_from(last_event_id: str | None, count: int) -> list[str] | None:
    """The per-stream positions a relay's event id carries ("id_id_…"); None when the
    client sent none or something else (then it starts from now)."""
    if not last_event_id:
        return None
    parts = last_event_id.split("_")
    if len(parts) != count or any(valid_stream_id(p) != p for p in parts):
        return None
    return parts


async def relay(
    keys: list[str],
    *,
    render: Callable[[str, dict[str, Any]], str],
    last_event_id: str | None = None,
) -> AsyncIterator[str]:
    """Relay several Redis streams as one SSE stream, for as long as the page is open.

    Each event's id holds every stream's position, so a reconnect resumes each
    one exactly. A fresh connection starts from now: the page it serves was
    rendered from the database a moment ago."""
    client = async_client()
    try:
        positions = positions_from(last_event_id, len(keys))
        if positions is None:
            positions = []
            for key in keys:
                newest = cast(StreamEntries, await client.xrevrange(key, count=1))
                positions.append(newest[0][0].decode() if newest else STREAM_ID_START)
        yield "retry: 3000\n\n"
        while True:
            found = cast(
                XReadReply,
                await client.xread(dict(zip(keys, positions, strict=True)), block=BLOCK_MS),
            )
            if not found:
                yield ": keep-alive\n\n"
                continue
            for stream, entries in found:
                index = keys.index(stream.decode())
                for entry_id, fields in entries:
                    positions[index] = entry_id.decode()
                    kind = fields[b"kind"].decode()
                    data = render(kind, json.loads(fields[b"text"]))
                    yield sse_event(kind, data, "_".join(positions))
    except (RedisError, OSError):
        return  # the browser reconnects after `retry`, with Last-Event-ID
    finally:
        await client.aclose()


def sse_response(events: AsyncIterable[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response
