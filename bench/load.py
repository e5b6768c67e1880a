"""Load, soak and faults: simulated learners doing the Baseline lab over HTTP
and SSE, as a browser would, against the whole stack on this machine.

    .venv/bin/python bench/load.py                      # ramp 5,10,20,40,100 (make bench)
    .venv/bin/python bench/load.py --learners 100       # one level only
    .venv/bin/python bench/load.py --quick              # 20 learners, about a minute
    .venv/bin/python bench/load.py --faults             # kill a worker, restart Redis and
                                                        # kube-apiserver under load
    .venv/bin/python bench/load.py --soak 600           # learners repeat for 10 minutes

Figures go to bench/results/latest.json and an SVG chart beside it. Not a
timed test: read the numbers side by side; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import random
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import ROOT, Bench, bench_stack, summary

if TYPE_CHECKING:
    import httpx

COMMAND = re.compile(
    r'name="command" value="([^"]*)"><input type="hidden" name="step" '
    r'value="([^"]*)"'
)
RESULTS = ROOT / "bench" / "results"


@dataclass
class Tally:
    sandbox_ready: list[float] = field(default_factory=list)
    first_byte: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    completed: list[float] = field(default_factory=list)  # monotonic time each run ended


async def learner(
    number: int, base: str, tally: Tally, think: tuple[float, float], until: float
) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=120, follow_redirects=True) as http:
        try:
            await http.get("/")
            started = time.monotonic()
            await http.post(
                "/labs/pss-baseline/begin/",
                data={"name": f"learner {number}"},
                headers={"X-CSRFToken": http.cookies["csrftoken"]},
            )
            while "sandbox-ready" not in (await http.get("/labs/pss-baseline/sandbox/")).text:
                if time.monotonic() - started > 600:
                    raise TimeoutError("sandbox not ready after 600s")
                await asyncio.sleep(0.5)
            tally.sandbox_ready.append(time.monotonic() - started)
            page = (await http.get("/labs/pss-baseline/")).text
            found = re.search(r'action="/sandboxes/([a-z0-9]+)/runs/"', page)
            assert found, "no run form on the lab page"
            slug = found.group(1)
            # `exec` needs real containers; the lab skips it on simulated nodes.
            commands = [
                (html.unescape(c), s) for c, s in COMMAND.findall(page) if " exec " not in c
            ]
            while True:
                for command, step in commands:
                    await asyncio.sleep(random.uniform(*think))
                    await one_run(http, slug, command, step, tally)
                if time.monotonic() >= until:
                    return
        except Exception as exc:  # a bench counts failures; it does not stop on one
            tally.errors.append(f"learner {number}: {type(exc).__name__}: {exc}")


async def one_run(
    http: httpx.AsyncClient, slug: str, command: str, step: str, tally: Tally
) -> None:
    clicked = time.monotonic()
    posted = await http.post(
        f"/sandboxes/{slug}/runs/",
        data={"command": command, "step": step},
        headers={"X-CSRFToken": http.cookies["csrftoken"], "HX-Request": "true"},
    )
    if posted.status_code != 202:
        tally.errors.append(f"POST {command!r}: HTTP {posted.status_code}")
        return
    found = re.search(r'id="run-(\d+)"', posted.text)
    assert found, "no run in the response"
    run_id = int(found.group(1))
    tally.run_ids.append(run_id)
    first = None
    async with http.stream("GET", f"/runs/{run_id}/stream/?format=json") as stream:
        event = None
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if event in ("stdout", "stderr") and first is None:
                    first = time.monotonic() - clicked
            elif line.startswith("data: ") and event == "done":
                state = json.loads(line[6:])["state"]
                if state != "succeeded":
                    tally.errors.append(f"run {run_id} {command!r}: {state}")
                break
    tally.done.append(time.monotonic() - clicked)
    tally.completed.append(time.monotonic())
    if first is not None:
        tally.first_byte.append(first)


def check_latencies(run_ids: list[int]) -> list[float]:
    """Worker time spent after the command ended: checks plus recording progress."""
    from labapp.runs.models import CommandRun

    latencies = []
    for run in (
        CommandRun.objects.filter(id__in=run_ids, step_id__gt="")
        .exclude(started_at=None)
        .exclude(finished_at=None)
        .exclude(duration_ms=None)
    ):
        assert run.finished_at and run.started_at and run.duration_ms is not None
        spent = (run.finished_at - run.started_at).total_seconds() - run.duration_ms / 1000
        latencies.append(max(spent, 0.0))
    return latencies


def bare_kubectl(runs: int = 30) -> dict:
    """The same `kubectl get pods`, bare, as the learner's own identity."""
    from labapp.clusters.tools import default_tools
    from labapp.sandboxes.models import Sandbox
    from labapp.sandboxes.services import sandbox_materialize

    sandbox = Sandbox.objects.filter(state="ready").first()
    if sandbox is None:
        raise RuntimeError("no ready sandbox to run bare kubectl in")
    sandbox_materialize(sandbox=sandbox)
    env = {
        "KUBECONFIG": str(sandbox.kubeconfig_path),
        "HOME": str(sandbox.workspace),
        "PATH": "/nonexistent",
        "KUBECACHEDIR": str(sandbox.workspace / ".kube/cache"),
    }
    argv = [str(default_tools().kubectl), "-n", sandbox.namespaces["assets"], "get", "pods"]
    first, done = [], []
    for _ in range(runs + 1):
        started = time.monotonic()
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=sandbox.workspace
        )
        assert process.stdout is not None
        process.stdout.read(1)
        first.append(time.monotonic() - started)
        process.communicate()
        done.append(time.monotonic() - started)
    return {
        "first_byte_s": summary(first[1:], with_p99=True),
        "done_s": summary(done[1:], with_p99=True),
    }


async def inject_faults(bench: Bench, tally: Tally, start: float) -> list[dict[str, Any]]:
    """Kill a worker, restart Redis, restart kube-apiserver: one after another,
    each under load, each timed until the next run completes."""
    from labapp.ops.devstack import kill_group

    faults = []

    async def recovered_after(name: str, action: Callable[[], None]) -> None:
        await asyncio.sleep(8)
        at = time.monotonic()
        await asyncio.to_thread(action)
        while not any(t > at for t in tally.completed):
            if time.monotonic() - at > 300:
                break
            await asyncio.sleep(0.2)
        later = [t for t in tally.completed if t > at]
        faults.append(
            {
                "fault": name,
                "at_s": round(at - start, 1),
                "recovery_s": round(min(later) - at, 2) if later else None,
            }
        )

    def kill_worker() -> None:
        worker = next(p for p in bench.stack.processes if "worker" in str(p.args))
        kill_group(worker)
        bench.stack.processes.remove(worker)
        bench.stack.start_worker("replacement", concurrency=2)

    def restart_apiserver() -> None:
        row = next(r for r in bench.cluster.status() if r.name == "kube-apiserver")
        assert row.pid is not None, "kube-apiserver is not running"
        import os

        os.kill(row.pid, signal.SIGKILL)
        bench.cluster.up(progress=lambda message: None)

    await recovered_after("kill a worker", kill_worker)
    await recovered_after("restart Redis", bench.redis.restart)
    await recovered_after("restart kube-apiserver", restart_apiserver)
    return faults


async def drive(
    bench: Bench, learners: int, think: tuple[float, float], soak: float, faults: bool
) -> dict:
    tally = Tally()
    start = time.monotonic()
    until = start + soak
    tasks = [
        asyncio.create_task(learner(i, bench.url, tally, think, until)) for i in range(learners)
    ]
    fault_task = asyncio.create_task(inject_faults(bench, tally, start)) if faults else None
    await asyncio.gather(*tasks)
    injected = await fault_task if fault_task else []
    wall = time.monotonic() - start
    return {"tally": tally, "faults": injected, "wall_s": round(wall, 1)}


def settle(run_ids: list[int], wait: float) -> dict:
    """Every posted run must end up recorded and final: count those that are not."""
    from labapp.runs.models import CommandRun

    deadline = time.monotonic() + wait
    while True:
        runs = {r.id: r.state for r in CommandRun.objects.filter(id__in=run_ids)}
        unfinished = [i for i, s in runs.items() if s in ("queued", "running")]
        if not unfinished or time.monotonic() > deadline:
            break
        time.sleep(1)
    failed = [i for i, s in runs.items() if s == "failed"]
    return {
        "posted": len(run_ids),
        "lost": len(set(run_ids) - set(runs)),
        "stuck": len(unfinished),
        "failed_with_cause": len(failed),
    }


def figures_for(result: dict, learners: int) -> dict:
    tally: Tally = result["tally"]
    return {
        "learners": learners,
        "runs": len(tally.done),
        "errors": len(tally.errors),
        "error_samples": tally.errors[:5],
        "wall_s": result["wall_s"],
        "sandbox_ready_s": summary(tally.sandbox_ready, with_p99=True),
        "click_to_first_byte_s": summary(tally.first_byte, with_p99=True),
        "click_to_done_s": summary(tally.done, with_p99=True),
        "check_latency_s": summary(check_latencies(tally.run_ids), with_p99=True),
    }


def chart(levels: list[dict], path: Path) -> None:
    """p50/p95/p99 of click-to-first-byte per load level, as a small SVG."""
    width, height, left, bottom = 560, 260, 60, 40
    top = max([lv["click_to_first_byte_s"]["p99"] for lv in levels] + [1.0]) * 1.1
    group = (width - left - 20) / max(len(levels), 1)
    bars = []
    for index, level in enumerate(levels):
        for offset, (key, colour) in enumerate(
            (("p50", "#9db4e8"), ("p95", "#2456c7"), ("p99", "#0b2a6b"))
        ):
            value = level["click_to_first_byte_s"][key]
            h = (height - bottom - 10) * value / top
            x = left + index * group + 8 + offset * (group - 16) / 3
            bars.append(
                f'<rect x="{x:.0f}" y="{height - bottom - h:.0f}" '
                f'width="{(group - 16) / 3 - 2:.0f}" height="{h:.0f}" fill="{colour}">'
                f"<title>{level['learners']} learners {key}: {value:.3f}s</title></rect>"
            )
        bars.append(
            f'<text x="{left + index * group + group / 2:.0f}" y="{height - 22}" '
            f'font-size="11" text-anchor="middle">{level["learners"]}</text>'
        )
    one_second = height - bottom - (height - bottom - 10) / top
    svg = f"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">
<title>Click to first byte (s): p50, p95, p99 by number of learners</title>
<text x="{left}" y="14" font-size="12">Click to first byte, seconds (p50 / p95 / p99)</text>
<line x1="{left}" x2="{width - 10}" y1="{one_second:.0f}" y2="{one_second:.0f}"
  stroke="#a4161a" stroke-dasharray="4 3"/><text x="{width - 10}" y="{one_second - 4:.0f}"
  font-size="10" text-anchor="end" fill="#a4161a">1 s</text>
{"".join(bars)}
<text x="{width / 2:.0f}" y="{height - 4}" font-size="11" text-anchor="middle">learners</text>
</svg>"""
    path.write_text(svg)


def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", type=int, default=0, help="one level (instead of --ramp)")
    parser.add_argument(
        "--ramp",
        default="5,10,20,40,100",
        help="comma-separated learner counts, run one after another",
    )
    parser.add_argument("--quick", action="store_true", help="20 learners, short think time")
    parser.add_argument("--soak", type=float, default=0, help="seconds to keep going (max 600)")
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="per worker")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    if args.quick:
        levels_wanted = [20]
    elif args.learners:
        levels_wanted = [args.learners]
    else:
        levels_wanted = [int(n) for n in args.ramp.split(",")]
    think = (0.2, 0.8) if args.quick else (1.0, 3.0)
    soak = min(args.soak, 600)
    env = {"LABAPP_RUN_QUEUE_DEADLINE_SECONDS": "60", "LABAPP_RUN_DEADLINE_GRACE_SECONDS": "15"}
    levels, outcome = [], {}
    with bench_stack(
        workers=args.workers, concurrency=args.concurrency, beat=True, extra_env=env
    ) as bench:
        for count in levels_wanted:
            result = asyncio.run(drive(bench, count, think, soak, args.faults))
            level = figures_for(result, count)
            level["integrity"] = settle(result["tally"].run_ids, wait=120)
            level["faults"] = result["faults"]
            levels.append(level)
            report(level)
        bare = bare_kubectl()
    for level in levels:
        level["overhead_vs_bare_p50"] = round(
            level["click_to_first_byte_s"]["p50"] / bare["first_byte_s"]["p50"], 2
        )
        level["overhead_vs_bare_p95"] = round(
            level["click_to_first_byte_s"]["p95"] / bare["first_byte_s"]["p95"], 2
        )
    under = [lv["learners"] for lv in levels if lv["click_to_first_byte_s"]["p95"] <= 1.0]
    outcome = {
        "machine": "2 cores, 24 GiB",
        "bare_kubectl": bare,
        "levels": levels,
        "largest_learners_with_p95_first_byte_under_1s": max(under) if under else None,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "think_s": think,
        "soak_s": soak,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(outcome, indent=2))
    chart(levels, args.out.with_suffix(".svg"))
    print(
        f"\nbare kubectl: first byte p50 {bare['first_byte_s']['p50'] * 1000:.0f} ms, "
        f"p95 {bare['first_byte_s']['p95'] * 1000:.0f} ms"
    )
    for level in levels:
        print(
            f"{level['learners']:>4} learners: overhead vs bare (first byte) "
            f"p50 {level['overhead_vs_bare_p50']}x, p95 {level['overhead_vs_bare_p95']}x"
        )
    print(
        f"largest tried with p95 first byte <= 1 s: "
        f"{outcome['largest_learners_with_p95_first_byte_under_1s']}"
    )
    print(f"written: {args.out} and {args.out.with_suffix('.svg')}")


def report(level: dict) -> None:
    def row(name: str, values: dict) -> str:
        return (
            f"  {name:<24}{values['p50'] * 1000:>8.0f}{values['p95'] * 1000:>8.0f}"
            f"{values['p99'] * 1000:>8.0f}  (n={values['n']})"
        )

    print(
        f"\n{level['learners']} learners, {level['runs']} runs in {level['wall_s']}s, "
        f"errors: {level['errors']}"
    )
    print(f"  {'ms':<24}{'p50':>8}{'p95':>8}{'p99':>8}")
    for key in ("sandbox_ready_s", "click_to_first_byte_s", "click_to_done_s", "check_latency_s"):
        print(row(key.removesuffix("_s").replace("_", " "), level[key]))
    print(f"  integrity: {level['integrity']}")
    for fault in level["faults"]:
        print(
            f"  fault {fault['fault']!r} at {fault['at_s']}s: next run completed "
            f"{fault['recovery_s']}s later"
        )


if __name__ == "__main__":
    main()
