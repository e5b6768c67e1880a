"""/healthz answers while the process lives; /readyz names what is not ready."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from labapp.learning.tracker import Tracker
from labapp.live.streams import TRACKER_HEARTBEAT, sync_client
from labapp.ops.jsonlog import JsonFormatter
from tests.fixtures.cluster import write_unreachable_kubeconfig
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.django_db


@pytest.mark.cluster
def test_readyz_is_ok_with_database_redis_cluster_and_a_ticking_tracker(
    admin_client, settings, redis_server, local_cluster
):
    settings.KUBECONFIG = str(local_cluster.kubeconfig_path)
    sync_client().delete(TRACKER_HEARTBEAT)  # no tracker has reported
    response = admin_client.get("/readyz")  # staff see the checks
    body = response.json()
    # Serving, but checks would not tick: degraded, never taken out of rotation.
    assert (response.status_code, body["status"]) == (200, "degraded"), body
    assert body["checks"]["cluster"]["detail"].endswith("v1.37.2")
    assert set(body["checks"]) == {"database", "redis", "cluster", "tracker"}
    assert body["checks"]["tracker"] == {
        "ok": False,
        "detail": "no heartbeat in the last 30 s: checks will not tick",
    }

    tracker = Tracker(local_cluster.kubeconfig_path)
    tracker.start()
    try:
        body = wait_for(
            lambda: (b := admin_client.get("/readyz").json())["status"] == "ok" and b,
            timeout=15,
            what="the tracker's heartbeat",
        )
    finally:
        tracker.stop.set()
    assert body["checks"]["tracker"]["ok"] is True
    assert body["checks"]["tracker"]["detail"].startswith("watching Namespace")


def test_readyz_names_each_dependency_that_is_down(
    admin_client, client, settings, tmp_path, unused_tcp_port
):
    settings.REDIS_URL = f"redis://127.0.0.1:{unused_tcp_port}/0"
    settings.KUBECONFIG = str(write_unreachable_kubeconfig(tmp_path / "kc", unused_tcp_port))
    response = admin_client.get("/readyz")  # staff see the checks, without addresses
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["redis"] == {"ok": False, "detail": "could not connect"}
    assert checks["cluster"]["ok"] is False
    assert "could not be reached" in checks["cluster"]["detail"]
    assert client.get("/healthz").json() == {"status": "ok"}


def production_env(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "lab.example.org",
        **extra,
    }


def test_the_production_profile_passes_check_deploy():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=django_settings.BASE_DIR,
        env=production_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_without_a_secret_key_refuses_to_start():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set" in result.stderr


def test_logs_are_one_json_object_per_line():
    record = logging.makeLogRecord(
        {
            "name": "labapp.runs",
            "levelname": "WARNING",
            "msg": "run %s lost",
            "args": (7,),
            "run_id": 7,
        }
    )
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"], line["run_id"]) == (
        "warning",
        "labapp.runs",
        "run 7 lost",
        7,
    )
