"""The compose file, validated by the real Docker Compose CLI (no engine needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

PLUGIN = Path.home() / ".docker" / "cli-plugins" / "docker-compose"
SERVICES = {"web", "worker", "provisioner", "tracker", "beat", "redis", "postgres", "localcluster"}


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


def test_docker_compose_config_accepts_the_file_with_the_example_settings():
    example = (settings.BASE_DIR / ".env.example").read_text()
    env = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    result = compose("config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert set(config["services"]) == SERVICES
    for name, service in config["services"].items():
        assert "healthcheck" in service, f"{name} has no health check"
    for name in ("web", "worker", "provisioner", "tracker", "beat"):
        assert config["services"][name]["network_mode"] == "service:localcluster"
    assert config["services"]["localcluster"]["ports"][0]["target"] == 8000
    assert set(config["volumes"]) >= {"labapp-state", "redis-data", "postgres-data"}


def test_docker_compose_config_names_a_missing_password():
    result = compose("config", env={})
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr
