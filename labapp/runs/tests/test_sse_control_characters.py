"""A run's output cannot forge server-sent events: CR, CRLF, NUL and lines that look
like SSE fields arrive as data of the one event that carries them.

The stream is read as a browser reads it: the parser below follows the SSE
specification (WHATWG HTML, "Parsing an event stream"), where CR alone ends a line.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from labapp.live.sse import sse_event
from labapp.live.streams import RunStreamWriter, stream_key, sync_client
from labapp.runs.sse import RunEvents
from labapp.shell.execute import ToolPaths, execute
from labapp.shell.parse import parse_command

HOSTILE_OUTPUT = (
    "progress 10%\rprogress 99%\r\nline\x00with NUL\nevent: done\ndata: forged\n\nid: 9-9\r"
)


@dataclass
class Event:
    type: str
    data: str
    id: str


def parse_stream(text: str) -> list[Event]:
    """Events as a browser's EventSource dispatches them."""
    events: list[Event] = []
    kind, data, last_id = "", "", ""
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if data:
                events.append(Event(kind or "message", data.removesuffix("\n"), last_id))
            kind, data = "", ""
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            kind = value
        elif field == "data":
            data += value + "\n"
        elif field == "id" and "\x00" not in value:
            last_id = value
    return events


def as_browser_sees(text: str) -> str:
    """CR and CRLF arrive as LF: the data lines are joined with LF."""
    return re.sub(r"\r\n|\r", "\n", text)


def test_any_output_is_the_data_of_one_event() -> None:
    stream = sse_event("stdout", HOSTILE_OUTPUT, "5-1")
    assert parse_stream(stream) == [Event("stdout", as_browser_sees(HOSTILE_OUTPUT), "5-1")]


def test_an_event_type_or_id_of_more_than_one_line_is_a_bug() -> None:
    with pytest.raises(ValueError, match="one line"):
        sse_event("stdout\rdone", "x")
    with pytest.raises(ValueError, match="one line"):
        sse_event("stdout", "x", "1-1\nevent: done")


# --- a run's stream, end to end: program -> executor -> Redis -> the SSE view ---------


def run_hostile_program(tmp_path: Path, run_id: int) -> None:
    """A program prints the hostile output; the executor streams it to Redis as the
    worker does, then the run ends."""
    program = tmp_path / "kubectl"
    program.write_text(f"#!/usr/bin/python3 -S\nimport sys\nsys.stdout.write({HOSTILE_OUTPUT!r})\n")
    program.chmod(0o755)
    workdir = tmp_path / "work"
    workdir.mkdir()
    writer = RunStreamWriter(run_id)
    result = execute(
        parse_command("kubectl get pods"),
        tools=ToolPaths(kubectl=program, yq=program),
        kubeconfig=tmp_path / "kubeconfig",
        workdir=workdir,
        on_chunk=writer.chunk,
    )
    assert (result.exit_code, result.stdout) == (0, HOSTILE_OUTPUT)
    writer.done(
        {"run": run_id, "state": "succeeded", "exit_code": 0, "error": "", "complete": True}
    )
    assert not writer.failed


def read_all(events: RunEvents) -> str:
    """The whole stream, read in a thread of its own (an earlier browser test may
    have left an event loop running in this one)."""

    async def collect() -> str:
        return "".join([event async for event in events])

    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, collect()).result()


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "html"])
def test_a_runs_hostile_output_reaches_the_browser_as_data(
    redis_server, settings, tmp_path: Path, as_json: bool
) -> None:
    settings.REDIS_URL = redis_server.url
    run_id = 900_000 + as_json
    sync_client().delete(stream_key(run_id))  # from an earlier session's run of this test
    run_hostile_program(tmp_path, run_id)
    events = parse_stream(read_all(RunEvents(run_id, after="0-0", as_json=as_json)))
    assert [event.type for event in events] == ["stdout", "done"]
    stdout, done = events
    if as_json:
        assert json.loads(stdout.data) == HOSTILE_OUTPUT  # exact: JSON escapes CR and NUL
        assert json.loads(done.data)["state"] == "succeeded"
    else:
        shown = re.fullmatch(r'<span class="chunk">(.*)</span>', stdout.data, re.DOTALL)
        assert shown is not None
        assert html.unescape(shown.group(1)) == as_browser_sees(HOSTILE_OUTPUT)
        assert 'data-state="succeeded"' in done.data
