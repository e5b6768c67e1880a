"""Relay a run's Redis stream as server-sent events, resumable by Last-Event-ID."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.html import escape
from redis.exceptions import RedisError

from labapp.runner.models import CommandRun
from labapp.runner.selectors import run_snapshot
from labapp.runner.streams import stream_key, workshop_events_key

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


class RunEvents:
    def __init__(self, run_id: int, *, after: str, as_json: bool) -> None:
        self.run_id = run_id
        self.after = after
        self.as_json = as_json

    def render(self, kind: str, text: str) -> str:
        if kind == "done":
            payload = json.loads(text)
            if self.as_json:
                return json.dumps(payload)
            return render_to_string("runner/_run_done.html", {"done": payload, "streamed": True})
        if self.as_json:
            return json.dumps(text)
        return f'<span class="chunk">{escape(text)}</span>'

    async def __aiter__(self) -> AsyncIterator[str]:
        # The read timeout must outlast the blocking XREAD, or every idle
        # wait would look like a Redis failure.
        client = aioredis.from_url(settings.REDIS_URL, socket_connect_timeout=2,
                                   socket_timeout=BLOCK_MS / 1000 + 10)
        key = stream_key(self.run_id)
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    # No live stream (refused, expired, or lost with a Redis
                    # restart) and a finished run: the database has the record.
                    if not await client.exists(key) and (run := await self._finished_run()):
                        async for event in self._replay(run):
                            yield event
                        return
                    found = await client.xread({key: self.after}, block=BLOCK_MS, count=200)
                except (RedisError, OSError) as exc:
                    async for event in self._from_database(lost=exc):
                        yield event
                    return
                if not found:
                    yield ": keep-alive\n\n"
                    continue
                for entry_id, fields in found[0][1]:
                    self.after = entry_id.decode()
                    kind, text = fields[b"kind"].decode(), fields[b"text"].decode()
                    yield sse_event(kind, self.render(kind, text), self.after)
                    if kind == "done":
                        return
        finally:
            await client.aclose()

    async def _finished_run(self) -> CommandRun | None:
        run = await sync_to_async(run_snapshot)(run_id=self.run_id)
        return run if run.is_final else None

    async def _from_database(self, *, lost: Exception) -> AsyncIterator[str]:
        run = await sync_to_async(run_snapshot)(run_id=self.run_id)
        if run.is_final:
            async for event in self._replay(run):
                yield event
        else:
            # The browser's EventSource reconnects (retry: 2000) with Last-Event-ID.
            yield sse_event("error", self.render(
                "stderr", f"live output is unavailable (Redis: {lost}); retrying"))

    async def _replay(self, run: CommandRun) -> AsyncIterator[str]:
        # A client resuming mid-stream has some of the output already, and the
        # DB cannot say which part: send only the end, which says where to look.
        if self.after == STREAM_ID_START:
            for kind, text in (("stdout", run.stdout), ("stderr", run.stderr)):
                if text:
                    yield sse_event(kind, self.render(kind, text))
        payload = run.done_payload(complete=self.after == STREAM_ID_START)
        yield sse_event("done", self.render("done", json.dumps(payload)))


async def workshop_events(workshop_id: int, *, after: str) -> AsyncIterator[str]:
    """Instructor broadcasts for one workshop, for as long as the page is open."""
    client = aioredis.from_url(settings.REDIS_URL, socket_connect_timeout=2,
                               socket_timeout=BLOCK_MS / 1000 + 10)
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
