"""The web tier's CPU per request: what uvicorn spends on each page a learner's browser
asks for, side by side with the same view run in this process (Django's test client,
no server, no ASGI) and with the request chain as it was before SyncRequestChain
(Django's middleware then ran async, hopping to a thread at every step).

Self-contained: boots its own control plane, Redis, workers and uvicorn in a temporary
folder, starts one learner on the Baseline lab (a real sandbox), then asks each page
`--requests` times, one at a time, from a keep-alive client, and runs a `kubectl get` a
quarter as often (its POST, then its output stream read to the end). Server CPU is read from
/proc for each uvicorn process (one worker each, so one process serves). The client
runs on the same machine; its own CPU is reported. Figures, not a timed test.

    .venv/bin/python bench/web_cost.py [--requests 200]
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import re
import resource
import time
from pathlib import Path
from typing import Any

from harness import ROOT, bench_stack, session_for
from probes import proc_cpu

LAB = "pss-baseline"
BENCH_DIR = Path(__file__).resolve().parent
# A settings module that drops SyncRequestChain: the chain as it was (bench-only).
HOPPING_SETTINGS = "web_cost_hopping"
# 286 is htmx's "stop polling": the sandbox status answers it once the sandbox is ready.
ANSWERED = (200, 286)
RUN = "a get: POST and output stream"
STREAM_URL = re.compile(r'sse-connect="(/runs/\d+/stream/[^"]*)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="per page and server")
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/web_cost.json")
    args = parser.parse_args()
    with bench_stack(web_workers=1) as bench:
        cookie, pages, sandbox = learner_pages()
        hopping_url, hopping = start_hopping_server(bench)
        servers = {
            "uvicorn": (bench.url, uvicorn_pid(bench.stack)),
            "before": (hopping_url, hopping.pid),
        }
        figures: dict[str, Any] = {"requests": args.requests, "pages": {}}
        client_cpu_before = own_cpu()
        for name, path in pages.items():
            row = {"in_process_ms": in_process_ms(cookie, path, args.requests)}
            for server, (url, pid) in servers.items():
                row[f"{server}_ms"] = server_ms(url, pid, cookie, path, args.requests)
            row["uvicorn_over_in_process"] = round(row["uvicorn_ms"] / row["in_process_ms"], 2)
            row["before_over_now"] = round(row["before_ms"] / row["uvicorn_ms"], 2)
            figures["pages"][name] = row
            print(f"  {name}: {row}", flush=True)
        # A command: its POST and its output stream read to `done`, as the run panel
        # does. The worker's and kubectl's CPU are not uvicorn's and are not counted.
        runs = max(1, args.requests // 4)
        row = {
            f"{server}_ms": runs_ms(url, pid, cookie, sandbox, runs)
            for server, (url, pid) in servers.items()
        }
        row["before_over_now"] = round(row["before_ms"] / row["uvicorn_ms"], 2)
        figures["pages"][RUN] = row
        figures["runs"] = runs
        figures["client_cpu_s"] = round(own_cpu() - client_cpu_before, 2)
    report(figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))


def learner_pages() -> tuple[str, dict[str, str], Any]:
    """A learner on the lab with a ready sandbox, and the pages their browser asks for."""
    from django.contrib.auth.models import User

    from labapp.learning.services import lab_start
    from labapp.sandboxes.models import Sandbox

    user = User.objects.create_user("web-cost-learner")
    lab_start(user=user, lab_id=LAB)
    deadline = time.monotonic() + 300
    while not Sandbox.objects.filter(owner=user, state=Sandbox.State.READY).exists():
        if time.monotonic() > deadline:
            raise SystemExit("the learner's sandbox was not ready within 300 s")
        time.sleep(0.5)
    static = next((ROOT / "static" / "css").glob("*.css")).name
    pages = {
        "liveness (/healthz)": "/healthz",
        "static file": f"/static/css/{static}",
        "sandbox status": f"/labs/{LAB}/sandbox/",
        "step list refresh": f"/labs/{LAB}/refresh/",
        "lab page": f"/labs/{LAB}/",
    }
    sandbox = Sandbox.objects.get(owner=user, state=Sandbox.State.READY)
    return session_for(user), pages, sandbox


def start_hopping_server(bench: Any) -> tuple[str, Any]:
    from labapp.ops.devstack import Stack, free_port

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": HOPPING_SETTINGS,
        "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(ROOT)]),
    }
    stack = Stack(env, bench.home / "logs-hopping")
    port = free_port()
    server = stack.start_uvicorn(port, workers=1)
    bench.stack.processes.append(server)  # stopped with the rest of the stack
    return f"http://127.0.0.1:{port}", server


def uvicorn_pid(stack: Any) -> int:
    return next(p.pid for p in stack.processes if "uvicorn" in p.args)


def in_process_ms(cookie: str, path: str, count: int) -> float:
    from django.test import Client

    client = Client(headers={"HX-Request": "true"}, HTTP_HOST="localhost")
    client.cookies["sessionid"] = cookie
    for _ in range(5):
        client.get(path)
    started = time.process_time()
    for _ in range(count):
        answer = client.get(path)
        assert answer.status_code in ANSWERED, (path, answer.status_code)
    return round(1000 * (time.process_time() - started) / count, 2)


def server_ms(url: str, pid: int, cookie: str, path: str, count: int) -> float:
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    with httpx.Client(
        base_url=url, cookies={"sessionid": cookie}, headers={"HX-Request": "true"}
    ) as client:
        for _ in range(5):
            client.get(path)
        before = proc_cpu(pid)
        for _ in range(count):
            answer = client.get(path)
            assert answer.status_code in ANSWERED, (path, answer.status_code)
        return round(1000 * (proc_cpu(pid) - before) / count, 2)


def runs_ms(url: str, pid: int, cookie: str, sandbox: Any, count: int) -> float:
    import httpx

    command = f"kubectl -n {sandbox.namespaces['assets']} get pods"
    with httpx.Client(base_url=url, cookies={"sessionid": cookie}, timeout=60) as client:
        client.get("/")
        csrf = client.cookies["csrftoken"]
        for _ in range(2):
            run_once(client, sandbox.slug, command, csrf)
        before = proc_cpu(pid)
        for _ in range(count):
            run_once(client, sandbox.slug, command, csrf)
        return round(1000 * (proc_cpu(pid) - before) / count, 2)


def run_once(client: Any, slug: str, command: str, csrf: str) -> None:
    posted = client.post(
        f"/sandboxes/{slug}/runs/",
        data={"command": command},
        headers={"X-CSRFToken": csrf, "HX-Request": "true"},
    )
    assert posted.status_code == 202, posted.status_code
    found = STREAM_URL.search(posted.text)
    assert found, "no output stream in the run panel"
    with client.stream("GET", html.unescape(found.group(1))) as stream:
        for line in stream.iter_lines():
            if line == "event: done":
                return
    raise AssertionError("the stream ended without `done`")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report(figures: dict[str, Any]) -> None:
    print(
        f"\nweb tier CPU per request, ms ({figures['requests']} requests of each page, "
        f"{figures['runs']} runs; one at a time)"
    )
    print(f"  {'page':30s} {'in process':>10s} {'uvicorn':>8s} {'as before':>10s}  before/now")
    for name, row in figures["pages"].items():
        in_process = row.get("in_process_ms")
        print(
            f"  {name:30s} {'' if in_process is None else f'{in_process:.2f}':>10s} "
            f"{row['uvicorn_ms']:8.2f} {row['before_ms']:10.2f}  {row['before_over_now']:.2f}x"
        )
    print(f"  the client's own CPU: {figures['client_cpu_s']} s")


if __name__ == "__main__":
    main()
