"""`manage.py runlab`: the whole lab on one machine, for `make up`.

Starts what is missing (the local control plane unless LABAPP_KUBECONFIG is
set, Redis if REDIS_URL does not answer), then Celery workers, beat,
the tracker and uvicorn, and stops them all on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import time
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labapp.clusters.config import local_cluster
from labapp.clusters.localcluster import LocalClusterError
from labapp.ops.devstack import RedisServer, Stack, redis_pings


class Command(BaseCommand):
    help = "Run the lab: control plane, Redis, workers, beat, the tracker and the web server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.WORKER_CONCURRENCY,
            help="processes of the worker that runs learners' quick commands "
            "(default LABAPP_WORKER_CONCURRENCY: twice the cores)",
        )
        parser.add_argument(
            "--slow-workers",
            type=int,
            default=settings.SLOW_WORKER_CONCURRENCY,
            help="processes of the worker that runs learners' slow commands: apply, "
            "delete, wait, rollout, exec (default LABAPP_SLOW_WORKER_CONCURRENCY: six per core)",
        )
        parser.add_argument(
            "--web-workers",
            type=int,
            default=settings.WEB_WORKERS,
            help="uvicorn worker processes (default LABAPP_WEB_WORKERS: one per core)",
        )

    def handle(
        self,
        *args: object,
        host: str,
        port: int,
        workers: int,
        slow_workers: int,
        web_workers: int,
        **options: object,
    ) -> None:
        say = self.stderr.write
        env = {**os.environ}
        if not settings.KUBECONFIG:
            try:
                cluster = local_cluster()
                cluster.up(progress=lambda message: say(f"[localcluster] {message}"))
            except LocalClusterError as exc:
                raise CommandError(str(exc)) from exc
            env["LABAPP_KUBECONFIG"] = str(cluster.kubeconfig_path)
        logs = settings.VAR_DIR / "logs"
        stack = Stack(env, logs)
        redis_server = None
        if not redis_pings(settings.REDIS_URL):
            url = urlparse(settings.REDIS_URL)
            if url.hostname not in ("127.0.0.1", "localhost"):
                raise CommandError(f"Redis at {settings.REDIS_URL} does not answer")
            say(f"[runlab] starting redis-server on port {url.port or 6379}")
            (settings.VAR_DIR / "redis").mkdir(parents=True, exist_ok=True)
            redis_server = RedisServer(url.port or 6379, settings.VAR_DIR / "redis")
            redis_server.start()
        try:
            # Clicks never wait behind provisioning, nor quick commands behind slow
            # ones: each queue has its own workers (settings.RUN_LANE_QUEUES).
            stack.start_worker("runlab", concurrency=workers, queues="interactive")
            stack.start_worker("slow", concurrency=slow_workers, queues="slow")
            stack.start_worker("provisioning", concurrency=1, queues="provisioning")
            stack.start_beat()
            stack.start_tracker()
            stack.start_uvicorn(port, host, workers=web_workers)
            say(f"[runlab] labapp is up: http://{host}:{port}/  (logs in {logs}; Ctrl-C stops)")
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
            while all(process.poll() is None for process in stack.processes):
                time.sleep(1)
            raise CommandError(f"a process of the lab stopped; see the logs in {logs}")
        except KeyboardInterrupt:
            say("[runlab] stopping")
        finally:
            stack.stop_all()
            if redis_server:
                redis_server.stop()
