"""One simulated learner in a workshop, driving labapp over HTTP as their browser
would: the join page and its static files, the lab page's live channel (and the
refresh each "progress" event triggers), every run's output stream read to its
`done` event, and "Check again" when a step does not tick.

A learner thinks 10-30 s before each command, and types it into the command box
as often as they click its Run button. Everything they wait for is recorded in
their `Journey`; a bench counts failures, it does not stop on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

STEP_STATE = re.compile(r'<section class="step step-(\w+)[^"]*" id="step-([\w-]+)"')
STEP_COMMAND = re.compile(
    r'name="command" value="([^"]*)"><input type="hidden" name="step" value="([^"]*)"'
)
RUN_PANEL = re.compile(r'id="run-(\d+)"')
STREAM_URL = re.compile(r'sse-connect="(/runs/\d+/stream/[^"]*)"')
RUN_DONE_STATE = re.compile(r'class="run-done" data-state="(\w+)"')
ASSETS = re.compile(r'<(?:link rel="stylesheet" href|script src)="(/static/[^"]+)"')
SANDBOX_URL = re.compile(r'action="/sandboxes/([a-z0-9]+)/runs/"')
OUTPUT_LOST = "Some live output was lost"
STEP_TICK_WAIT_S = 45.0  # after a step's last command, before clicking "Check again"


def kind_of(command: str) -> str:
    """A command's type, for comparing it with bare kubectl running the same one:
    "apply -k", "kustomize", "get", "get | yq" (a get piped into yq) or "write"."""
    words = command.split()
    if "apply" in words and "-k" in words:
        return "apply -k"
    namespaces = {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-n", "--namespace")}
    verb = next((w for w in words[1:] if not w.startswith("-") and w not in namespaces), "")
    if verb == "get":
        return "get | yq" if "|" in words else "get"
    return verb if verb == "kustomize" else "write"


@dataclass
class RunSample:
    command: str
    kind: str  # see kind_of
    typed: bool  # typed into the command box (no step), or its Run button
    first_byte_s: float | None
    done_s: float
    state: str
    at: float  # monotonic time the click happened


@dataclass
class Journey:
    number: int
    arrived_at: float = 0.0
    ready_s: float | None = None
    runs: list[RunSample] = field(default_factory=list)
    tick_s: list[float] = field(default_factory=list)  # a step's last run done -> passed
    rechecks: int = 0
    completed_at: float | None = None
    errors: list[str] = field(default_factory=list)
    requests: int = 0

    def error(self, message: str) -> None:
        self.errors.append(f"learner {self.number}: {message}")


class Browser:
    """A learner's browser: one cookie jar, one lab page, its live channel."""

    def __init__(self, base_url: str, journey: Journey, lab_id: str) -> None:
        self.journey = journey
        self.lab_id = lab_id
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=120,
            follow_redirects=True,
            event_hooks={"request": [self._count]},
        )
        self.cached: set[str] = set()
        self.states: dict[str, str] = {}
        self.changed = asyncio.Event()
        self.channel: asyncio.Task[None] | None = None
        self.slug = ""
        self.steps: list[tuple[str, list[str]]] = []

    async def _count(self, request: httpx.Request) -> None:
        self.journey.requests += 1

    @property
    def csrf(self) -> str:
        return self.http.cookies["csrftoken"]

    async def page(self, path: str, **kwargs: Any) -> httpx.Response:
        """A full page, and the static files the browser has not cached yet."""
        response = await self.http.get(path, **kwargs)
        self._expect(response, path)
        for asset in ASSETS.findall(response.text):
            if asset not in self.cached:
                self.cached.add(asset)
                self._expect(await self.http.get(asset), asset)
        return response

    def _expect(self, response: httpx.Response, what: str, codes: tuple[int, ...] = (200,)) -> None:
        if response.status_code not in codes:
            raise RuntimeError(f"{what}: HTTP {response.status_code}")

    async def join(self, code: str) -> None:
        await self.page(f"/join/{code}/")
        answer = await self.http.post(
            "/join/",
            data={"code": code, "name": f"Learner {self.journey.number}"},
            headers={"X-CSRFToken": self.csrf},
        )
        self._expect(answer, "join")
        await self._assets(answer.text)

    async def _assets(self, text: str) -> None:
        for asset in ASSETS.findall(text):
            if asset not in self.cached:
                self.cached.add(asset)
                self._expect(await self.http.get(asset), asset)

    async def begin(self) -> None:
        """Click "Start" and wait until the page shows a ready sandbox."""
        clicked = time.monotonic()
        answer = await self.http.post(
            f"/labs/{self.lab_id}/begin/", headers={"X-CSRFToken": self.csrf}
        )
        self._expect(answer, "begin")
        text = answer.text
        while "sandbox sandbox-ready" not in text:
            if "sandbox sandbox-failed" in text:
                raise RuntimeError("the sandbox failed")
            if time.monotonic() - clicked > 600:
                raise TimeoutError("no sandbox after 600 s")
            await asyncio.sleep(2)  # the page polls every 2 s
            status = await self.http.get(
                f"/labs/{self.lab_id}/sandbox/?was=provisioning", headers={"HX-Request": "true"}
            )
            self._expect(status, "sandbox status", (200, 286))
            if "sandbox sandbox-ready" in status.text:
                text = (await self.page(f"/labs/{self.lab_id}/")).text  # HX-Refresh
        self.journey.ready_s = time.monotonic() - clicked
        await self._assets(text)
        self._read_page(text)
        self.channel = asyncio.create_task(self._listen())

    def _read_page(self, text: str) -> None:
        found = SANDBOX_URL.search(text)
        if not found:
            raise RuntimeError("no run form on the lab page")
        self.slug = found.group(1)
        by_step: dict[str, list[str]] = {}
        for command, step in STEP_COMMAND.findall(text):
            command = html.unescape(command)
            if " exec " not in command:  # needs real containers; simulated nodes here
                by_step.setdefault(step, []).append(command)
        self.states = {step: state for state, step in STEP_STATE.findall(text)}
        self.steps = [(step, by_step.get(step, [])) for step in self.states]

    async def _listen(self) -> None:
        """The lab page's live channel: each "progress" fetches the fresh steps."""
        path = f"/labs/{self.lab_id}/events/"
        while True:
            try:
                async with self.http.stream("GET", path, timeout=None) as stream:
                    event = None
                    async for line in stream.aiter_lines():
                        if line.startswith("event: "):
                            event = line[7:]
                        elif line.startswith("data: ") and event == "progress":
                            await self.refresh()
            except (httpx.HTTPError, RuntimeError) as exc:
                self.journey.error(f"live channel: {type(exc).__name__}: {exc}")
                await asyncio.sleep(3)  # EventSource reconnects after ~3 s

    async def refresh(self) -> None:
        answer = await self.http.get(
            f"/labs/{self.lab_id}/refresh/", headers={"HX-Request": "true"}
        )
        self._expect(answer, "refresh")
        self.states.update({step: state for state, step in STEP_STATE.findall(answer.text)})
        self.changed.set()

    async def run(self, command: str, step: str, *, typed: bool) -> RunSample:
        """Post a command and read its output stream to the end, as the panel does."""
        form = {"command": command} if typed else {"command": command, "step": step}
        clicked = time.monotonic()
        posted = await self.http.post(
            f"/sandboxes/{self.slug}/runs/",
            data=form,
            headers={"X-CSRFToken": self.csrf, "HX-Request": "true"},
        )
        self._expect(posted, f"POST {command!r}", (202,))
        stream_url = STREAM_URL.search(posted.text)
        run_id = RUN_PANEL.search(posted.text)
        if not (stream_url and run_id):
            raise RuntimeError(f"no run panel for {command!r}")
        first: float | None = None
        async with self.http.stream("GET", html.unescape(stream_url.group(1))) as stream:
            event, data = None, []
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                    if event in ("stdout", "stderr") and first is None:
                        first = time.monotonic() - clicked
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "":
                    if event == "done":
                        break
                    event, data = None, []
        done_html = "\n".join(data)
        found = RUN_DONE_STATE.search(done_html)
        state = found.group(1) if found and event == "done" else "no done event"
        if OUTPUT_LOST in done_html:  # the panel loads the stored result
            self._expect(await self.http.get(f"/runs/{run_id.group(1)}/"), "run detail")
        sample = RunSample(
            command=command,
            kind=kind_of(command),
            typed=typed,
            first_byte_s=first,
            done_s=time.monotonic() - clicked,
            state=state,
            at=clicked,
        )
        self.journey.runs.append(sample)
        if state != "succeeded":
            self.journey.error(f"run {run_id.group(1)} {command!r} ended {state}")
        return sample

    async def wait_passed(self, step: str, since: float) -> bool:
        """Wait for the step to tick; click "Check again" once if it does not."""
        for attempt in range(2):
            deadline = time.monotonic() + STEP_TICK_WAIT_S
            while self.states.get(step) != "passed":
                self.changed.clear()
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self.changed.wait(), timeout=left)
                except TimeoutError:
                    break
            if self.states.get(step) == "passed":
                self.journey.tick_s.append(time.monotonic() - since)
                return True
            if attempt == 0:
                self.journey.rechecks += 1
                answer = await self.http.post(
                    f"/labs/{self.lab_id}/steps/{step}/check/",
                    headers={"X-CSRFToken": self.csrf, "HX-Request": "true"},
                )
                self._expect(answer, "check again")
                await self.refresh()
        return False

    async def close(self) -> None:
        if self.channel:
            self.channel.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.channel
        await self.http.aclose()


async def think(between: tuple[float, float]) -> None:
    await asyncio.sleep(random.uniform(*between))


async def attend(
    browser: Browser,
    code: str,
    *,
    arrive_after: float,
    think_s: tuple[float, float],
    typed_share: float,
    stay_until: float,
) -> None:
    """One learner's session: arrive, join, start, do every step, then (for a soak)
    keep re-running the lab's commands at the same pace until `stay_until`."""
    journey = browser.journey
    await asyncio.sleep(arrive_after)
    journey.arrived_at = time.monotonic()
    try:
        await browser.join(code)
        await think((2.0, 5.0))  # reads the workshop page, clicks the lab
        await browser.begin()
        for step, commands in browser.steps:
            last_done = time.monotonic()
            for command in commands:
                await think(think_s)
                await browser.run(command, step, typed=random.random() < typed_share)
                last_done = time.monotonic()
            if not await browser.wait_passed(step, last_done):
                journey.error(f"stuck on step {step}: {json.dumps(browser.states)}")
                return
        journey.completed_at = time.monotonic()
        everything = [(c, s) for s, commands in browser.steps for c in commands]
        while time.monotonic() + think_s[1] < stay_until:
            command, step = random.choice(everything)
            await think(think_s)
            await browser.run(command, step, typed=random.random() < typed_share)
    except Exception as exc:  # a bench counts failures; it does not stop on one
        journey.error(f"{type(exc).__name__}: {exc}")


class Dashboard:
    """The instructor's browser on the workshop's live dashboard: the board page,
    its channel, a fresh matrix on each "progress" (htmx's `throttle:1s`: at most
    one a second, the rest dropped) and the pool panel every 10 s."""

    def __init__(self, base_url: str, session_cookie: str, code: str, lab_id: str) -> None:
        self.code, self.lab_id = code, lab_id
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=120, cookies={"sessionid": session_cookie}
        )
        self.board_s: list[float] = []  # one matrix fetch, request to last byte
        self.errors: list[str] = []
        self.requests = 0

    async def _get(self, path: str) -> None:
        started = time.monotonic()
        answer = await self.http.get(path, headers={"HX-Request": "true"})
        self.requests += 1
        if answer.status_code != 200:
            self.errors.append(f"dashboard {path}: HTTP {answer.status_code}")
        elif "part=pool" not in path:
            self.board_s.append(time.monotonic() - started)

    async def watch(self, stop: asyncio.Event) -> None:
        board = f"/teach/{self.code}/?lab={self.lab_id}"
        page = await self.http.get(f"/teach/{self.code}/")
        self.requests += 1
        if page.status_code != 200:
            self.errors.append(f"dashboard page: HTTP {page.status_code}")
            return
        tasks = [
            asyncio.create_task(self._listen(board)),
            asyncio.create_task(self._poll_pool(f"{board}&part=pool")),
        ]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.http.aclose()

    async def _listen(self, board: str) -> None:
        quiet_until = 0.0
        while True:
            try:
                async with self.http.stream(
                    "GET", f"/teach/{self.code}/events/", timeout=None
                ) as stream:
                    async for line in stream.aiter_lines():
                        if line == "event: progress" and time.monotonic() >= quiet_until:
                            quiet_until = time.monotonic() + 1.0
                            await self._get(board)
            except httpx.HTTPError as exc:
                self.errors.append(f"dashboard channel: {type(exc).__name__}: {exc}")
                await asyncio.sleep(3)

    async def _poll_pool(self, path: str) -> None:
        while True:
            await asyncio.sleep(10)
            await self._get(path)
