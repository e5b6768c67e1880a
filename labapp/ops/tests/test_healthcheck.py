"""The web container's health check passes against the production profile (allowed
hosts that exclude 127.0.0.1, the HTTPS redirect on) and fails when nothing answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from labapp.ops.devstack import free_port, port_open
from labapp.ops.healthcheck import host_for
from labapp.ops.waiting import wait_for

PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "a-test-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
    "DJANGO_ALLOWED_HOSTS": "lab.example.org",
    "DJANGO_SECURE_SSL_REDIRECT": "true",
}


def check(url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labapp.ops.healthcheck", url],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_host_for_allowed_hosts():
    assert host_for(["lab.example.org", "other.example.org"]) == "lab.example.org"
    assert host_for([".example.org"]) == "example.org"
    assert host_for(["*"]) == "localhost"
    assert host_for([]) == "localhost"


def test_the_health_check_passes_on_the_production_profile_and_fails_when_down(tmp_path: Path):
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "LABAPP_VAR_DIR": str(tmp_path),
        **PRODUCTION,
    }
    log = tmp_path / "uvicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "labapp.asgi:application"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        wait_for(lambda: port_open(port) or server.poll() is not None, timeout=60, what="uvicorn")
        assert server.poll() is None, log.read_text()
        healthy = check(url, env)
        assert healthy.returncode == 0, healthy.stderr
        # What it guards against: a Host the site does not allow (127.0.0.1) gets a 400.
        plain = check(url, {**env, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,lab.example.org"})
        assert plain.returncode == 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    down = check(url, env)
    assert down.returncode == 1
    assert "unhealthy" in down.stderr
