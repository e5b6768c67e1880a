"""A workshop's broadcast channel: the instructor writes, every learner's page listens."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from django.template.loader import render_to_string
from redis.exceptions import RedisError

from labapp.live.sse import BLOCK_MS, STREAM_ID_START, async_client, sse_event
from labapp.live.streams import sync_client, workshop_events_key


def broadcast_publish(*, workshop_id: int, kind: str, payload: dict) -> None:
    sync_client().xadd(
        workshop_events_key(workshop_id),
        {"kind": kind, "text": json.dumps(payload)},
        maxlen=100,
        approximate=True,
    )


async def workshop_events(workshop_id: int, *, after: str) -> AsyncIterator[str]:
    """Instructor broadcasts for one workshop, for as long as the page is open."""
    client = async_client()
    key = workshop_events_key(workshop_id)
    try:
        yield "retry: 3000\n\n"
        if after == STREAM_ID_START:
            # Only what comes from now on; the page already shows the current message.
            newest = await client.xrevrange(key, count=1)
            after = newest[0][0].decode() if newest else STREAM_ID_START
        while True:
            found = await client.xread({key: after}, block=BLOCK_MS, count=20)
            if not found:
                yield ": keep-alive\n\n"
                continue
            for entry_id, fields in found[0][1]:
                after = entry_id.decode()
                payload = json.loads(fields[b"text"])
                html = render_to_string("learning/_broadcast.html", payload)
                yield sse_event(fields[b"kind"].decode(), html, after)
    except (RedisError, OSError):
        return  # the browser reconnects after `retry`, with Last-Event-ID
    finally:
        await client.aclose()
