"""With LABAPP_LOG_FORMAT=json every line a Celery worker, beat or uvicorn writes is one
JSON object; beat's heartbeat makes its health check able to fail.

The processes are real: uvicorn serving the app, a Celery worker running a task, beat
ticking, each with its output captured.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery
from django.conf import settings

from labapp.ops.beat import heartbeat_age
from labapp.ops.devstack import free_port, port_open
from labapp.ops.jsonlog import UVICORN_LOG_CONFIG, JsonFormatter, uvicorn_formatter
from labapp.ops.waiting import wait_for


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "labapp.settings",
        "LABAPP_VAR_DIR": str(tmp_path / "var"),
        "LABAPP_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "LABAPP_LOG_FORMAT": "json",
        **extra,
    }


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line, parsed; a line that is not one JSON object fails the test."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\n--- whole output:\n{text[-4000:]}")
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    assert entries, "no output at all"
    return entries


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# -- uvicorn ------------------------------------------------------------------------------


def test_uvicorn_logs_json_lines_from_its_supervisor_workers_and_access_log(tmp_path: Path):
    port = free_port()
    log = tmp_path / "uvicorn.log"
    server = spawn(
        [
            *(sys.executable, "-m", "uvicorn", "labapp.asgi:application"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "2"),
            *("--log-config", str(UVICORN_LOG_CONFIG)),
        ],
        base_env(tmp_path),
        log,
    )
    try:
        wait_for(
            lambda: (
                server.poll() is not None or log.read_bytes().count(b"Application startup") >= 2
            ),
            timeout=90,
            interval=0.2,
            what="uvicorn's two workers",
        )
        assert server.poll() is None, log.read_text()
        assert port_open(port)
        response = httpx.get(f"http://127.0.0.1:{port}/healthz?from=test", timeout=10)
        assert response.status_code == 200
        wait_for(lambda: b"/healthz" in log.read_bytes(), timeout=10, what="the access line")
    finally:
        stop(server)
    entries = json_lines(log.read_text())
    messages = [entry["message"] for entry in entries]
    assert any(message.startswith("Started parent process") for message in messages)
    assert any(message.startswith("Started server process") for message in messages)
    [access] = [entry for entry in entries if entry["logger"] == "uvicorn.access"]
    assert access["status"] == 200
    assert access["path"] == "/healthz?from=test"
    assert access["method"] == "GET"


def test_uvicorn_keeps_its_own_format_with_text_logs(monkeypatch):
    monkeypatch.setenv("LABAPP_LOG_FORMAT", "text")
    from uvicorn.logging import AccessFormatter, DefaultFormatter

    assert isinstance(uvicorn_formatter("default"), DefaultFormatter)
    assert isinstance(uvicorn_formatter("access"), AccessFormatter)
    monkeypatch.setenv("LABAPP_LOG_FORMAT", "json")
    assert isinstance(uvicorn_formatter("default"), JsonFormatter)
    assert isinstance(uvicorn_formatter("access"), JsonFormatter)


def test_the_uvicorn_log_config_mirrors_uvicorn_s_own():
    from uvicorn.config import LOGGING_CONFIG

    config = json.loads(UVICORN_LOG_CONFIG.read_text())
    for key in ("loggers", "handlers"):
        assert config[key] == LOGGING_CONFIG[key], key
    for kind, formatter in config["formatters"].items():
        assert formatter == {"()": "labapp.ops.jsonlog.uvicorn_formatter", "kind": kind}


# -- Celery --------------------------------------------------------------------------------


@pytest.mark.cluster
def test_a_celery_worker_logs_json_lines_for_its_start_its_tasks_and_its_stop(
    tmp_path: Path, redis_server
):
    # A Redis database of its own: nothing else consumes or sends here.
    broker = redis_server.url.rsplit("/", 1)[0] + "/7"
    log = tmp_path / "worker.log"
    worker = spawn(
        [
            *(sys.executable, "-m", "celery", "-A", "labapp", "worker"),
            *("-Q", "interactive", "-c", "1", "-n", "jsonlogs@%h", "-l", "info"),
            *("--without-heartbeat", "--without-mingle", "--without-gossip"),
        ],
        base_env(tmp_path, REDIS_URL=broker),
        log,
    )
    try:
        wait_for(
            lambda: b" ready." in log.read_bytes() or worker.poll() is not None,
            timeout=90,
            interval=0.2,
            what="the worker",
        )
        assert worker.poll() is None, log.read_text()
        producer = Celery(broker=broker)
        producer.send_task("celery.accumulate", args=[1, 2], queue="interactive")
        wait_for(
            lambda: b"succeeded in" in log.read_bytes(),
            timeout=60,
            interval=0.2,
            what="the task to run",
        )
    finally:
        stop(worker)
    entries = json_lines(log.read_text())
    messages = [entry["message"] for entry in entries]
    [start] = [e for e in entries if re.fullmatch(r"worker jsonlogs@\S+ starting", e["message"])]
    assert start["queues"] == ["interactive"]
    assert any(message.endswith(" ready.") for message in messages)
    assert any("Task celery.accumulate[" in m and "succeeded in" in m for m in messages)
    assert not any("-------------- " in message for message in messages)  # no banner
    assert any(
        m == "worker jsonlogs@" + start["node"].split("@", 1)[1] + ": warm shutdown on SIGTERM"
        for m in messages
    )


@pytest.mark.cluster
def test_beat_logs_json_lines_and_keeps_a_heartbeat(tmp_path: Path, redis_server):
    broker = redis_server.url.rsplit("/", 1)[0] + "/8"
    heartbeat = tmp_path / "beat.heartbeat"
    env = base_env(
        tmp_path,
        REDIS_URL=broker,
        LABAPP_BEAT_HEARTBEAT_FILE=str(heartbeat),
        LABAPP_BEAT_HEARTBEAT_MAX_AGE="60",
    )

    def status() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "beat_status"],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    # Before beat runs (and before it could tick), there is no heartbeat.
    before = status()
    assert before.returncode == 1
    assert "beat has not ticked" in before.stderr
    log = tmp_path / "beat.log"
    beat = spawn(
        [
            *(sys.executable, "-m", "celery", "-A", "labapp", "--quiet", "beat"),
            *("-l", "info", "-s", str(tmp_path / "celerybeat-schedule")),
        ],
        env,
        log,
    )

    try:
        wait_for(
            lambda: heartbeat.exists() or beat.poll() is not None,
            timeout=60,
            interval=0.2,
            what="beat's first tick",
        )
        assert beat.poll() is None, log.read_text()
        wait_for(lambda: b"Sending due task" in log.read_bytes(), timeout=30, what="a due task")
        ticking = status()
        assert ticking.returncode == 0, ticking.stderr
        assert ticking.stdout.startswith("beat ticked ")
    finally:
        stop(beat)
    entries = json_lines(log.read_text())
    assert any("Sending due task" in e["message"] for e in entries)

    # A beat that stopped ticking (hung, or gone) fails its check.
    stale = time.time() - 300
    os.utime(heartbeat, (stale, stale))
    assert heartbeat_age(heartbeat) >= 299
    stopped = status()
    assert stopped.returncode == 1
    assert re.search(r"beat last ticked 3\d\ds ago \(more than 60s\)", stopped.stderr)


@pytest.mark.parametrize("log_format, receivers", [("text", 0), ("json", 1)])
def test_celery_keeps_its_own_format_with_text_logs(tmp_path: Path, log_format, receivers):
    """bench/tracking.py reads the worker's own text format: only JSON logs take it over."""
    script = (
        "import labapp.celery; from celery.signals import setup_logging; "
        "print(len(setup_logging.receivers))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env=base_env(tmp_path, LABAPP_LOG_FORMAT=log_format),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == receivers
