"""The compose file, validated by the real Docker Compose CLI (no engine needed): the
topology it describes, with the example settings and with an external cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from labapp.environment import env_worker_concurrency, usable_cores

PLUGIN = Path.home() / ".docker" / "cli-plugins" / "docker-compose"
SERVICES = {
    *("web", "worker", "worker-slow", "provisioner", "tracker", "beat"),
    *("redis", "postgres", "localcluster"),
}
# The services that run the app and talk to the cluster.
APP = ("web", "worker", "worker-slow", "provisioner", "tracker", "beat")


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    docker = shutil.which("docker")
    if docker and PLUGIN.exists():
        argv = [docker, "compose", *args]
    elif PLUGIN.exists():
        argv = [str(PLUGIN), *args]  # the plugin also runs on its own
    else:
        pytest.fail("docker compose is missing; `make setup` builds it (scripts/ensure-compose.sh)")
    return subprocess.run(
        argv,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), **env},
        timeout=60,
    )


def example_env() -> dict[str, str]:
    example = (settings.BASE_DIR / ".env.example").read_text()
    return dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose("config", "--format", "json", env=example_env())
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def command_line(service: dict[str, Any]) -> str:
    """The service's command as one string (`$$` is compose's escape for `$`)."""
    return " ".join(service["command"]).replace("$$", "$")


def healthcheck_line(service: dict[str, Any]) -> str:
    return " ".join(service["healthcheck"]["test"]).replace("$$", "$")


def test_every_service_is_there(config):
    assert set(config["services"]) == SERVICES
    assert set(config["volumes"]) >= {"labapp-state", "redis-data", "postgres-data"}


def test_no_service_shares_another_s_network_namespace(config):
    for name, service in config["services"].items():
        assert "network_mode" not in service, f"{name} shares a network namespace"
        assert "hostname" not in service, f"{name} fixes its hostname (scaled copies clash)"


def test_the_app_reaches_the_control_plane_by_its_service_name(config):
    local = config["services"]["localcluster"]
    assert local["environment"]["LABAPP_LOCALCLUSTER_BIND"] == "0.0.0.0"
    assert "localcluster" in local["environment"]["LABAPP_LOCALCLUSTER_SANS"].split(",")
    assert "ports" not in local  # the API server is for the app's containers only
    for name in APP:
        service = config["services"][name]
        assert service["environment"]["LABAPP_LOCALCLUSTER_HOST"] == "localcluster", name
        assert service["depends_on"]["localcluster"]["condition"] == "service_healthy", name
        # The same state volume: the kubeconfig, its CA and client certificate are there.
        assert any(v["source"] == "labapp-state" for v in service["volumes"]), name
    assert not example_env()["LABAPP_KUBECONFIG"]  # the bundled control plane, by default


def test_the_control_plane_is_supervised(config):
    local = config["services"]["localcluster"]
    assert local["command"] == ["python", "manage.py", "localcluster", "run"]
    assert local["init"] is True
    assert local["restart"] == "unless-stopped"


def test_every_service_has_a_health_check_that_can_fail(config):
    checks = {name: healthcheck_line(s) for name, s in config["services"].items()}
    assert checks["web"] == "CMD python -m labapp.ops.healthcheck"  # labapp/ops/tests
    # A CMD-SHELL, so that $HOSTNAME is the container's own (the node name's %h).
    assert checks["worker"].startswith("CMD-SHELL ")
    assert "inspect ping -d worker@$HOSTNAME" in checks["worker"]
    assert "inspect ping -d slow@$HOSTNAME" in checks["worker-slow"]
    assert checks["provisioner"].startswith("CMD-SHELL ")
    assert "inspect ping -d provisioner@$HOSTNAME" in checks["provisioner"]
    assert checks["tracker"] == "CMD python manage.py tracker --status"
    assert checks["beat"] == "CMD python manage.py beat_status"
    assert checks["localcluster"] == "CMD python manage.py localcluster status"
    assert checks["redis"] == "CMD redis-cli ping"
    assert checks["postgres"] == "CMD pg_isready -U labapp"
    for name, check in checks.items():
        assert "os.kill(1, 0)" not in check, f"{name}'s check passes while the process lives"


def test_each_worker_gets_a_node_name_of_its_own(config):
    assert " -n worker@%h " in command_line(config["services"]["worker"]) + " "
    assert "-n provisioner@%h" in command_line(config["services"]["provisioner"])
    assert "-n slow@%h" in command_line(config["services"]["worker-slow"])


def test_every_queue_labapp_routes_to_has_a_worker_of_its_own(config):
    """Each lane of commands and provisioning: one service consumes it, and nothing else,
    so no kind of work waits for a slot behind another."""
    consumed = {}
    for name, service in config["services"].items():
        words = command_line(service).split() if service.get("command") else []
        if "worker" in words and "-Q" in words:
            consumed[name] = words[words.index("-Q") + 1].split(",")
    routed = {*settings.RUN_LANE_QUEUES.values(), "provisioning"}
    assert sorted(q for queues in consumed.values() for q in queues) == sorted(routed)
    assert all(len(queues) == 1 for queues in consumed.values())


@pytest.mark.parametrize("service, lane", [("worker", 0), ("worker-slow", 1)])
def test_each_lane_worker_is_sized_as_make_up_sizes_it(config, service, lane, tmp_path):
    """The service's own shell line, run here with `echo` in place of Celery: the
    size it passes is the one settings (and so `make up` and the bench) would use."""
    python = tmp_path / "python"  # this virtualenv's, as the image's is on its PATH
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    line = config["services"][service]["command"][-1].replace("$$", "$")
    assert "exec python -m celery" in line
    line = line.replace("exec python -m celery", "echo")
    cores = usable_cores()
    sizes = {"LABAPP_WORKER_CONCURRENCY": "3", "LABAPP_SLOW_WORKER_CONCURRENCY": "5"}
    for environ in ({}, sizes):
        ran = subprocess.run(
            ["sh", "-c", line],
            env={"PATH": f"{tmp_path}:/usr/bin:/bin", **environ},
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, ran.stderr
        words = ran.stdout.split()
        assert words[words.index("-c") + 1] == str(env_worker_concurrency(cores, environ)[lane])


def test_the_tracker_and_beat_are_there_once(config):
    assert config["services"]["tracker"]["command"] == ["python", "manage.py", "tracker"]
    beat = config["services"]["beat"]
    assert "beat" in beat["command"]
    assert beat["environment"]["LABAPP_BEAT_HEARTBEAT_FILE"].startswith("/tmp/")
    for name in ("tracker", "beat"):
        assert config["services"][name].get("deploy", {}).get("replicas", 1) == 1


def test_web_publishes_its_port_and_logs_json_lines(config):
    web = config["services"]["web"]
    [port] = web["ports"]
    assert (port["target"], port["published"], port["host_ip"]) == (8000, "8000", "127.0.0.1")
    assert "--log-config labapp/ops/uvicorn_logging.json" in command_line(web)
    # Shell scripts in commands are one line: a line break would end the command early.
    for name, service in config["services"].items():
        if (service.get("command") or [None])[0] == "sh":
            assert "\n" not in service["command"][2], name


def test_docker_compose_config_names_a_missing_password():
    result = compose("config", env={})
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def test_an_external_cluster_replaces_the_local_one(tmp_path: Path):
    """docs/operations.md: kind (or EKS) with the override files, COMPOSE_PROFILES empty."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    env = {**example_env(), "COMPOSE_PROFILES": "", "KUBECONFIG_ON_HOST": str(kubeconfig)}
    result = compose(
        *("-f", "docker-compose.yml", "-f", "deploy/compose/external-cluster.yml"),
        *("-f", "deploy/compose/kind.yml", "config", "--format", "json"),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert set(config["services"]) == SERVICES - {"localcluster"}
    for name in APP:
        service = config["services"][name]
        assert service["environment"]["LABAPP_KUBECONFIG"] == "/etc/labapp/kubeconfig"
        [mount] = [v for v in service["volumes"] if v["target"] == "/etc/labapp/kubeconfig"]
        assert (mount["source"], mount["read_only"]) == (str(kubeconfig), True)
        assert set(service["networks"]) == {"default", "kind"}
    assert config["networks"]["kind"]["external"] is True

    missing = compose(
        *("-f", "docker-compose.yml", "-f", "deploy/compose/external-cluster.yml", "config"),
        env={**example_env(), "COMPOSE_PROFILES": ""},
    )
    assert missing.returncode != 0
    assert "set KUBECONFIG_ON_HOST in .env" in missing.stderr
