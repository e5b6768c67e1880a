"""Faults of the local control plane: taken ports, no Go, a killed apiserver, leaks.

These boot a second real cluster beside the session's, while the default
ports are held, so they also prove two clusters run side by side.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from labapp.clusters.localcluster import ClusterError, LocalCluster, Toolchain
from labapp.clusters.localcluster.cluster import DEFAULT_PORTS, ComponentStatus
from labapp.clusters.localcluster.processes import pids_mentioning
from tests.fixtures.cluster import make_kubectl

pytestmark = pytest.mark.cluster


@contextlib.contextmanager
def default_ports_held() -> Iterator[None]:
    held = []
    for port in DEFAULT_PORTS.values():
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            held.append(sock)
        except OSError:
            sock.close()  # already taken by someone else: just as good
    try:
        yield
    finally:
        for sock in held:
            sock.close()


@pytest.fixture(scope="module")
def second_cluster(
    tmp_path_factory, toolchain: Toolchain, local_cluster: LocalCluster
) -> Iterator[LocalCluster]:
    cluster = LocalCluster("faults", home=tmp_path_factory.mktemp("faults"), toolchain=toolchain)
    with default_ports_held():
        cluster.up(progress=lambda message: None)
    yield cluster
    cluster.down(progress=lambda message: None)


def _status(cluster: LocalCluster) -> dict[str, ComponentStatus]:
    return {row.name: row for row in cluster.status()}


def test_up_with_default_ports_taken_still_starts(second_cluster: LocalCluster) -> None:
    ports = second_cluster.ports()
    assert not set(ports.values()) & set(DEFAULT_PORTS.values())
    assert all(row.healthy for row in second_cluster.status())
    listed = make_kubectl(second_cluster.kubeconfig_path)("get", "namespaces", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert "namespace/kube-system" in listed.stdout


def test_killed_apiserver_is_reported_down_and_up_brings_it_back(
    second_cluster: LocalCluster, settings
) -> None:
    before = _status(second_cluster)["kube-apiserver"]
    os.kill(before.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _status(second_cluster)["kube-apiserver"].running and time.monotonic() < deadline:
        time.sleep(0.1)

    after_kill = _status(second_cluster)
    assert after_kill["kube-apiserver"].running is False
    assert after_kill["kube-apiserver"].healthy is False
    assert after_kill["etcd"].healthy is True

    # The command says so too, and exits non-zero.
    settings.LOCALCLUSTER_HOME = second_cluster.workdir.parent
    with pytest.raises(CommandError, match="not fully up"):
        call_command("localcluster", "status", "--name", "faults")

    others = {name: row.pid for name, row in after_kill.items() if name != "kube-apiserver"}
    second_cluster.up(progress=lambda message: None)
    restored = _status(second_cluster)
    assert all(row.healthy for row in restored.values())
    assert restored["kube-apiserver"].pid != before.pid
    assert restored["kube-apiserver"].port == before.port
    # Only the dead process was replaced.
    assert {name: restored[name].pid for name in others} == others


def test_data_survives_down_and_up(second_cluster: LocalCluster) -> None:
    kubectl = make_kubectl(second_cluster.kubeconfig_path)
    created = kubectl("create", "configmap", "survivor", "--from-literal=answer=42")
    assert created.returncode == 0, created.stderr
    second_cluster.down(progress=lambda message: None)
    second_cluster.up(progress=lambda message: None)
    kubectl = make_kubectl(second_cluster.kubeconfig_path)
    read = kubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.answer}")
    assert (read.returncode, read.stdout) == (0, "42")


def test_down_leaves_no_process_behind(second_cluster: LocalCluster) -> None:
    assert pids_mentioning(str(second_cluster.workdir))  # it is running now
    second_cluster.down(progress=lambda message: None)
    assert pids_mentioning(str(second_cluster.workdir)) == []
    assert not any(row.running for row in second_cluster.status())


def test_up_without_go_fails_at_once_naming_go(tmp_path: Path) -> None:
    env = {
        "PATH": str(tmp_path / "empty-bin"),
        "HOME": str(tmp_path),
        "LABAPP_LOCALCLUSTER_CACHE": str(tmp_path / "cache"),  # nothing built here
        "LABAPP_LOCALCLUSTER_HOME": str(tmp_path / "clusters"),
        "LABAPP_VAR_DIR": str(tmp_path / "var"),
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "manage.py", "localcluster", "up", "--name", "nogo"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Go 1.26.0 or newer is needed" in result.stderr
    assert "no `go` command is on PATH" in result.stderr
    assert time.monotonic() - started < 15
    assert pids_mentioning(str(tmp_path / "clusters")) == []


def test_a_reused_pid_is_never_taken_for_ours(tmp_path: Path, toolchain: Toolchain) -> None:
    cluster = LocalCluster("stale", home=tmp_path, toolchain=toolchain)
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        pids = cluster.workdir / "pids"
        pids.mkdir(parents=True)
        apiserver = toolchain.ensure().path("kube-apiserver")
        (pids / "kube-apiserver.pid").write_text(
            json.dumps({"pid": stranger.pid, "binary": str(apiserver)})
        )
        assert _status(cluster)["kube-apiserver"].running is False
        cluster.down(progress=lambda message: None)
        assert stranger.poll() is None  # down did not kill a process it did not start
    finally:
        stranger.kill()
        stranger.wait()


def test_invalid_cluster_name_is_refused(tmp_path: Path, toolchain: Toolchain) -> None:
    with pytest.raises(ClusterError, match="not valid"):
        LocalCluster("../etc", home=tmp_path, toolchain=toolchain)


class _BrokenKwokToolchain(Toolchain):
    """The real binaries, but a kwok config kwok refuses (kwok exits at start)."""

    def __init__(self, real: Toolchain, bad_config: Path) -> None:
        super().__init__(real.cache_dir)
        self._bad_config = bad_config

    def cached(self):
        binaries = super().cached()
        return binaries and dataclasses.replace(binaries, kwok_config=self._bad_config)

    def ensure(self, progress=print):
        return self.cached()


def test_a_failed_up_names_the_component_and_leaves_nothing_running(
    tmp_path: Path, toolchain: Toolchain
) -> None:
    bad = tmp_path / "kwok.yaml"
    bad.write_text("this: is not a stage\n")
    cluster = LocalCluster(
        "broken", home=tmp_path / "clusters", toolchain=_BrokenKwokToolchain(toolchain, bad)
    )
    with pytest.raises(ClusterError, match=r"kwok (exited during start-up|did not become)"):
        cluster.up(progress=lambda message: None)
    assert pids_mentioning(str(cluster.workdir)) == []


class _RelocatedToolchain(Toolchain):
    """The same binaries under another path, as after a pin change."""

    def __init__(self, real: Toolchain, where: Path) -> None:
        super().__init__(real.cache_dir)
        binaries = real.ensure()
        where.mkdir()
        for binary in binaries.directory.iterdir():
            (where / binary.name).symlink_to(binary)
        self._binaries = dataclasses.replace(binaries, directory=where)

    def cached(self):
        return self._binaries

    def ensure(self, progress=print):
        return self._binaries


def test_after_a_pin_change_up_replaces_the_old_processes(
    tmp_path: Path, toolchain: Toolchain
) -> None:
    home = tmp_path / "clusters"
    old = LocalCluster("pins", home=home, toolchain=toolchain)
    old.up(progress=lambda message: None)
    try:
        said: list[str] = []
        new = LocalCluster(
            "pins", home=home, toolchain=_RelocatedToolchain(toolchain, tmp_path / "new-bin")
        )
        new.up(progress=said.append)
        assert any(
            "restarting kube-apiserver" in line and "its binaries changed" in line for line in said
        )
        leftovers = [
            pid
            for pid in pids_mentioning(str(old.workdir))
            if str(toolchain.ensure().directory) in Path(f"/proc/{pid}/cmdline").read_text()
        ]
        assert leftovers == []  # nothing from the old binaries is still running
        assert all(row.healthy for row in new.status())
    finally:
        LocalCluster("pins", home=home, toolchain=toolchain).down(progress=lambda message: None)
    assert pids_mentioning(str(old.workdir)) == []
