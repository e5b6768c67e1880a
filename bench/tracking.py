"""Step tracking, measured: how soon a cluster change ticks the learner's page,
with 1 learner and with 100; and how long a run holds its Celery slot after
kubectl exits, before (the worker polled the step's checks inside the slot)
and after (the run ends, the tracker judges), side by side in one run.

    .venv/bin/python bench/tracking.py [--learners 1,100] [--json bench/results/tracking.json]

1. Change to tick. Learners of the test-only lab `tiny` stand on its step
   `configure` (a ConfigMap field and a Service; the Service is made for them).
   Each holds the lab page's SSE channel (/labs/tiny/events/) open over HTTP.
   At a human pace (100 changes over ~60 s, random order) the admin patches
   each learner's ConfigMap; t0 is when the patch call returns, the tick is the
   "progress" event arriving on that learner's channel. The step must also have
   passed in the database. A level with few learners repeats rounds (the record
   and the ConfigMap put back between rounds) to have enough samples.
2. A run's worker slot. The same commands, on the same sandboxes:
   after:  posted over HTTP to the real worker; the slot is released when the
           worker logs "Task ... succeeded" (kubectl's exit lies between the
           run's started_at + duration and its finished_at, so two bounds);
           and in-process around `attempt_execute`, exactly (kubectl's exit is
           when the shell returns).
   before: in-process, the old worker's way: run the command, then
           `evaluate_step(..., wait=True)` with admin credentials; the slot
           was held for that evaluation.

Self-contained (its own control plane, Redis, workers, tracker, uvicorn in a
temporary folder). Figures, not a timed test: the machine is shared, so the
load average and every process's CPU time are written beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import datetime as dt
import functools
import json
import math
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from harness import ROOT, Bench, bench_stack, session_for, summary
from probes import (
    add_cpu,
    cpu_between,
    generator_children_cpu,
    generator_cpu,
    group_cpu,
    load_average,
    machine_busy,
    other_heavy_processes,
    proc_cpu,
)

if TYPE_CHECKING:  # imported for real only after django.setup()
    import httpx
    from kubernetes import client as k8s

    from labapp.sandboxes.models import Sandbox
    from labapp.shell.execute import RunResult

LAB = "tiny"
TEST_LABS = ROOT / "tests" / "fixtures" / "labs"
SHIPPED_LABS = ROOT / "lab_steps"
RESULTS = ROOT / "bench" / "results"
TICK_TIMEOUT = 30.0  # after the last change of a round
MIN_SAMPLES = 20  # a level with fewer learners repeats rounds until it has these
GOAL_TICK_P95_S = 0.5  # the issue: p95 <= 500 ms at 100 learners
GOAL_SLOT_S = 0.05  # the issue: the slot is released within 50 ms of kubectl's exit
SUCCEEDED = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}): INFO/[^\]]*\] "
    r"Task labapp\.learning\.tasks\.run_attempt\[[^\]]+\] succeeded in ([0-9.e-]+)s"
)


# -- CPU and load ------------------------------------------------------------------


@dataclass
class CpuProbe:
    """CPU seconds of the processes that share the machine, sampled at will."""

    probes: dict[str, Callable[[], float]]

    @classmethod
    def for_bench(cls, bench: Bench) -> CpuProbe:
        def by_args(word: str) -> int:
            return next(p.pid for p in bench.stack.processes if word in str(p.args))

        tracker, uvicorn = by_args("tracker"), by_args("uvicorn")
        interactive, provisioning = by_args("bench0@"), by_args("provisioning@")

        probes: dict[str, Callable[[], float]] = {
            "generator": generator_cpu,
            "generator_kubectl": generator_children_cpu,
            "tracker": lambda: proc_cpu(tracker),
            "uvicorn": lambda: proc_cpu(uvicorn),
            "worker_interactive": lambda: group_cpu(interactive),
            "worker_provisioning": lambda: group_cpu(provisioning),
        }
        if bench.redis.process is not None:
            redis_pid = bench.redis.process.pid
            probes["redis"] = lambda: proc_cpu(redis_pid)
        for component in bench.cluster.status():
            if component.pid:
                probes[component.name] = functools.partial(proc_cpu, component.pid)
        return cls(probes)

    def sample(self) -> dict[str, float]:
        busy, total = machine_busy()
        return {
            **{name: probe() for name, probe in self.probes.items()},
            "_wall": time.monotonic(),
            "_machine_busy": busy,
            "_machine_total": total,
        }


# -- learners ------------------------------------------------------------------------


@dataclass
class Learner:
    number: int
    user_id: int
    progress_id: int
    sandbox_id: int
    slug: str
    namespace: str  # the lab's `shop` namespace
    namespaces: dict[str, str]
    cookie: str = ""  # sessionid
    fresh: bool = True  # still on `configure`'s first round


def core_api() -> k8s.CoreV1Api:
    from kubernetes import client as k8s

    from labapp.clusters.client import api_client
    from labapp.clusters.config import admin_kubeconfig

    return k8s.CoreV1Api(api_client(admin_kubeconfig()))


def provision(prefix: str, numbers: range, *, window: int = 4) -> tuple[list[Learner], dict]:
    """Start the lab for new learners, at most `window` sandboxes in flight (the
    provisioning worker takes 2 at a time), and wait until each is READY."""
    from django.contrib.auth.models import User

    from labapp.learning.services import lab_start
    from labapp.sandboxes.models import Sandbox

    todo = list(numbers)
    in_flight: dict[int, tuple[int, int]] = {}  # sandbox id -> (number, progress id)
    ready: list[Learner] = []
    failed: list[str] = []
    seconds: list[float] = []
    started = time.monotonic()
    last_note = started
    while todo or in_flight:
        while todo and len(in_flight) < window:
            number = todo.pop(0)
            user = User.objects.create_user(f"{prefix}{number}")
            progress = lab_start(user=user, lab_id=LAB)
            sandbox = Sandbox.objects.get(owner=user, lab_id=LAB)
            in_flight[sandbox.id] = (number, progress.id)
        for sandbox in Sandbox.objects.filter(id__in=list(in_flight)).exclude(
            state=Sandbox.State.PROVISIONING
        ):
            number, progress_id = in_flight.pop(sandbox.id)
            if sandbox.state != Sandbox.State.READY:
                failed.append(f"{sandbox.slug}: {sandbox.state}: {sandbox.status_message}")
                continue
            owner = sandbox.owner
            assert owner is not None  # made for a learner, never pooled
            ready.append(
                Learner(
                    number=number,
                    user_id=owner.id,
                    progress_id=progress_id,
                    sandbox_id=sandbox.id,
                    slug=sandbox.slug,
                    namespace=sandbox.namespaces["shop"],
                    namespaces=dict(sandbox.namespaces),
                    cookie=session_for(owner),
                )
            )
            if sandbox.ready_at:
                seconds.append((sandbox.ready_at - sandbox.created_at).total_seconds())
        if time.monotonic() - started > 1800:
            raise TimeoutError(f"provisioning: {len(in_flight)} sandboxes still not ready")
        if time.monotonic() - last_note > 30:
            last_note = time.monotonic()
            print(f"    ... {len(ready)} ready, {len(in_flight) + len(todo)} to go", flush=True)
        time.sleep(0.3)
    ready.sort(key=lambda learner: learner.number)
    return ready, {
        "count": len(numbers),
        "wall_s": round(time.monotonic() - started, 1),
        "start_to_ready_s": summary(seconds),
        "failed": failed,
    }


def wait_judged(learners: list[Learner], timeout: float = 120) -> list[int]:
    """Wait until the tracker has judged `configure` for each (its greeting check
    fails; the step stays in progress, as only a learner's attempt fails a step);
    returns the learners it did not judge in time."""
    from labapp.learning.models import StepProgress

    ids = {learner.progress_id for learner in learners}
    deadline = time.monotonic() + timeout
    while True:
        judged = {
            progress_id
            for progress_id, state, outcomes in StepProgress.objects.filter(
                lab_progress_id__in=ids, step_id="configure"
            ).values_list("lab_progress_id", "state", "last_outcomes")
            if state != StepProgress.State.PASSED
            and any(outcome.get("status") == "fail" for outcome in outcomes or [])
        }
        if judged == ids or time.monotonic() > deadline:
            return sorted(
                learner.number for learner in learners if learner.progress_id not in judged
            )
        time.sleep(0.2)


def prepare(learners: list[Learner]) -> dict[str, Any]:
    """Put each learner on `configure` with its Service made and the greeting not
    set, judged by the tracker (the greeting fails): ready for one change each."""
    from django.db import transaction
    from django.utils import timezone
    from kubernetes import client as k8s

    from labapp.catalog.registry import get_lab
    from labapp.checks.outcome import Outcome, Status
    from labapp.learning.models import LabProgress, StepProgress
    from labapp.learning.services import progress_record_outcomes
    from labapp.live.streams import tracker_notify

    core = core_api()
    started = time.monotonic()
    fresh = [learner for learner in learners if learner.fresh]
    again = [learner for learner in learners if not learner.fresh]
    label_step = get_lab(LAB).step("label-namespace")
    service = k8s.V1Service(  # as shop/configured/service.yaml has it
        metadata=k8s.V1ObjectMeta(name="shop"),
        spec=k8s.V1ServiceSpec(
            selector={"app.kubernetes.io/name": "shop"},
            ports=[k8s.V1ServicePort(name="http", port=80, target_port=8080)],
        ),
    )
    for learner in fresh:
        # The first step, as if done: its checks all passed (the namespace stays
        # unlabelled, which `configure` does not read).
        progress_record_outcomes(
            user=LabProgress.objects.get(id=learner.progress_id).user,
            lab_id=LAB,
            step_id=label_step.id,
            outcomes=[Outcome(Status.PASS, check.display_title()) for check in label_step.checks],
            attempt=False,
        )
        core.create_namespaced_service(learner.namespace, service)  # the tracker judges
        learner.fresh = False
    if again:
        # Another round for learners who passed `configure`: the greeting back to
        # "hi" first (the tracker judges their current step, recycle-pods, and
        # settles), then the record back to `configure`, then one judgement.
        for learner in again:
            core.patch_namespaced_config_map(
                "shop", learner.namespace, {"data": {"GREETING": "hi"}}
            )
        time.sleep(1.5)
        now = timezone.now()
        with transaction.atomic():
            ids = [learner.progress_id for learner in again]
            StepProgress.objects.filter(lab_progress_id__in=ids, step_id="configure").update(
                state=StepProgress.State.WORKING,
                started_at=now,
                passed_at=None,
                failed_in_a_row=0,
                last_outcomes=[],
            )
            StepProgress.objects.filter(lab_progress_id__in=ids, step_id="recycle-pods").update(
                state=StepProgress.State.NOT_STARTED,
                started_at=None,
                passed_at=None,
                failed_in_a_row=0,
                last_outcomes=[],
            )
            LabProgress.objects.filter(id__in=ids).update(
                current_step_id="configure", completed_at=None
            )
        for learner in again:
            tracker_notify(sandbox_id=learner.sandbox_id)
    missing = wait_judged(learners)
    time.sleep(1.0)  # let the last announcements out before the channels open
    return {"s": round(time.monotonic() - started, 1), "not_judged": missing}


# -- change to tick --------------------------------------------------------------------


@dataclass
class Channel:
    learner: Learner
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    ticked: asyncio.Event = field(default_factory=asyncio.Event)
    armed_at: float | None = None  # just before the patch call
    t0: float | None = None  # when the patch call returned
    tick: float | None = None
    # The same two moments on the wall clock, and when the tracker published the
    # tick (the Redis stream id of the event, in ms, which the SSE id carries).
    t0_wall: float | None = None
    tick_wall: float | None = None
    published: float | None = None
    events: list[tuple[float, dict]] = field(default_factory=list)
    error: str = ""


async def listen(base_url: str, channel: Channel) -> None:
    import httpx

    async with httpx.AsyncClient(
        base_url=base_url,
        cookies={"sessionid": channel.learner.cookie},
        timeout=httpx.Timeout(10, read=60),
    ) as http:
        try:
            async with http.stream("GET", f"/labs/{LAB}/events/") as response:
                if response.status_code != 200:
                    channel.error = f"HTTP {response.status_code}"
                    channel.connected.set()
                    return
                kind, event_id = "", ""
                async for line in response.aiter_lines():
                    now, wall = time.monotonic(), time.time()
                    if line.startswith("retry:"):
                        channel.connected.set()
                    elif line.startswith("id: "):
                        event_id = line[len("id: ") :]
                    elif line.startswith("event: "):
                        kind = line[len("event: ") :]
                    elif line.startswith("data: ") and kind == "progress":
                        payload = json.loads(line[len("data: ") :])
                        channel.events.append((now, payload))
                        if (
                            channel.armed_at is not None
                            and channel.tick is None
                            and payload.get("progress") == channel.learner.progress_id
                            and payload.get("step") != "configure"  # moved on: the tick
                        ):
                            channel.tick, channel.tick_wall = now, wall
                            stream_id = event_id.split("_")[0]  # the progress stream's
                            if stream_id:
                                channel.published = int(stream_id.split("-")[0]) / 1000
                            channel.ticked.set()
                    elif not line:
                        kind, event_id = "", ""
        except httpx.HTTPError as exc:
            channel.error = f"{type(exc).__name__}: {exc}"
            channel.connected.set()


def patch_greeting(namespace: str) -> tuple[float, float]:
    core_api().patch_namespaced_config_map("shop", namespace, {"data": {"GREETING": "hello"}})
    return time.monotonic(), time.time()


async def one_round(
    base_url: str, learners: list[Learner], spread: float, rng: random.Random
) -> list[Channel]:
    channels = [Channel(learner) for learner in learners]
    listeners = [asyncio.create_task(listen(base_url, channel)) for channel in channels]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(channel.connected.wait() for channel in channels)), timeout=60
        )
        await asyncio.sleep(0.5)
        order = channels[:]
        rng.shuffle(order)
        offsets = sorted(rng.uniform(0, spread) for _ in order)
        started = time.monotonic()

        async def change(channel: Channel, at: float) -> None:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            channel.armed_at = time.monotonic()
            channel.t0, channel.t0_wall = await asyncio.to_thread(
                patch_greeting, channel.learner.namespace
            )

        await asyncio.gather(
            *(change(c, at) for c, at in zip(order, offsets, strict=True) if not c.error)
        )
        pending = [c.ticked.wait() for c in channels if not c.error and c.tick is None]
        if pending:
            await asyncio.wait([asyncio.ensure_future(p) for p in pending], timeout=TICK_TIMEOUT)
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    return channels


def tracker_judged() -> int | None:
    from labapp.learning.tracker import tracker_status

    status = tracker_status()
    return int(status["judged"]) if status else None


def change_to_tick(
    bench: Bench,
    learners: list[Learner],
    *,
    spread: float,
    rng: random.Random,
    cpu: CpuProbe,
    min_samples: int = MIN_SAMPLES,
) -> dict[str, Any]:
    from labapp.learning.models import StepProgress

    rounds = max(1, math.ceil(min_samples / len(learners)))
    latencies: list[float] = []
    to_publish: list[float] = []  # change -> the tracker published (watch, debounce, judge)
    to_page: list[float] = []  # published -> on the page (Redis, uvicorn's relay, HTTP)
    missed: list[str] = []
    not_passed: list[int] = []
    extra_events = 0
    prep: list[dict] = []
    cpu_total: dict[str, Any] | None = None
    judged_before = tracker_judged()
    for number in range(rounds):
        prep.append(prepare(learners))
        before = cpu.sample()
        channels = asyncio.run(one_round(bench.url, learners, spread, rng))
        cpu_total = add_cpu(cpu_total, cpu_between(before, cpu.sample()))
        for channel in channels:
            if channel.tick is not None and channel.t0 is not None:
                latencies.append(channel.tick - channel.t0)
                if channel.published and channel.t0_wall and channel.tick_wall:
                    # Redis ids are whole milliseconds: the publish is in [id, id+1ms).
                    to_publish.append(channel.published + 0.0005 - channel.t0_wall)
                    to_page.append(channel.tick_wall - channel.published - 0.0005)
            else:
                missed.append(
                    f"round {number}: learner {channel.learner.number}: "
                    + (channel.error or "no tick")
                )
            extra_events += sum(
                1 for at, _ in channel.events if channel.armed_at and at >= channel.armed_at
            ) - (1 if channel.tick is not None else 0)
        passed = set(
            StepProgress.objects.filter(
                lab_progress_id__in=[learner.progress_id for learner in learners],
                step_id="configure",
                state=StepProgress.State.PASSED,
            ).values_list("lab_progress_id", flat=True)
        )
        not_passed += [learner.number for learner in learners if learner.progress_id not in passed]
        if rounds > 1:
            print(
                f"    round {number + 1}/{rounds}: "
                + ", ".join(
                    f"{(c.tick - c.t0) * 1000:.0f} ms" for c in channels if c.tick and c.t0
                ),
                flush=True,
            )
    time.sleep(6)  # the tracker's heartbeat, which carries its count, beats every 5 s
    judged_after = tracker_judged()
    return {
        "learners": len(learners),
        "rounds": rounds,
        "changes": len(learners) * rounds,
        "spread_s_per_round": round(spread, 1),
        "change_to_tick_s": {
            **summary(latencies, with_p99=True),
            "max": round(max(latencies), 4) if latencies else None,
            "min": round(min(latencies), 4) if latencies else None,
        },
        "change_to_published_s": summary(to_publish, with_p99=True),
        "published_to_page_s": summary(to_page, with_p99=True),
        "missed": missed,
        "step_not_passed_in_db": not_passed,
        "extra_progress_events": extra_events,
        # From the tracker's heartbeat: preparing the rounds included.
        "tracker_judgements_during_level": (judged_after - judged_before)
        if judged_before is not None and judged_after is not None
        else None,
        "prepare": prep,
        "cpu": cpu_total,
    }


# -- a run's worker slot -----------------------------------------------------------------


@dataclass
class SlotCase:
    name: str
    step: str
    command: str  # `{ns}`: the learner's shop namespace
    reps: int


def worker_successes(log: Path) -> list[tuple[float, float]]:
    """(epoch seconds, runtime) of each run_attempt the worker logged as succeeded.
    The worker's Django sets TZ to settings.TIME_ZONE (UTC), so its times are UTC."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = SUCCEEDED.match(line)
        if match:
            stamp = time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
            at = calendar.timegm(stamp) + int(match.group(2)) / 1000
            found.append((at, float(match.group(3))))
    return found


def post_run(http: httpx.Client, csrf: str, learner: Learner, command: str, step: str) -> int:
    from labapp.runs.models import CommandRun

    response = http.post(
        f"/sandboxes/{learner.slug}/runs/",
        data={"command": command, "step": step},
        headers={"X-CSRFToken": csrf, "HX-Request": "true"},
    )
    assert response.status_code == 202, (response.status_code, response.text[:500])
    found = re.search(r'id="run-(\d+)"', response.text)
    assert found, "no run in the response"
    run_id = int(found.group(1))
    deadline = time.monotonic() + 90
    while not CommandRun.objects.filter(id=run_id, finished_at__isnull=False).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not end")
        time.sleep(0.02)
    return run_id


def after_in_process(sandbox: Sandbox, command: str, step: str) -> tuple[float, str]:
    """The production path in this process: kubectl's exit is when the restricted
    shell returns; the slot ends when attempt_execute returns."""
    import labapp.runs.services as run_services
    from labapp.learning.attempts import attempt_execute
    from labapp.runs.services import run_start

    run = run_start(sandbox=sandbox, command=command, step_id=step)
    real = run_services.run_command_line
    exits: list[float] = []

    def timed(*args: Any, **kwargs: Any) -> RunResult:
        result = real(*args, **kwargs)
        exits.append(time.perf_counter())
        return result

    with mock.patch.object(run_services, "run_command_line", timed):
        finished = attempt_execute(run_id=run.id, worker="bench-in-process")
        released = time.perf_counter()
    assert exits, "the command did not run"
    return released - exits[0], finished.state if finished else "?"


def before_in_process(
    sandbox_fields: dict[str, Any], command: str, step: str
) -> tuple[float, float, list[str]]:
    """The old worker: run the command, then evaluate the step's checks in the same
    slot, polling (wait=True). Returns (evaluation s, kubectl s, statuses)."""
    from django.conf import settings

    from labapp.catalog.registry import get_lab
    from labapp.checks.base import RunOutput
    from labapp.checks.evaluate import evaluate_step
    from labapp.clusters.config import admin_kubeconfig
    from labapp.clusters.objects import ApiReader
    from labapp.clusters.tools import default_tools
    from labapp.shell.command import run_command_line

    began = time.perf_counter()
    result = run_command_line(
        command,
        tools=default_tools(),
        kubeconfig=sandbox_fields["kubeconfig"],
        workdir=sandbox_fields["workspace"],
        timeout=settings.RUN_TIMEOUT_SECONDS,
        output_cap=settings.RUN_OUTPUT_CAP_BYTES,
    )
    exited = time.perf_counter()
    outcomes = evaluate_step(
        get_lab(LAB).step(step).checks,
        namespaces=sandbox_fields["namespaces"],
        reader=ApiReader(admin_kubeconfig()),
        outputs=[RunOutput(result.stdout, result.stderr)],
        wait=True,
    )
    return time.perf_counter() - exited, exited - began, [o.status.value for o in outcomes]


def worker_slot(bench: Bench, learners: list[Learner], cases: list[SlotCase]) -> dict[str, Any]:
    import httpx

    from labapp.runs.models import CommandRun
    from labapp.sandboxes.models import Sandbox
    from labapp.sandboxes.services import sandbox_materialize, sandbox_refresh_token

    sessions = {}
    for learner in learners:
        http = httpx.Client(base_url=bench.url, timeout=60, cookies={"sessionid": learner.cookie})
        http.get("/")
        sessions[learner.number] = (http, http.cookies["csrftoken"])
    sandboxes = {}
    for learner in learners:
        sandbox = sandbox_refresh_token(sandbox=Sandbox.objects.get(id=learner.sandbox_id))
        sandbox_materialize(sandbox=sandbox)
        sandboxes[learner.number] = sandbox
    results: list[dict[str, Any]] = []
    runs_of: dict[str, list[int]] = {}
    for case in cases:
        http_runs: list[int] = []
        in_process: list[float] = []
        before: list[float] = []
        before_kubectl: list[float] = []
        before_statuses: dict[str, int] = {}
        for _ in range(case.reps):
            for learner in learners:
                command = case.command.format(ns=learner.namespace)
                http, csrf = sessions[learner.number]
                http_runs.append(post_run(http, csrf, learner, command, case.step))
                seconds, _state = after_in_process(sandboxes[learner.number], command, case.step)
                in_process.append(seconds)
            # The old way, for every learner at once (threads): the evaluation's wait
            # budget, not CPU, sets its length.
            jobs = [
                (
                    {
                        "kubeconfig": sandboxes[learner.number].kubeconfig_path,
                        "workspace": sandboxes[learner.number].workspace,
                        "namespaces": dict(sandboxes[learner.number].namespaces),
                    },
                    case.command.format(ns=learner.namespace),
                )
                for learner in learners
            ]
            with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                for evaluation, kubectl_s, statuses in pool.map(
                    lambda job, step=case.step: before_in_process(job[0], job[1], step), jobs
                ):
                    before.append(evaluation)
                    before_kubectl.append(kubectl_s)
                    key = ",".join(statuses)
                    before_statuses[key] = before_statuses.get(key, 0) + 1
        results.append(
            {
                "case": case.name,
                "step": case.step,
                "command": case.command,
                "after_in_process_s": summary(in_process, with_p99=True)
                | {"max": round(max(in_process), 4)},
                "before_evaluation_s": summary(before, with_p99=True)
                | {"max": round(max(before), 4)},
                "before_kubectl_s": summary(before_kubectl),
                "before_outcomes": before_statuses,
            }
        )
        runs_of[case.name] = http_runs
    # The real worker: match each HTTP run to its "succeeded" line (runs were posted
    # one at a time, so the first success after a run's end is its own).
    time.sleep(1.0)
    successes = worker_successes(bench.home / "logs" / "worker-bench0.log")
    used: set[int] = set()
    for result in results:
        low, high, runtimes = [], [], []
        for run_id in runs_of[result["case"]]:
            run = CommandRun.objects.get(id=run_id)
            assert run.started_at and run.finished_at and run.duration_ms is not None
            finished = run.finished_at.timestamp()
            exit_earliest = run.started_at.timestamp() + run.duration_ms / 1000
            index = next(
                (
                    i
                    for i, (at, _) in enumerate(successes)
                    if i not in used and at + 0.001 >= finished and at - finished < 10
                ),
                None,
            )
            if index is None:
                continue
            used.add(index)
            at, runtime = successes[index]
            # The log's time is cut to the millisecond: the release is in [at, at+1ms).
            low.append(max(0.0, at - finished))
            high.append(at + 0.001 - exit_earliest)
            runtimes.append(runtime)
        result["after_worker_log_s"] = {
            "exit_to_release_at_least": summary(low, with_p99=True),
            "exit_to_release_at_most": summary(high, with_p99=True),
            "task_runtime": summary(runtimes),
            "matched": len(low),
        }
    return {"learners": len(learners), "cases": results}


# -- report -------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value * 1000:.0f}"


def report(figures: dict[str, Any]) -> None:
    print("\n== change to tick: the admin patches the learner's ConfigMap ->")
    print("   the tracker's \"progress\" event arrives on the learner's /labs/tiny/events/")
    print(
        f"  {'learners':>8} {'changes':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'missed':>7} {'not passed':>11} {'tracker CPU':>16} {'generator CPU':>16}"
    )
    for level in figures["change_to_tick"]:
        tick = level["change_to_tick_s"]
        cpu = level["cpu"]
        print(
            f"  {level['learners']:>8} {level['changes']:>8} {ms(tick['p50']):>8} "
            f"{ms(tick['p95']):>8} {ms(tick['p99']):>8} {ms(tick['max']):>8} "
            f"{len(level['missed']):>7} {len(level['step_not_passed_in_db']):>11} "
            f"{cpu['cpu_s']['tracker']:>6.1f}s ({cpu['pct_of_one_core']['tracker']:>4.1f}%) "
            f"{cpu['cpu_s']['generator']:>6.1f}s ({cpu['pct_of_one_core']['generator']:>4.1f}%)"
        )
    print("  of which (p50 / p95 ms): change -> tracker published | published -> on the page")
    for level in figures["change_to_tick"]:
        first, second = level["change_to_published_s"], level["published_to_page_s"]
        print(
            f"  {level['learners']:>8} learners: {ms(first['p50'])} / {ms(first['p95'])} | "
            f"{ms(second['p50'])} / {ms(second['p95'])}"
        )
    for level in figures["change_to_tick"]:
        cpu = level["cpu"]
        print(
            f"  {level['learners']} learners, over {cpu['wall_s']}s of measuring "
            f"(machine busy {cpu['machine_busy_pct']}% of 2 cores; "
            f"tracker judged {level['tracker_judgements_during_level']} times, "
            "preparing included): "
            + ", ".join(
                f"{name} {pct}%"
                for name, pct in sorted(cpu["pct_of_one_core"].items(), key=lambda kv: -kv[1])
                if pct >= 1
            )
        )
    goal = figures["goals"]["tick_p95_at_100"]
    if goal is not None:
        print(f"  goal p95 <= 500 ms at 100 learners: {'met' if goal else 'NOT met'}")

    slot = figures["worker_slot"]
    print(
        f"\n== a run's worker slot after kubectl exits ({slot['learners']} sandboxes; "
        "ms; after = now, before = the worker evaluated the step's checks, polling)"
    )
    print(
        f"  {'case':<34} {'after: worker log':>22} {'after: in-process':>18} "
        f"{'before: eval in slot':>21}  before's outcomes"
    )
    print(
        f"  {'':<34} {'p50 (bounds)':>16} {'p95':>5} {'p50':>9} {'p95':>8} {'p50':>10} {'p95':>10}"
    )
    for case in slot["cases"]:
        log = case["after_worker_log_s"]
        lo, hi = log["exit_to_release_at_least"], log["exit_to_release_at_most"]
        inproc, before = case["after_in_process_s"], case["before_evaluation_s"]
        print(
            f"  {case['case']:<34} {ms(lo['p50']):>6}..{ms(hi['p50']):<6} "
            f"{ms(lo['p95']):>4}..{ms(hi['p95']):<4} {ms(inproc['p50']):>9} {ms(inproc['p95']):>8} "
            f"{ms(before['p50']):>10} {ms(before['p95']):>10}  "
            + "; ".join(f"{k} x{v}" for k, v in case["before_outcomes"].items())
        )
        print(f"  {'':<34} n={lo['n']} (after, HTTP) n={inproc['n']} n={before['n']}")
    cpu = slot["cpu"]
    print(
        f"  over {cpu['wall_s']}s: generator {cpu['cpu_s']['generator']}s CPU "
        f"(+{cpu['cpu_s']['generator_kubectl']}s in its kubectl children), "
        f"tracker {cpu['cpu_s']['tracker']}s, interactive worker "
        f"{cpu['cpu_s']['worker_interactive']}s; machine busy {cpu['machine_busy_pct']}%"
    )
    print(
        "  goal, slot released within 50 ms of kubectl's exit (p95, every case): "
        + ", ".join(
            f"{name.replace('_', ' ')} {'met' if met else 'NOT met'}"
            for name, met in figures["goals"]["slot_within_50ms"].items()
        )
    )
    tracker = figures["tracker_log"]
    print(
        f"\n== tracker log: {tracker['warnings']} warnings, {tracker['errors']} errors, "
        f"{tracker['relists']} re-lists ({tracker['path']})"
    )
    for line in tracker["samples"]:
        print(f"  {line}")
    print(
        f"\nload average at start {figures['load_average']['start']}, "
        f"at end {figures['load_average']['end']} (nproc {figures['nproc']}); "
        f"the whole run took {figures['total_wall_s']:.0f}s"
    )


def tracker_log(path: Path) -> dict[str, Any]:
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    warnings = [line for line in lines if "WARNING" in line or '"warning"' in line.lower()]
    errors = [
        line for line in lines if "ERROR" in line or "Traceback" in line or "CRITICAL" in line
    ]
    relists = [line for line in lines if "listing again" in line]
    samples = []
    for line in warnings + errors:
        if line not in samples:
            samples.append(line[:240])
        if len(samples) == 10:
            break
    return {
        "path": str(path),
        "lines": len(lines),
        "warnings": len(warnings),
        "errors": len(errors),
        "relists": len(relists),
        "samples": samples,
    }


def chart(figures: dict[str, Any], path: Path) -> None:
    """Two panels: change-to-tick p50/p95 per level against the 500 ms goal; the
    slot held after kubectl's exit, after and before, per case (log scale)."""
    levels = figures["change_to_tick"]
    cases = figures["worker_slot"]["cases"]
    width, height = 820, 320
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="16" font-size="13">change to tick (ms), p50 / p95</text>',
        '<text x="400" y="16" font-size="13">slot held after kubectl exits (ms, log)</text>',
    ]
    top, bottom = 30, height - 56
    scale = max([GOAL_TICK_P95_S * 1.2] + [lv["change_to_tick_s"]["p95"] for lv in levels])
    goal_y = bottom - (bottom - top) * GOAL_TICK_P95_S / scale
    parts.append(
        f'<line x1="20" x2="360" y1="{goal_y:.0f}" y2="{goal_y:.0f}" stroke="red" '
        'stroke-dasharray="4 3"/>'
        f'<text x="300" y="{goal_y - 4:.0f}" fill="red">goal 500</text>'
    )
    for i, level in enumerate(levels):
        x = 40 + i * 150
        for j, (key, colour) in enumerate((("p50", "#4a7bd0"), ("p95", "#1f3f7a"))):
            value = level["change_to_tick_s"][key]
            bar = (bottom - top) * value / scale
            parts.append(
                f'<rect x="{x + j * 45}" y="{bottom - bar:.0f}" width="40" height="{bar:.0f}" '
                f'fill="{colour}"/><text x="{x + j * 45 + 20}" y="{bottom - bar - 3:.0f}" '
                f'text-anchor="middle">{value * 1000:.0f}</text>'
            )
        parts.append(
            f'<text x="{x + 42}" y="{bottom + 14}" text-anchor="middle">'
            f"{level['learners']} learner{'s' if level['learners'] > 1 else ''}</text>"
        )

    def log_y(seconds: float) -> float:
        lo, hi = math.log10(0.001), math.log10(60)
        value = math.log10(max(seconds, 0.001))
        return bottom - (bottom - top) * (value - lo) / (hi - lo)

    for mark in (0.001, 0.01, 0.1, 1, 10):
        y = log_y(mark)
        parts.append(
            f'<line x1="400" x2="810" y1="{y:.0f}" y2="{y:.0f}" stroke="#ddd"/>'
            f'<text x="398" y="{y + 4:.0f}" text-anchor="end">{mark * 1000:g}</text>'
        )
    y50 = log_y(GOAL_SLOT_S)
    parts.append(
        f'<line x1="400" x2="810" y1="{y50:.0f}" y2="{y50:.0f}" stroke="red" '
        'stroke-dasharray="4 3"/>'
    )
    for i, case in enumerate(cases):
        x = 425 + i * 135
        after = case["after_worker_log_s"]["exit_to_release_at_most"]["p95"]
        before = case["before_evaluation_s"]["p95"]
        for j, (value, colour) in enumerate(((after, "#3a9a5b"), (before, "#c0504d"))):
            if value != value:
                continue
            y = log_y(value)
            parts.append(
                f'<rect x="{x + j * 42}" y="{y:.0f}" width="38" height="{bottom - y:.0f}" '
                f'fill="{colour}"/>'
            )
        label = case["command"].replace("kubectl ", "").replace("-n {ns} ", "")
        parts.append(f'<text x="{x + 40}" y="{bottom + 14}" text-anchor="middle">{label}</text>')
    parts.append(
        f'<text x="10" y="{height - 22}">left: p50 (light), p95 (dark). right, p95: green = '
        "after (the worker's log, upper bound), red = before (checks evaluated in the slot)."
        f'</text><text x="10" y="{height - 8}">dashed: the goals (500 ms, 50 ms). '
        f"{figures['measured_at']}, {figures['nproc']} cores, load average at start "
        f"{figures['load_average']['start'][0]}</text>"
    )
    parts.append("</svg>")
    path.write_text("\n".join(parts))


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", default="1,100", help="comma-separated levels")
    parser.add_argument(
        "--spread", type=float, default=60, help="seconds over which 100 learners change"
    )
    parser.add_argument("--slot-learners", type=int, default=4)
    parser.add_argument("--runs", type=int, default=20, help="fast runs per slot case")
    parser.add_argument(
        "--slow-reps", type=int, default=3, help="rounds of the slow slot cases (20 s each)"
    )
    parser.add_argument(
        "--min-samples", type=int, default=MIN_SAMPLES, help="per level (repeats rounds)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=RESULTS / "tracking.json")
    args = parser.parse_args()
    levels = sorted({int(n) for n in args.learners.split(",")})
    rng = random.Random(args.seed)

    began = time.monotonic()
    load_start = load_average()
    from labapp.ops.devstack import combined_lab_root

    labs_root = Path(tempfile.mkdtemp(prefix="labapp-bench-labs-"))
    combined_lab_root(labs_root, SHIPPED_LABS, TEST_LABS)
    figures: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lab": LAB,
        "levels": levels,
        "spread_s_for_100": args.spread,
        "seed": args.seed,
    }
    print(f"load average at start: {load_start}")
    others = other_heavy_processes()
    if others:
        print("other busy processes on the machine:\n  " + "\n  ".join(others))
    try:
        with bench_stack(
            workers=1, concurrency=2, extra_env={"LABAPP_LAB_STEPS_DIR": str(labs_root)}
        ) as bench:
            print(f"stack up in {time.monotonic() - began:.0f}s: {bench.home}", flush=True)
            cpu = CpuProbe.for_bench(bench)
            figures["bench_home"] = str(bench.home)
            figures["provisioning"] = []
            figures["change_to_tick"] = []
            pool: list[Learner] = []
            for level in levels:
                if len(pool) < level:
                    print(f"provisioning {level - len(pool)} sandboxes ...", flush=True)
                    fresh, stats = provision("learner", range(len(pool), level))
                    figures["provisioning"].append(stats)
                    pool += fresh
                    print(
                        f"  {len(fresh)} ready in {stats['wall_s']}s "
                        f"(start to ready p50 {stats['start_to_ready_s']['p50']}s, "
                        f"p95 {stats['start_to_ready_s']['p95']}s; failed {len(stats['failed'])})",
                        flush=True,
                    )
                learners = pool[:level]
                spread = args.spread * len(learners) / 100
                print(f"change to tick, {len(learners)} learners ...", flush=True)
                result = change_to_tick(
                    bench, learners, spread=spread, rng=rng, cpu=cpu, min_samples=args.min_samples
                )
                tick = result["change_to_tick_s"]
                print(
                    f"  p50 {ms(tick['p50'])} ms, p95 {ms(tick['p95'])} ms, "
                    f"missed {len(result['missed'])}",
                    flush=True,
                )
                figures["change_to_tick"].append(result)

            print(f"provisioning {args.slot_learners} sandboxes for the slot runs ...", flush=True)
            slot_learners, stats = provision("slot", range(args.slot_learners))
            figures["provisioning"].append(stats)
            fast_reps = math.ceil(args.runs / max(1, len(slot_learners)))
            cases = [
                # Order matters: the last one labels the namespace restricted.
                SlotCase(
                    "not done yet: budget runs out",
                    "recycle-pods",
                    "kubectl -n {ns} get pod",
                    args.slow_reps,
                ),
                SlotCase(
                    "right after delete pod --all",
                    "recycle-pods",
                    "kubectl -n {ns} delete pod --all",
                    args.slow_reps,
                ),
                SlotCase(
                    "checks pass at once",
                    "configure",
                    "kubectl apply -k shop/configured",
                    fast_reps,
                ),
            ]
            print("worker slot, before and after ...", flush=True)
            before = cpu.sample()
            figures["worker_slot"] = worker_slot(bench, slot_learners, cases)
            figures["worker_slot"]["cpu"] = cpu_between(before, cpu.sample())
            figures["tracker_log"] = tracker_log(bench.home / "logs" / "tracker.log")
    finally:
        shutil.rmtree(labs_root, ignore_errors=True)

    hundred = [lv for lv in figures["change_to_tick"] if lv["learners"] >= 100]
    figures["goals"] = {
        "tick_p95_at_100": (hundred[0]["change_to_tick_s"]["p95"] <= GOAL_TICK_P95_S)
        if hundred
        else None,
        # p95 of every case within 50 ms, by each way of measuring it
        "slot_within_50ms": {
            name: all(pick(case)["p95"] <= GOAL_SLOT_S for case in figures["worker_slot"]["cases"])
            for name, pick in (
                ("in_process_exact", lambda case: case["after_in_process_s"]),
                (
                    "worker_log_lower_bound",
                    lambda case: case["after_worker_log_s"]["exit_to_release_at_least"],
                ),
                (
                    "worker_log_upper_bound",
                    lambda case: case["after_worker_log_s"]["exit_to_release_at_most"],
                ),
            )
        },
    }
    figures["load_average"] = {"start": load_start, "end": load_average()}
    figures["other_busy_processes_at_start"] = others
    figures["total_wall_s"] = round(time.monotonic() - began, 1)
    report(figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    chart(figures, args.json.with_suffix(".svg"))
    print(f"written: {args.json} and {args.json.with_suffix('.svg')}")


if __name__ == "__main__":
    main()
