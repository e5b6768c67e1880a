"""The stack a benchmark measures, self-contained in a temporary folder:
its own control plane, Redis, SQLite, Celery workers, beat and uvicorn.
Also the percentile helpers every benchmark prints with."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported for real only after django.setup()
    from django.contrib.auth.models import User

    from labapp.clusters.localcluster import LocalCluster
    from labapp.ops.devstack import RedisServer, Stack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float], *, with_p99: bool = False) -> dict[str, float]:
    result = {
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
        "n": len(values),
    }
    if with_p99:
        result["p99"] = round(percentile(values, 99), 4)
    return result


def session_for(user: User) -> str:
    """A signed-in session cookie for `user`, as the login form would give."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@dataclass
class Bench:
    home: Path
    url: str
    stack: Stack
    cluster: LocalCluster
    redis: RedisServer


@contextmanager
def bench_stack(
    *,
    workers: int = 1,
    concurrency: int = 2,
    beat: bool = False,
    extra_env: dict[str, str] | None = None,
    web_workers: int = 1,
    provisioning_concurrency: int = 2,
    slow_concurrency: int = 0,
) -> Iterator[Bench]:
    """`slow_concurrency`: processes of a worker of its own for the slow lane, as
    `make up` runs it; 0 runs both lanes in the same worker(s)."""
    home = Path(tempfile.mkdtemp(prefix="labapp-bench-"))
    from labapp.ops.devstack import RedisServer, free_port

    redis_server = RedisServer(free_port(), home)
    redis_server.start()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "labapp.settings",
            "LABAPP_VAR_DIR": str(home / "var"),
            "LABAPP_SANDBOX_HOME": str(home / "sandboxes"),
            "LABAPP_LOCALCLUSTER_HOME": str(home / "clusters"),
            "LABAPP_LOCALCLUSTER_NAME": "bench",
            "REDIS_URL": redis_server.url,
            # One load generator is many learners behind one address, faster than people.
            "LABAPP_RATELIMITS": "false",
            **(extra_env or {}),
        }
    )
    (home / "var").mkdir()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from labapp.clusters.config import local_cluster
    from labapp.ops.devstack import Stack

    cluster = local_cluster()
    cluster.up(progress=lambda message: None)
    os.environ["LABAPP_KUBECONFIG"] = str(cluster.kubeconfig_path)
    settings.KUBECONFIG = str(cluster.kubeconfig_path)
    call_command("migrate", verbosity=0)
    stack = Stack(dict(os.environ), home / "logs")
    try:
        # Clicks never wait behind provisioning: each queue has its own workers.
        lanes = "interactive" if slow_concurrency else "interactive,slow"
        for index in range(workers):
            stack.start_worker(f"bench{index}", concurrency=concurrency, queues=lanes)
        if slow_concurrency:
            stack.start_worker("slow", concurrency=slow_concurrency, queues="slow")
        stack.start_worker(
            "provisioning", concurrency=provisioning_concurrency, queues="provisioning"
        )
        if beat:
            stack.start_beat()
        stack.start_tracker()
        port = free_port()
        stack.start_uvicorn(port, workers=web_workers)
        yield Bench(home, f"http://127.0.0.1:{port}", stack, cluster, redis_server)
    finally:
        stack.stop_all()
        cluster.down(progress=lambda message: None)
        redis_server.stop()
