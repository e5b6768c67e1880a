"""Sandbox provisioning time, and a command's latency through the whole path
(HTTP POST -> Celery worker -> restricted shell -> kubectl -> Redis -> SSE)
against the same kubectl run bare, side by side in one run.

Self-contained: boots its own control plane, Redis, worker and uvicorn in a
temporary folder. Figures, not a timed test.

    .venv/bin/python bench/runner_latency.py [--learners 50] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import ROOT, bench_stack, session_for, summary

if TYPE_CHECKING:  # imported for real only after django.setup()
    from django.contrib.auth.models import User

    from labapp.sandboxes.models import Sandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/runner_latency.json")
    args = parser.parse_args()

    with bench_stack(concurrency=args.workers) as bench:
        figures = {"learners": args.learners, "runs": args.runs, "workers": args.workers}
        figures["provisioning_s"], learner, sandbox = provision_many(args.learners)
        figures.update(latency(learner, sandbox, bench.url, args.runs))
    report(figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))


def provision_many(count: int) -> tuple[dict[str, float], User, Sandbox]:
    from django.contrib.auth.models import User

    from labapp.sandboxes.models import Sandbox
    from labapp.sandboxes.services import sandbox_create

    started = time.monotonic()
    sandboxes = [
        sandbox_create(owner=User.objects.create_user(f"learner{i}"), lab_id="pss-baseline")
        for i in range(count)
    ]
    pending = {s.id for s in sandboxes}
    while pending and time.monotonic() - started < 900:
        done = Sandbox.objects.filter(id__in=pending).exclude(state=Sandbox.State.PROVISIONING)
        pending -= {s.id for s in done}
        time.sleep(0.2)
    wall = time.monotonic() - started
    final = list(Sandbox.objects.filter(id__in=[s.id for s in sandboxes]))
    ready = [s for s in final if s.state == Sandbox.State.READY]
    # Queueing counts: a learner waits from their click to a ready sandbox.
    seconds = [(s.ready_at - s.created_at).total_seconds() for s in ready if s.ready_at]
    result = {**summary(seconds), "wall_s": round(wall, 1), "failed": len(final) - len(ready)}
    owner = ready[0].owner
    assert owner is not None  # made for a learner, never pooled
    return result, owner, ready[0]


def latency(user: User, sandbox: Sandbox, base_url: str, runs: int) -> dict[str, Any]:
    import httpx

    from labapp.clusters.tools import default_tools
    from labapp.sandboxes.services import sandbox_materialize

    http = httpx.Client(base_url=base_url, timeout=60, cookies={"sessionid": session_for(user)})
    http.get("/")
    csrf = http.cookies["csrftoken"]
    namespace = sandbox.namespaces["assets"]
    command = f"kubectl -n {namespace} get pods"
    first_byte, done_at = [], []
    for _ in range(runs + 1):  # the first is a warm-up (kubectl discovery cache)
        t0 = time.monotonic()
        posted = http.post(
            f"/sandboxes/{sandbox.slug}/runs/",
            data={"command": command},
            headers={"X-CSRFToken": csrf, "HX-Request": "true"},
        )
        found = re.search(r'id="run-(\d+)"', posted.text)
        assert found, "no run in the response"
        run_id = found.group(1)
        first = None
        with http.stream("GET", f"/runs/{run_id}/stream/?format=json") as response:
            for line in response.iter_lines():
                if line.startswith("event: stdout") and first is None:
                    first = time.monotonic() - t0
                if line.startswith("event: done"):
                    break
        first_byte.append(first if first is not None else float("nan"))
        done_at.append(time.monotonic() - t0)
    sandbox_materialize(sandbox=sandbox)
    bare_first, bare_done = bare_kubectl(
        default_tools().kubectl, sandbox.kubeconfig_path, sandbox.workspace, namespace, runs + 1
    )
    path = {
        "click_to_first_byte_s": summary(first_byte[1:]),
        "click_to_done_s": summary(done_at[1:]),
    }
    bare = {"first_byte_s": summary(bare_first[1:]), "done_s": summary(bare_done[1:])}
    return {
        "path": path,
        "bare_kubectl": bare,
        "ratio_first_byte_p50": round(
            path["click_to_first_byte_s"]["p50"] / bare["first_byte_s"]["p50"], 2
        ),
        "ratio_done_p50": round(path["click_to_done_s"]["p50"] / bare["done_s"]["p50"], 2),
    }


def bare_kubectl(
    kubectl: Path, kubeconfig: Path, workdir: Path, namespace: str, runs: int
) -> tuple[list[float], list[float]]:
    env = {
        "KUBECONFIG": str(kubeconfig),
        "HOME": str(workdir),
        "PATH": "/nonexistent",
        "KUBECACHEDIR": str(workdir / ".kube" / "cache"),
    }
    first: list[float] = []
    done: list[float] = []
    for _ in range(runs):
        t0 = time.monotonic()
        process = subprocess.Popen(
            [str(kubectl), "-n", namespace, "get", "pods"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=workdir,
        )
        assert process.stdout is not None
        process.stdout.read(1)
        first.append(time.monotonic() - t0)
        process.communicate()
        done.append(time.monotonic() - t0)
    return first, done


def report(figures: dict) -> None:
    prov = figures["provisioning_s"]
    print(
        f"\nsandbox provisioning, {figures['learners']} learners at once, "
        f"{figures['workers']} worker processes:"
    )
    print(
        f"  click to ready   p50 {prov['p50']:.2f}s   p95 {prov['p95']:.2f}s   "
        f"(all ready after {prov['wall_s']:.1f}s; failed: {prov['failed']})"
    )
    path, bare = figures["path"], figures["bare_kubectl"]
    print(f"\n`kubectl get pods`, {figures['runs']} runs each (after one warm-up):")
    print(f"  {'':<28}{'p50':>9}{'p95':>9}")
    rows = [
        ("whole path: first byte", path["click_to_first_byte_s"]),
        ("whole path: done", path["click_to_done_s"]),
        ("bare kubectl: first byte", bare["first_byte_s"]),
        ("bare kubectl: done", bare["done_s"]),
    ]
    for name, values in rows:
        print(f"  {name:<28}{values['p50'] * 1000:>7.0f}ms{values['p95'] * 1000:>7.0f}ms")
    print(
        f"  overhead ratio (p50): first byte {figures['ratio_first_byte_p50']}x, "
        f"done {figures['ratio_done_p50']}x"
    )


if __name__ == "__main__":
    main()
