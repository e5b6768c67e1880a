"""The app's own processes on one machine: Redis, Celery workers and beat, the
tracker, uvicorn. Used by `manage.py runlab` (`make up`), the end-to-end tests and the
benchmarks, so all three run the same stack the same way."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import redis

from labapp.ops.jsonlog import UVICORN_LOG_CONFIG
from labapp.ops.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def combined_lab_root(dest: Path, *roots: Path) -> Path:
    """One lab root that holds the labs of several (as symlinks): for processes that
    serve both the shipped labs and the test labs (the test session's, a benchmark's)."""
    dest.mkdir(parents=True, exist_ok=True)
    for root in roots:
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and not (dest / entry.name).exists():
                (dest / entry.name).symlink_to(entry)
    return dest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def redis_pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@dataclass
class RedisServer:
    """A private redis-server without persistence (a restart loses everything)."""

    port: int
    workdir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: redis_pings(self.url), timeout=10, interval=0.05, what="redis-server")

    def stop(self) -> None:
        if self.process:
            kill_group(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    process.wait(timeout=30)


@dataclass
class Stack:
    """Processes sharing one environment; each in its own process group."""

    env: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def spawn(self, argv: list[str], log_name: str, **extra_env: str) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / log_name, "wb") as out:
            process = subprocess.Popen(
                argv,
                cwd=REPO,
                env={**self.env, **extra_env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def start_worker(
        self,
        name: str,
        *,
        concurrency: int = 2,
        queues: str = "interactive,slow,provisioning",
        **extra_env: str,
    ) -> subprocess.Popen:
        log = f"worker-{name}.log"
        worker = self.spawn(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "labapp",
                "worker",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "info",
            ],
            log,
            **extra_env,
        )
        wait_for(
            lambda: b" ready." in (self.logs / log).read_bytes() or worker.poll() is not None,
            timeout=60,
            interval=0.1,
            what=f"celery worker {name}",
        )
        if worker.poll() is not None:
            raise RuntimeError(f"worker {name} exited: {(self.logs / log).read_text()[-2000:]}")
        return worker

    def start_beat(self) -> subprocess.Popen:
        schedule = self.logs / "celerybeat-schedule"
        return self.spawn(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "labapp",
                # No banner (printed, not logged): every line is a log line.
                "--quiet",
                "beat",
                "-l",
                "info",
                "-s",
                str(schedule),
            ],
            "beat.log",
        )

    def start_tracker(self, log_name: str = "tracker.log") -> subprocess.Popen:
        """The tracker; returns once its caches have listed and it judges."""
        tracker = self.spawn([sys.executable, "manage.py", "tracker"], log_name)
        wait_for(
            lambda: b"judging" in (self.logs / log_name).read_bytes() or tracker.poll() is not None,
            timeout=90,
            interval=0.1,
            what="the tracker",
        )
        if tracker.poll() is not None:
            raise RuntimeError(f"the tracker exited: {(self.logs / log_name).read_text()[-2000:]}")
        return tracker

    def start_uvicorn(
        self, port: int, host: str = "127.0.0.1", *, workers: int = 1
    ) -> subprocess.Popen:
        """uvicorn with `workers` processes (they share nothing but the database
        and Redis, so any of them can serve any request and any stream)."""
        server = self.spawn(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "labapp.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-access-log",
                # Pages hold their SSE channel open for as long as they are open: on
                # a stop, wait this long for them, then close them (browsers reconnect).
                "--timeout-graceful-shutdown",
                "5",
                # JSON lines under LABAPP_LOG_FORMAT=json, like the rest of the stack.
                "--log-config",
                str(UVICORN_LOG_CONFIG),
            ],
            "uvicorn.log",
        )
        wait_for(
            lambda: port_open(port, host) or server.poll() is not None,
            timeout=30,
            interval=0.1,
            what="uvicorn",
        )
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited: {(self.logs / 'uvicorn.log').read_text()[-2000:]}")
        return server

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            kill_group(process, signal.SIGTERM if process.poll() is None else signal.SIGKILL)
        self.processes.clear()
