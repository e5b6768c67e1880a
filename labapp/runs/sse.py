"""A run's live output as server-sent events; the database answers once the run is over."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import cast

from asgiref.sync import sync_to_async
from django.template.loader import render_to_string
from django.utils.html import escape
from redis.exceptions import RedisError

from labapp.live.sse import BLOCK_MS, STREAM_ID_START, async_client, sse_event
from labapp.live.streams import XReadReply, stream_key
from labapp.runs.models import CommandRun
from labapp.runs.selectors import run_snapshot


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
            return render_to_string("runs/_run_done.html", {"done": payload, "streamed": True})
        if self.as_json:
            return json.dumps(text)
        return f'<span class="chunk">{escape(text)}</span>'

    async def __aiter__(self) -> AsyncIterator[str]:
        client = async_client()
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
                    found = cast(
                        XReadReply,
                        await client.xread({key: self.after}, block=BLOCK_MS, count=200),
                    )
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
            yield sse_event(
                "error",
                self.render("stderr", f"live output is unavailable (Redis: {lost}); retrying"),
            )

    async def _replay(self, run: CommandRun) -> AsyncIterator[str]:
        # A client resuming mid-stream has some of the output already, and the
        # DB cannot say which part: send only the end, which says where to look.
        if self.after == STREAM_ID_START:
            for kind, text in (("stdout", run.stdout), ("stderr", run.stderr)):
                if text:
                    yield sse_event(kind, self.render(kind, text))
        payload = run.done_payload(complete=self.after == STREAM_ID_START)
        yield sse_event("done", self.render("done", json.dumps(payload)))
