"""Warm pools: how fast a workshop's pool fills, and how long claiming a pooled
sandbox takes when a learner starts the lab (p50 / p95).

Self-contained: boots its own control plane, Redis, workers and uvicorn in a
temporary folder; creates a workshop with `manage.py workshop create`, fills its
pool for real (the provisioning worker, POOL_CONCURRENCY at a time), then has
each learner start the lab: `lab_start` in this process (the service: a claim is
a row update), and optionally over HTTP (POST /labs/LAB/begin/, as the button
does). Figures, not a timed test.

    .venv/bin/python bench/pool_claims.py [--claims 100] [--http-claims 20]
        [--parallel 1] [--lab pss-baseline] [--fill-concurrency 2]
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

from harness import ROOT, bench_stack, session_for, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=100, help="lab starts through the service")
    parser.add_argument("--http-claims", type=int, default=20, help="lab starts over HTTP")
    parser.add_argument("--parallel", type=int, default=1, help="learners starting at once")
    parser.add_argument("--lab", default="pss-baseline")
    parser.add_argument(
        "--fill-concurrency", type=int, default=2, help="LABAPP_POOL_CONCURRENCY for the fill"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/pool_claims.json")
    args = parser.parse_args()
    extra_env = {"LABAPP_POOL_CONCURRENCY": str(args.fill_concurrency)}
    with bench_stack(extra_env=extra_env) as bench:
        figures: dict[str, Any] = {
            "lab": args.lab,
            "claims": args.claims,
            "http_claims": args.http_claims,
            "parallel": args.parallel,
            "fill_concurrency": args.fill_concurrency,
        }
        capacity = args.claims + args.http_claims
        code, fill = fill_pool(args.lab, capacity)
        figures["fill"] = fill
        figures["claim_s"] = claim_many(code, args.lab, args.claims, args.parallel)
        if args.http_claims:
            figures["http_begin_s"] = begin_over_http(code, args.lab, args.http_claims, bench.url)
    report(figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))


def fill_pool(lab_id: str, capacity: int) -> tuple[str, dict[str, Any]]:
    from django.core.management import call_command

    from labapp.learning.models import Workshop
    from labapp.sandboxes.models import Sandbox
    from labapp.sandboxes.pools import pools_fill

    out = io.StringIO()
    call_command(
        "workshop", "create", "--lab", lab_id, "--capacity", str(capacity), "--json", stdout=out
    )
    code = json.loads(out.getvalue())["code"]
    pool = Workshop.objects.get(join_code=code).pools.get()
    started = time.monotonic()
    pools_fill()  # the worker goes on by itself; beat would start it too
    unclaimed = Sandbox.objects.filter(pool=pool, owner__isnull=True)
    while time.monotonic() - started < 3600:
        ready = unclaimed.filter(state=Sandbox.State.READY).count()
        failed = unclaimed.filter(state=Sandbox.State.FAILED).count()
        if ready + failed >= pool.size:
            break
        time.sleep(0.5)
    wall = time.monotonic() - started
    seconds = [
        (s.ready_at - s.created_at).total_seconds()
        for s in unclaimed.filter(state=Sandbox.State.READY)
        if s.ready_at
    ]
    return code, {
        "size": pool.size,
        "ready": ready,
        "failed": failed,
        "wall_s": round(wall, 1),
        "per_minute": round(60 * ready / wall, 1) if wall else None,
        "each_s": summary(seconds),  # from its row to ready, queueing included
    }


def claim_many(code: str, lab_id: str, count: int, parallel: int) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.db import connection

    from labapp.learning.models import Workshop
    from labapp.learning.services import lab_start, workshop_join
    from labapp.sandboxes.models import Sandbox

    workshop = Workshop.objects.get(join_code=code)
    users = []
    for number in range(count):
        user = User.objects.create_user(f"claimer{number}")
        workshop_join(user=user, join_code=code, display_name=f"Claimer {number}")
        users.append(user)
    seconds: list[float] = []
    lock = threading.Lock()

    def start(batch: list[User]) -> None:
        try:
            for user in batch:
                started = time.perf_counter()
                lab_start(user=user, lab_id=lab_id, workshop=workshop)
                elapsed = time.perf_counter() - started
                with lock:
                    seconds.append(elapsed)
        finally:
            connection.close()

    batches = [users[index::parallel] for index in range(parallel)]
    threads = [threading.Thread(target=start, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = Sandbox.objects.filter(owner__in=users)
    return {
        **summary(seconds, with_p99=True),
        "from_pool": got.filter(pool__isnull=False).count(),
        "ready_at_once": got.filter(state=Sandbox.State.READY).count(),
        "distinct": got.values("id").distinct().count(),
    }


def begin_over_http(code: str, lab_id: str, count: int, base_url: str) -> dict[str, Any]:
    import httpx
    from django.contrib.auth.models import User

    from labapp.learning.services import workshop_join
    from labapp.sandboxes.models import Sandbox

    seconds = []
    ready = 0
    for number in range(count):
        user = User.objects.create_user(f"clicker{number}")
        workshop_join(user=user, join_code=code, display_name=f"Clicker {number}")
        http = httpx.Client(base_url=base_url, timeout=60, cookies={"sessionid": session_for(user)})
        http.get("/")
        started = time.perf_counter()
        answer = http.post(
            f"/labs/{lab_id}/begin/", headers={"X-CSRFToken": http.cookies["csrftoken"]}
        )
        seconds.append(time.perf_counter() - started)
        assert answer.status_code in (200, 302), answer.text[:500]
        ready += Sandbox.objects.filter(owner=user, state=Sandbox.State.READY).count()
        http.close()
    return {**summary(seconds), "ready_at_once": ready}


def report(figures: dict[str, Any]) -> None:
    fill, claim = figures["fill"], figures["claim_s"]
    print(f"lab {figures['lab']}, pool of {fill['size']}, {figures['fill_concurrency']} at a time")
    print(
        f"  fill: {fill['ready']} ready, {fill['failed']} failed in {fill['wall_s']} s "
        f"({fill['per_minute']} per minute); each, row to ready: "
        f"p50 {fill['each_s']['p50']:.1f} s, p95 {fill['each_s']['p95']:.1f} s"
    )
    print(
        f"  claim (lab_start, {figures['parallel']} at once, n={claim['n']}): "
        f"p50 {claim['p50'] * 1000:.1f} ms, p95 {claim['p95'] * 1000:.1f} ms, "
        f"p99 {claim['p99'] * 1000:.1f} ms; {claim['from_pool']} from the pool, "
        f"{claim['ready_at_once']} ready at once, {claim['distinct']} distinct"
    )
    if "http_begin_s" in figures:
        http = figures["http_begin_s"]
        print(
            f"  POST /labs/{figures['lab']}/begin/ (n={http['n']}): "
            f"p50 {http['p50'] * 1000:.1f} ms, p95 {http['p95'] * 1000:.1f} ms; "
            f"{http['ready_at_once']} ready at once"
        )


if __name__ == "__main__":
    main()
