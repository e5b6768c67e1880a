"""The local control plane on a network: loopback by default; with a bind address and
extra certificate names (compose: 0.0.0.0 and `localcluster`) the API server answers
by that name; and `localcluster run` keeps every component up.

The supervised cluster is booted the way the localcluster container boots it:
`manage.py localcluster run` with LABAPP_LOCALCLUSTER_BIND and _SANS, in a process of
its own, beside the session's cluster.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from django.conf import settings

from labapp.clusters.localcluster import ClusterError, LocalCluster, Toolchain
from labapp.clusters.localcluster.cluster import COMPONENTS
from labapp.clusters.localcluster.pki import ClusterPKI, certificate_names
from labapp.clusters.localcluster.processes import listening_addresses, pids_mentioning
from labapp.ops.waiting import wait_for
from tests.fixtures.cluster import make_kubectl

SANS = ("localcluster", "labapp.test")


def _listeners(cluster: LocalCluster) -> dict[str, set[str]]:
    """Component name -> the addresses its process listens on."""
    return {
        row.name: {address for address, _ in listening_addresses(row.pid)}
        for row in cluster.status()
        if row.pid
    }


def _served_certificate(port: int) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _handshake(cluster: LocalCluster, port: int, server_name: str) -> None:
    """A TLS handshake to 127.0.0.1:port that checks the certificate names server_name."""
    context = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name),
    ):
        pass


# -- the default: loopback only ------------------------------------------------------


@pytest.mark.cluster
def test_by_default_every_component_listens_on_loopback_only(local_cluster: LocalCluster):
    assert local_cluster.bind_address == "127.0.0.1"
    listeners = _listeners(local_cluster)
    assert set(listeners) == {component.name for component in COMPONENTS}
    for name, addresses in listeners.items():
        assert addresses == {"127.0.0.1"}, f"{name} listens on {addresses}"
    server = yaml.safe_load(local_cluster.kubeconfig_path.read_text())["clusters"][0]
    assert server["cluster"]["server"].startswith("https://127.0.0.1:")
    assert not list(local_cluster.workdir.glob("admin@*.kubeconfig"))


# -- a bind address and extra names: `localcluster run` as compose runs it --------------


@dataclass
class Supervised:
    cluster: LocalCluster
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_idle(self) -> None:
        """Until the supervisor's last recovery has ended: it walks every component
        after the ones that failed, and one that a test stops meanwhile would be
        restarted by that walk, not by the supervisor's own health checks."""
        wait_for(
            lambda: (
                self.log_text()
                .rstrip()
                .splitlines()[-1]
                .endswith(f"is ready: KUBECONFIG={self.cluster.kubeconfig_path}")
            ),
            timeout=60,
            interval=0.25,
            what="the supervisor to finish its recovery",
        )


@pytest.fixture(scope="module")
def supervised(tmp_path_factory, toolchain: Toolchain) -> Iterator[Supervised]:
    home = tmp_path_factory.mktemp("supervised")
    cluster = LocalCluster(
        "supervised", home=home, toolchain=toolchain, bind_address="0.0.0.0", extra_sans=SANS
    )
    log = home / "run.log"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LABAPP_VAR_DIR": str(home / "var"),
        "LABAPP_LOCALCLUSTER_HOME": str(home),
        "LABAPP_LOCALCLUSTER_CACHE": str(toolchain.cache_dir),
        "LABAPP_LOCALCLUSTER_BIND": "0.0.0.0",
        "LABAPP_LOCALCLUSTER_SANS": ",".join(SANS),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "manage.py", "localcluster", "run"),
                *("--name", "supervised", "--interval", "1"),
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Supervised(cluster, process, log)
    try:
        wait_for(
            lambda: "is ready" in running.log_text() or process.poll() is not None,
            timeout=240,
            interval=0.5,
            what="`localcluster run` to boot the cluster",
        )
        assert process.poll() is None, running.log_text()[-3000:]
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        cluster.down(progress=lambda message: None)


@pytest.mark.cluster
def test_the_served_certificate_carries_the_extra_names(supervised: Supervised):
    port = supervised.cluster.ports()["kube-apiserver"]
    served = _served_certificate(port)
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localcluster", "labapp.test"} <= set(names.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    # A client that checks names accepts it as `localcluster`, and nothing else.
    _handshake(supervised.cluster, port, "localcluster")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(supervised.cluster, port, "elsewhere.example")


@pytest.mark.cluster
def test_the_api_server_alone_listens_beyond_loopback(supervised: Supervised):
    listeners = _listeners(supervised.cluster)
    assert listeners["kube-apiserver"] <= {"0.0.0.0", "::"}, listeners
    for name in ("etcd", "kube-controller-manager", "kube-scheduler", "kwok"):
        assert listeners[name] == {"127.0.0.1"}, f"{name} listens on {listeners[name]}"


@pytest.mark.cluster
def test_the_kubeconfig_for_the_service_name_works(supervised: Supervised):
    cluster = supervised.cluster
    port = cluster.ports()["kube-apiserver"]
    path = cluster.kubeconfig_path_for("localcluster")
    assert path.name == "admin@localcluster.kubeconfig"
    config = yaml.safe_load(path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == f"https://localcluster:{port}"
    # No DNS for `localcluster` here: reach 127.0.0.1, and check the name it is served by.
    kubectl = make_kubectl(path)
    ready = kubectl(
        "--server", f"https://127.0.0.1:{port}", "--tls-server-name", "localcluster",
        "get", "--raw", "/readyz",
    )  # fmt: skip
    assert (ready.returncode, ready.stdout) == (0, "ok"), ready.stderr
    # This machine's own kubeconfig still names loopback.
    local = yaml.safe_load(cluster.kubeconfig_path.read_text())["clusters"][0]["cluster"]
    assert local["server"] == f"https://127.0.0.1:{port}"


@pytest.mark.cluster
def test_a_component_that_dies_is_started_again(supervised: Supervised):
    cluster = supervised.cluster
    before = {row.name: row for row in cluster.status()}
    victims = ("kube-apiserver", "kube-scheduler")
    for name in victims:
        os.kill(before[name].pid, signal.SIGKILL)

    def restored() -> bool:
        rows = {row.name: row for row in cluster.status()}
        return all(rows[name].healthy and rows[name].pid != before[name].pid for name in victims)

    wait_for(restored, timeout=120, interval=0.5, what="the supervisor to restart them")
    after = {row.name: row for row in cluster.status()}
    assert all(row.healthy for row in after.values())
    # The others were left alone, and the API server kept its port.
    for name in ("etcd", "kube-controller-manager", "kwok"):
        assert after[name].pid == before[name].pid
    assert after["kube-apiserver"].port == before["kube-apiserver"].port
    # Both were killed at once: the supervisor may see either die first; one recovery
    # (an `up`) starts whatever is down.
    log = supervised.log_text()
    assert "is not running; starting it again" in log
    for name in victims:
        assert log.count(f"starting {name} on ") == 2, log
    assert supervised.process.poll() is None


@pytest.mark.cluster
def test_a_component_that_hangs_is_restarted(supervised: Supervised):
    cluster = supervised.cluster
    supervised.wait_idle()
    before = {row.name: row.pid for row in cluster.status()}
    os.kill(before["kwok"], signal.SIGSTOP)  # alive, but it answers nothing
    try:
        wait_for(
            lambda: any(
                row.name == "kwok" and row.healthy and row.pid != before["kwok"]
                for row in cluster.status()
            ),
            timeout=120,
            interval=0.5,
            what="the supervisor to replace the hung kwok",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(before["kwok"], signal.SIGCONT)
    assert "kwok failed 3 health checks in a row; restarting it" in supervised.log_text()
    after = {row.name: row.pid for row in cluster.status()}
    assert {k: v for k, v in after.items() if k != "kwok"} == {
        k: v for k, v in before.items() if k != "kwok"
    }


@pytest.mark.cluster
def test_sigterm_stops_every_component(supervised: Supervised):
    assert pids_mentioning(str(supervised.cluster.workdir))
    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.process.wait(timeout=90) == 0, supervised.log_text()[-3000:]
    assert pids_mentioning(str(supervised.cluster.workdir)) == []
    assert "is down" in supervised.log_text()


# -- without booting --------------------------------------------------------------------


def test_the_serving_certificate_follows_the_configured_names(tmp_path: Path):
    ClusterPKI(tmp_path).ensure()
    ca = (tmp_path / "ca.crt").read_bytes()
    admin = (tmp_path / "admin.crt").read_bytes()
    assert x509.DNSName("localcluster") not in certificate_names(tmp_path / "serving.crt")

    ClusterPKI(tmp_path, ("localcluster", "10.1.2.3")).ensure()
    names = certificate_names(tmp_path / "serving.crt")
    assert x509.DNSName("localcluster") in names
    assert x509.IPAddress(ipaddress.ip_address("10.1.2.3")) in names
    assert x509.DNSName("kubernetes.default.svc") in names  # the usual ones stay
    # Same CA and admin identity: clients keep working.
    assert (tmp_path / "ca.crt").read_bytes() == ca
    assert (tmp_path / "admin.crt").read_bytes() == admin

    issued = (tmp_path / "serving.crt").read_bytes()
    ClusterPKI(tmp_path, ("localcluster", "10.1.2.3")).ensure()
    assert (tmp_path / "serving.crt").read_bytes() == issued  # nothing changed: kept
    ClusterPKI(tmp_path).ensure()
    assert x509.DNSName("localcluster") not in certificate_names(tmp_path / "serving.crt")


def test_bad_bind_addresses_and_names_are_refused(tmp_path: Path):
    toolchain = Toolchain(tmp_path / "cache")
    with pytest.raises(ClusterError, match="not an IP address"):
        LocalCluster("x", home=tmp_path, toolchain=toolchain, bind_address="localcluster")
    with pytest.raises(ClusterError, match="neither an IP address nor"):
        LocalCluster("x", home=tmp_path, toolchain=toolchain, extra_sans=("Bad_Name!",))


def test_kubeconfig_paths_per_name(tmp_path: Path):
    cluster = LocalCluster("x", home=tmp_path, toolchain=Toolchain(tmp_path / "cache"))
    for loopback in ("", "127.0.0.1", "localhost"):
        assert cluster.kubeconfig_path_for(loopback) == cluster.kubeconfig_path
    assert cluster.kubeconfig_path_for("localcluster") == (
        tmp_path / "x" / "admin@localcluster.kubeconfig"
    )


def test_the_app_finds_the_local_cluster_by_its_service_name(settings, tmp_path: Path):
    from labapp.clusters.config import admin_kubeconfig

    settings.KUBECONFIG = ""
    settings.LOCALCLUSTER_HOME = tmp_path
    settings.LOCALCLUSTER_NAME = "default"
    settings.LOCALCLUSTER_HOST = ""
    assert admin_kubeconfig() == tmp_path / "default" / "admin.kubeconfig"
    settings.LOCALCLUSTER_HOST = "localcluster"
    assert admin_kubeconfig() == tmp_path / "default" / "admin@localcluster.kubeconfig"
    settings.KUBECONFIG = "/etc/labapp/kubeconfig"  # an external cluster wins
    assert admin_kubeconfig() == Path("/etc/labapp/kubeconfig")


def test_a_bad_bind_setting_stops_start_up():
    result = subprocess.run(
        [sys.executable, "-c", "import labapp.settings"],
        cwd=settings.BASE_DIR,
        env={"PATH": os.environ["PATH"], "LABAPP_LOCALCLUSTER_BIND": "everywhere"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "LABAPP_LOCALCLUSTER_BIND='everywhere' is not an IP address" in result.stderr
