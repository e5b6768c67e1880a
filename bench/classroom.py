"""A classroom at a human pace, everything on this one machine: the control plane,
the app as `make up` runs it, and the load generator (`make bench`).

For each class size, an instructor creates a workshop (`manage.py workshop
create`) and its warm pool fills before anyone arrives. Learners then arrive
spread over two minutes, join with the code, start the Baseline lab and do every
step in their browser (bench/browser.py): 10-30 s of thought before each
command, typed into the command box as often as clicked, each output stream read
to its end, each step waited for until the page ticks it.

Beside them, bare kubectl (bench/bare.py) runs the same commands with a
learner's credentials and workspace but without labapp, in the same minutes, so
each command type has a like-for-like ratio. Then the burst: every learner
applies the same folder within 10 s. One class stays on for a soak, re-running
the lab's commands at the same pace, with the resident memory of every process
at its start and end.

    .venv/bin/python bench/classroom.py                  # 100 (15-min soak), then 200
    .venv/bin/python bench/classroom.py --classes 20 --soak 0 --arrive 30   # a quick look

Figures go to bench/results/classroom.json and two SVG charts beside it. Not a
timed test: the machine is shared, so every process's CPU is written down too.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import logging
import math
import random
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bare import BURST_APPLY, LAB, BareKubectl, BareSample, bare_burst, learner_shells, niceness_of
from browser import Browser, Dashboard, Journey, RunSample, attend, kind_of
from classroom_report import chart_latency, chart_memory, goals_for, report
from harness import ROOT, Bench, bench_stack, session_for, summary
from probes import Probe, cpu_between, load_average, other_heavy_processes, server_side_mib

from labapp.environment import env_worker_concurrency, usable_cores

RESULTS = ROOT / "bench" / "results"
CORES = usable_cores()  # counted as settings count them
COMPARED = ("get", "get | yq", "kustomize", "apply -k", "write")
PAIR_WITHIN_S = 20.0  # how far apart in time a labapp run and its bare pair may start


def create_workshop(capacity: int, title: str, instructor: str) -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "workshop",
        "create",
        "--lab",
        LAB,
        "--capacity",
        str(capacity),
        "--title",
        title,
        "--instructor",
        instructor,
        "--json",
        stdout=out,
    )
    return json.loads(out.getvalue())["code"]


def instructor(username: str) -> Any:
    from django.contrib.auth.models import User

    from labapp.instructor.services import instructor_grant

    user = User.objects.create_user(username)
    instructor_grant(user=user)
    return user


def fill_pool(code: str) -> dict[str, Any]:
    """Wait for the workshop's pool to be full (beat tends it; we ask at once)."""
    from labapp.learning.models import Workshop
    from labapp.sandboxes.models import Sandbox
    from labapp.sandboxes.pools import pools_fill

    pool = Workshop.objects.get(join_code=code).pools.get()
    started = time.monotonic()
    pools_fill()
    unclaimed = Sandbox.objects.filter(pool=pool, owner__isnull=True)
    while True:
        ready = unclaimed.filter(state=Sandbox.State.READY).count()
        failed = unclaimed.filter(state=Sandbox.State.FAILED).count()
        if ready + failed >= pool.size or time.monotonic() - started > 3600:
            break
        time.sleep(2)
    wall = time.monotonic() - started
    return {
        "size": pool.size,
        "ready": ready,
        "failed": failed,
        "wall_s": round(wall, 1),
        "per_minute": round(60 * ready / wall, 1) if wall else None,
    }


def run_integrity(code: str, wait: float = 120) -> dict[str, Any]:
    """Every run the class posted is recorded and final: count those that are not."""
    from labapp.runs.models import CommandRun

    runs = CommandRun.objects.filter(sandbox__owner__enrolments__workshop__join_code=code)
    deadline = time.monotonic() + wait
    while runs.filter(state__in=("queued", "running")).exists() and time.monotonic() < deadline:
        time.sleep(1)
    by_state: dict[str, int] = {}
    for state in runs.values_list("state", flat=True):
        by_state[state] = by_state.get(state, 0) + 1
    return {"recorded": sum(by_state.values()), "by_state": by_state}


def where_time_goes(code: str, before: dt.datetime) -> dict[str, Any]:
    """Each run's time on the server, by command type, from its record: waiting in
    the queue, kubectl itself, and the worker's time around kubectl (token,
    workspace, spawning, recording). Runs queued before `before` only: the class,
    not its burst."""
    from labapp.runs.models import CommandRun

    parts: dict[str, dict[str, list[float]]] = {}
    runs = CommandRun.objects.filter(
        sandbox__owner__enrolments__workshop__join_code=code,
        state="succeeded",
        queued_at__lt=before,
    ).values_list("command", "queued_at", "started_at", "finished_at", "duration_ms")
    for command, queued, started, finished, duration_ms in runs:
        if not (started and finished and duration_ms is not None):
            continue
        mine = parts.setdefault(kind_of(command), {"queue": [], "kubectl": [], "around": []})
        mine["queue"].append((started - queued).total_seconds())
        mine["kubectl"].append(duration_ms / 1000)
        # started -> finished, less kubectl: token, workspace, spawning, recording
        mine["around"].append((finished - started).total_seconds() - duration_ms / 1000)
    return {
        kind: {part: summary(values) for part, values in measured.items()}
        for kind, measured in parts.items()
    }


async def class_session(
    bench: Bench,
    code: str,
    learners: int,
    dashboard: Dashboard,
    *,
    arrive_s: float,
    think_s: tuple[float, float],
    stay_s: float,
) -> tuple[list[Journey], list[Browser], float]:
    start = time.monotonic()
    journeys = [Journey(number) for number in range(learners)]
    browsers = [Browser(bench.url, journey, LAB) for journey in journeys]
    class_over = asyncio.Event()
    watching = asyncio.create_task(dashboard.watch(class_over))
    await asyncio.gather(
        *(
            attend(
                browser,
                code,
                arrive_after=random.uniform(0, arrive_s),
                think_s=think_s,
                typed_share=0.5,
                stay_until=start + stay_s,
            )
            for browser in browsers
        )
    )
    wall = time.monotonic() - start
    class_over.set()
    await watching
    return journeys, browsers, wall


async def burst(browsers: list[Browser], bare: BareKubectl, window_s: float) -> dict[str, Any]:
    """Everyone clicks the same apply within `window_s`. Compared with one bare
    kubectl running it in the same seconds, and, once the class's burst is over,
    with the same burst run bare: every learner's apply at once, without labapp."""
    ready = [b for b in browsers if b.journey.completed_at is not None]
    step = next(step for step, commands in ready[0].steps if BURST_APPLY in commands)
    marks = {id(b): len(b.journey.runs) for b in ready}

    async def click(browser: Browser) -> None:
        await asyncio.sleep(random.uniform(0, window_s))
        try:
            await browser.run(BURST_APPLY, step, typed=False)
        except Exception as exc:  # counted, not raised
            browser.journey.error(f"burst: {type(exc).__name__}: {exc}")

    before = len(bare.samples)

    def bare_during() -> None:
        stop_at = time.monotonic() + window_s + 5
        while time.monotonic() < stop_at:
            bare.once(BURST_APPLY)

    bare_thread = asyncio.to_thread(bare_during)
    await asyncio.gather(bare_thread, *(click(b) for b in ready))
    done = []
    for b in ready:  # the burst's runs are its own figures, not the class's
        done += [run.done_s for run in b.journey.runs[marks[id(b)] :]]
        del b.journey.runs[marks[id(b)] :]
    bare_done = [s.done_s for s in bare.samples[before:]]
    shells = await asyncio.to_thread(learner_shells, [b.slug for b in ready])
    await asyncio.sleep(5)  # the class's burst has settled
    all_bare, bare_failures = await bare_burst(shells, window_s)
    return {
        "learners": len(ready),
        "window_s": window_s,
        "done_s": summary(done, with_p99=True),
        "bare_done_s": summary(bare_done),
        "ratio_p95": round(summary(done)["p95"] / summary(bare_done)["p95"], 2),
        "bare_burst_done_s": summary(all_bare, with_p99=True),
        "bare_burst_failed": len(bare_failures),
        "bare_burst_failures": bare_failures[:3],
        "ratio_to_bare_burst_p95": round(summary(done)["p95"] / summary(all_bare)["p95"], 2),
    }


def figures_for_class(
    learners: int,
    journeys: list[Journey],
    bare: list[BareSample],
    wall_s: float,
) -> dict[str, Any]:
    runs = [run for j in journeys for run in j.runs]
    by_kind: dict[str, Any] = {}
    for kind in COMPARED:
        mine = [r for r in runs if r.kind == kind]
        by_kind[kind] = {
            "first_byte_s": summary(
                [r.first_byte_s for r in mine if r.first_byte_s], with_p99=True
            ),
            "done_s": summary([r.done_s for r in mine], with_p99=True),
            "typed": sum(r.typed for r in mine),
        }
    bare_by_kind = {
        kind: {
            "first_byte_s": summary([s.first_byte_s for s in bare if s.kind == kind]),
            "done_s": summary([s.done_s for s in bare if s.kind == kind]),
        }
        for kind in COMPARED
    }

    def ratio(kind: str, measure: str, pct: str) -> float:
        return round(by_kind[kind][measure][pct] / bare_by_kind[kind][measure][pct], 2)

    errors = [e for j in journeys for e in j.errors]
    paired = {kind: paired_in_time(runs, bare, kind) for kind in COMPARED}
    return {
        "learners": learners,
        "completed": sum(j.completed_at is not None for j in journeys),
        "errors": len(errors),
        "error_samples": errors[:8],
        "wall_s": round(wall_s, 1),
        "runs": len(runs),
        "requests": sum(j.requests for j in journeys),
        "rechecks": sum(j.rechecks for j in journeys),
        "sandbox_ready_s": summary(
            [j.ready_s for j in journeys if j.ready_s is not None], with_p99=True
        ),
        "minutes_to_complete": summary(
            [(j.completed_at - j.arrived_at) / 60 for j in journeys if j.completed_at]
        ),
        "step_tick_s": summary([t for j in journeys for t in j.tick_s], with_p99=True),
        "by_kind": by_kind,
        "bare": bare_by_kind,
        # labapp / bare kubectl, the same command type in the same minutes
        "ratios": {
            kind: {
                f"{measure}_{pct}": ratio(kind, f"{measure}_s", pct)
                for measure in ("first_byte", "done")
                for pct in ("p50", "p95")
            }
            for kind in COMPARED
        },
        # Each labapp run with the bare run of its type nearest in time: the same
        # moments of the class, weighted as labapp's own runs are (see paired_in_time).
        "paired": paired,
        "get_type_first_byte_s": summary(
            [r.first_byte_s for r in runs if r.kind in ("get", "get | yq") and r.first_byte_s],
            with_p99=True,
        ),
    }


def paired_in_time(
    runs: list[RunSample], bare: list[BareSample], kind: str, within_s: float = PAIR_WITHIN_S
) -> dict[str, Any]:
    """labapp's runs of `kind` beside bare kubectl at the same moments.

    The bare sampler runs at an even pace, while learners cluster (they arrive
    together, and reach the same step together), so bare's own p95 leaves out the
    class's busiest moments more often than labapp's does. Here each labapp run
    is paired with the bare run of its type that started nearest to it (within
    `within_s`, else it is left out), and the two sides' p95 compared: the bare
    figure weighted by when labapp's runs happened."""
    mine = [r for r in runs if r.kind == kind]
    theirs = [s for s in bare if s.kind == kind]
    pairs = []
    for run in mine:
        nearest = min(theirs, key=lambda s: abs(s.at - run.at), default=None)
        if nearest is not None and abs(nearest.at - run.at) <= within_s:
            pairs.append((run, nearest))
    labapp_done = summary([run.done_s for run, _ in pairs])
    bare_done = summary([sample.done_s for _, sample in pairs])
    ratio = labapp_done["p95"] / bare_done["p95"] if pairs else math.nan
    return {
        "within_s": within_s,
        "pairs": len(pairs),
        "of_runs": len(mine),
        "bare_runs_used": len({id(sample) for _, sample in pairs}),
        "labapp_done_s": labapp_done,
        "bare_done_s": bare_done,
        "ratio_done_p95": round(ratio, 2),
    }


def one_class(
    bench: Bench,
    probe: Probe,
    learners: int,
    *,
    arrive_s: float,
    think_s: tuple[float, float],
    soak_s: float,
    burst_s: float,
) -> dict[str, Any]:
    print(f"\n== a class of {learners}{f', with a {soak_s:.0f}-s soak' if soak_s else ''} ==")
    memory = {"before_pool": probe.memory()}
    teacher = instructor(f"teacher{learners}")
    code = create_workshop(learners, f"Bench class of {learners}", teacher.username)
    dashboard = Dashboard(bench.url, session_for(teacher), code, LAB)
    fill = fill_pool(code)
    print(f"  pool: {fill['ready']}/{fill['size']} ready in {fill['wall_s']} s")
    bare = BareKubectl.for_learner(f"bare{learners}")
    memory["class_start"] = probe.memory()
    cpu_before = probe.sample()
    stop_bare = threading.Event()
    # Bare kubectl thinks less than a learner, for more samples in the same minutes.
    sampler = threading.Thread(target=bare.alongside, args=(stop_bare, (2.0, 5.0)), daemon=True)
    sampler.start()
    timeline: list[dict[str, Any]] = []
    stop_timeline = threading.Event()

    def watch_memory() -> None:
        started = time.monotonic()
        while not stop_timeline.wait(30):
            sides = server_side_mib(probe.memory())
            timeline.append({"t_s": round(time.monotonic() - started), **sides})

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    ended: dict[str, Any] = {}

    async def lesson() -> tuple[list[Journey], float, dict[str, Any]]:
        journeys, browsers, wall = await class_session(
            bench, code, learners, dashboard, arrive_s=arrive_s, think_s=think_s, stay_s=soak_s
        )
        ended["cpu"] = probe.sample()
        ended["at"] = dt.datetime.now(dt.UTC)
        ended["memory"] = probe.memory()
        stop_bare.set()
        await asyncio.to_thread(sampler.join)
        ended["bare"] = list(bare.samples)  # the burst's own come next
        ended["terminal"] = list(bare.terminal)
        try:
            return journeys, wall, await burst(browsers, bare, burst_s)
        finally:
            await asyncio.gather(*(b.close() for b in browsers))

    journeys, wall, burst_figures = asyncio.run(lesson())
    stop_timeline.set()
    memory["class_end"] = ended["memory"]
    figures = figures_for_class(learners, journeys, ended["bare"], wall)
    terminal = summary([s.done_s for s in ended["terminal"]])
    figures["apply_in_a_terminal"] = {
        "niceness_in_labapp": niceness_of(BURST_APPLY),
        "done_s": terminal,
        "ratio_done_p95": round(
            figures["by_kind"]["apply -k"]["done_s"]["p95"] / terminal["p95"], 2
        ),
    }
    figures["burst"] = burst_figures
    figures["dashboard"] = {
        "board_s": summary(dashboard.board_s, with_p99=True),
        "requests": dashboard.requests,
        "errors": dashboard.errors[:5],
    }
    figures["errors"] += len(dashboard.errors)
    figures["pool"] = fill
    figures["integrity"] = run_integrity(code)
    figures["server_time_s"] = where_time_goes(code, ended["at"])
    figures["cpu"] = cpu_between(cpu_before, ended["cpu"])
    figures["memory_mib"] = memory
    figures["memory_timeline"] = timeline
    grown = {
        side: server_side_mib(memory["class_end"])[side]
        - server_side_mib(memory["before_pool"])[side]
        for side in ("app", "control_plane")
    }
    figures["memory_per_learner_mib"] = {side: round(v / learners, 2) for side, v in grown.items()}
    figures["soak_s"] = soak_s
    figures["goals"] = goals_for(figures)
    return figures


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # A stopped bench still stops its stack and cluster (the `finally` blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--classes", default="100,200", help="class sizes, one after another")
    parser.add_argument("--soak-class", type=int, default=100, help="the class that soaks")
    parser.add_argument("--soak", type=float, default=900, help="its soak, seconds")
    parser.add_argument("--arrive", type=float, default=120, help="arrivals spread, seconds")
    parser.add_argument("--think", default="10,30", help="think time between commands, s")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="the quick lane's worker processes (default: LABAPP_WORKER_CONCURRENCY's)",
    )
    parser.add_argument(
        "--slow-concurrency",
        type=int,
        default=-1,
        help="the slow lane's worker processes (default: LABAPP_SLOW_WORKER_CONCURRENCY's); "
        "0 runs both lanes in one worker, as before the lanes",
    )
    parser.add_argument("--burst", type=float, default=10, help="the burst's window, seconds")
    parser.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="a first small class, not judged: it warms "
        "the processes' imports and caches so that memory per learner is not their cost",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "classroom.json")
    args = parser.parse_args()
    low, high = (float(v) for v in args.think.split(","))
    think = (low, high)
    sizes = [int(n) for n in args.classes.split(",")]
    # `make up`'s sizes, read before Django is set up (bench_stack sets it up).
    quick_default, slow_default = env_worker_concurrency(CORES)
    concurrency = args.concurrency or quick_default
    slow = slow_default if args.slow_concurrency < 0 else args.slow_concurrency
    load_start = load_average()
    others = other_heavy_processes()
    classes = []
    # `make up`'s processes: uvicorn and the interactive worker sized by the cores.
    # The pool fills two at a time (make up: one) so that the bench spends its
    # minutes on the class, not on waiting for the pool.
    with bench_stack(
        workers=1,
        concurrency=concurrency,
        slow_concurrency=slow,
        web_workers=CORES,
        provisioning_concurrency=2,
        beat=True,
        extra_env={"LABAPP_POOL_CONCURRENCY": "2"},
    ) as bench:
        probe = Probe.for_bench(bench)
        warmup = None
        if args.warmup:
            warmup = one_class(
                bench, probe, args.warmup, arrive_s=5, think_s=(1.0, 2.0), soak_s=0, burst_s=2
            )
            print(f"warm-up class of {args.warmup}: {warmup['completed']} completed")
        for size in sizes:
            soak = args.soak if size == args.soak_class else 0.0
            figures = one_class(
                bench,
                probe,
                size,
                arrive_s=args.arrive,
                think_s=think,
                soak_s=soak,
                burst_s=args.burst,
            )
            classes.append(figures)
            report(figures)
    held = [c["learners"] for c in classes if all(g["held"] for g in c["goals"].values())]
    outcome = {
        "machine": f"{CORES}-core",
        "lab": LAB,
        "arrive_s": args.arrive,
        "think_s": think,
        "processes": {
            "interactive_worker_concurrency": concurrency,
            "slow_worker_concurrency": slow,
            "uvicorn_workers": CORES,
            "pool_concurrency": 2,
        },
        "classes": classes,
        "warmup": warmup,
        "largest_class_holding_goals": max(held) if held else None,
        "load_average": {"start": load_start, "end": load_average()},
        "other_processes_at_start": others,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(outcome, indent=2, default=asdict))
    memory_chart = args.out.with_name(f"{args.out.stem}-memory.svg")
    chart_latency(outcome, args.out.with_suffix(".svg"))
    chart_memory(outcome, memory_chart)
    print(f"\nlargest class holding every goal: {outcome['largest_class_holding_goals']}")
    print(f"written: {args.out}, {args.out.with_suffix('.svg')} and {memory_chart}")


if __name__ == "__main__":
    main()
