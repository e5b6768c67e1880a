"""One named local cluster: its folder, its processes, and its lifecycle.

Layout of `<home>/<name>/`: pki/, etcd/ (data, kept across down/up),
logs/<component>.log, pids/<component>.pid, ports.json, admin.kubeconfig.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from labapp.clusters.localcluster import processes
from labapp.clusters.localcluster.build import Binaries, Progress, Toolchain
from labapp.clusters.localcluster.errors import ClusterError
from labapp.clusters.localcluster.pki import ClusterPKI

NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
NODE_NAME = "kwok-node-0"
SERVICE_CIDR = "10.96.0.0/16"

DEFAULT_PORTS = {
    "etcd": 2379,
    "etcd-peer": 2380,
    "kube-apiserver": 6443,
    "kube-controller-manager": 10257,
    "kube-scheduler": 10259,
    "kwok": 10247,
}


@dataclass(frozen=True)
class Component:
    name: str
    owns: tuple[str, ...]  # port keys it listens on; the first is its health port
    uses: tuple[str, ...]  # port keys of other components it connects to
    ready_timeout: float


# Start order. Stop order is the reverse.
COMPONENTS = (
    Component("etcd", ("etcd", "etcd-peer"), (), 30),
    Component("kube-apiserver", ("kube-apiserver",), ("etcd",), 120),
    Component("kube-controller-manager", ("kube-controller-manager",), ("kube-apiserver",), 60),
    Component("kube-scheduler", ("kube-scheduler",), ("kube-apiserver",), 60),
    Component("kwok", ("kwok",), ("kube-apiserver",), 60),
)


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    port: int | None
    running: bool
    healthy: bool
    rss_mib: float | None


class LocalCluster:
    def __init__(self, name: str, *, home: Path, toolchain: Toolchain) -> None:
        if not NAME_PATTERN.match(name):
            raise ClusterError(
                f"Cluster name {name!r} is not valid: use 1-40 lower-case letters, "
                "digits and dashes, starting and ending with a letter or digit."
            )
        self.name = name
        self.workdir = home / name
        self.toolchain = toolchain
        self.pki = ClusterPKI(self.workdir / "pki")

    # -- paths ---------------------------------------------------------------
    @property
    def kubeconfig_path(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    def _pid_path(self, component: str) -> Path:
        return self.workdir / "pids" / f"{component}.pid"

    def log_path(self, component: str) -> Path:
        return self.workdir / "logs" / f"{component}.log"

    @property
    def _ports_path(self) -> Path:
        return self.workdir / "ports.json"

    def ports(self) -> dict[str, int]:
        try:
            ports: dict[str, int] = json.loads(self._ports_path.read_text())
            return ports
        except (OSError, ValueError):
            return {}

    # -- lifecycle -----------------------------------------------------------
    def up(self, progress: Progress = print) -> None:
        binaries = self.toolchain.ensure(progress)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki.ensure()
        # Two clusters booting at once (parallel test sessions) would both see the
        # usual ports free and both take them: choosing and binding is one step.
        with processes.ports_lock():
            self._up_locked(binaries, progress)
        progress(f"cluster {self.name!r} is ready: KUBECONFIG={self.kubeconfig_path}")

    def _up_locked(self, binaries: Binaries, progress: Progress) -> None:
        running = {c.name for c in COMPONENTS if self._running(c)}
        old_ports = self.ports()
        wanted = {key: old_ports.get(key, DEFAULT_PORTS[key]) for key in DEFAULT_PORTS}
        keep = {key for c in COMPONENTS if c.name in running for key in c.owns}
        ports = processes.pick_ports(wanted, keep)
        moved = {key for key in ports if old_ports.get(key) != ports[key]}
        for key in sorted(moved & set(old_ports)):
            progress(f"port {old_ports[key]} for {key} is taken; using {ports[key]}")
        self._ports_path.write_text(json.dumps(ports, indent=2))
        self._write_kubeconfig(ports["kube-apiserver"])

        started: list[str] = []
        try:
            self._start_missing(binaries, ports, moved, started, progress)
            self._bootstrap(progress)
        except BaseException:
            # Leave nothing half-started behind: stop what this call started.
            for name in reversed(started):
                self._stop(name)
            raise

    def _start_missing(
        self,
        binaries: Binaries,
        ports: dict[str, int],
        moved: set[str],
        started: list[str],
        progress: Progress,
    ) -> None:
        for component in COMPONENTS:
            found = self._running(component)
            # A restarted upstream on the same port is fine: clients reconnect.
            # One that moved to a new port needs its dependents restarted.
            upstream_moved = any(key in moved for key in component.uses)
            current = found and found.binary == binaries.path(component.name)
            if found and current and not upstream_moved and self._healthy(component, ports):
                progress(f"{component.name} is already running (pid {found.pid})")
                continue
            if found:
                why = (
                    "its binaries changed"
                    if not current
                    else "a component it uses moved port"
                    if upstream_moved
                    else "it is unhealthy"
                )
                progress(f"restarting {component.name} (pid {found.pid}): {why}")
                self._stop(component.name)
            started.append(component.name)
            self._start(component, binaries, ports, progress)

    def down(self, progress: Progress = print) -> None:
        for component in reversed(COMPONENTS):
            found = self._running(component)
            if found:
                progress(f"stopping {component.name} (pid {found.pid})")
            self._stop(component.name)
        progress(f"cluster {self.name!r} is down; its data stays in {self.workdir}")

    def status(self) -> list[ComponentStatus]:
        ports = self.ports()
        report = []
        for component in COMPONENTS:
            found = self._running(component)
            pid = found.pid if found else None
            report.append(
                ComponentStatus(
                    name=component.name,
                    pid=pid,
                    port=ports.get(component.owns[0]),
                    running=pid is not None,
                    healthy=bool(pid) and self._healthy(component, ports),
                    rss_mib=processes.rss_mib(pid) if pid else None,
                )
            )
        return report

    # -- internals -----------------------------------------------------------
    def _running(self, component: Component) -> processes.Recorded | None:
        return processes.running(self._pid_path(component.name))

    def _stop(self, name: str) -> None:
        recorded = processes.read_pid(self._pid_path(name))
        if recorded:
            processes.stop(recorded.pid, recorded.binary)
        self._pid_path(name).unlink(missing_ok=True)

    def _start(
        self, component: Component, binaries: Binaries, ports: dict[str, int], progress: Progress
    ) -> None:
        progress(f"starting {component.name} on 127.0.0.1:{ports[component.owns[0]]}")
        binary = binaries.path(component.name)
        argv = [str(binary), *self._args(component.name, binaries, ports)]
        # kwok reads ~/.kwok/kwok.yaml unless told otherwise: keep it to our folder.
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "KWOK_WORKDIR": str(self.workdir / "kwok"),
        }
        pid = processes.spawn(
            argv,
            log_path=self.log_path(component.name),
            pid_path=self._pid_path(component.name),
            cwd=self.workdir,
            env=env,
        ).pid
        started = time.monotonic()
        deadline = started + component.ready_timeout
        while time.monotonic() < deadline:
            if not processes.is_running(pid, binary):
                raise ClusterError(
                    f"{component.name} exited during start-up; last lines of "
                    f"{self.log_path(component.name)}:\n{self._log_tail(component.name)}"
                )
            if self._healthy(component, ports):
                progress(f"{component.name} is healthy after {time.monotonic() - started:.1f}s")
                return
            time.sleep(0.25)
        raise ClusterError(
            f"{component.name} did not become healthy within {component.ready_timeout:.0f}s; "
            f"see {self.log_path(component.name)}:\n{self._log_tail(component.name)}"
        )

    def _log_tail(self, component: str, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path(component).read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _client_tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def _healthy(self, component: Component, ports: dict[str, int]) -> bool:
        port = ports[component.owns[0]]
        if component.name == "etcd":
            return processes.http_ok(f"http://127.0.0.1:{port}/health")
        if component.name == "kube-apiserver":
            return processes.http_ok(f"https://127.0.0.1:{port}/readyz", self._client_tls())
        if component.name == "kwok":
            return processes.http_ok(f"http://127.0.0.1:{port}/healthz")
        # Controller manager and scheduler serve /healthz over a self-signed cert.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        return processes.http_ok(f"https://127.0.0.1:{port}/healthz", insecure)

    def _args(self, name: str, binaries: Binaries, ports: dict[str, int]) -> list[str]:
        wd, pki, kubeconfig = self.workdir, self.pki, str(self.kubeconfig_path)
        if name == "etcd":
            client = f"http://127.0.0.1:{ports['etcd']}"
            peer = f"http://127.0.0.1:{ports['etcd-peer']}"
            return [
                "--name=node0",
                f"--data-dir={wd / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=node0={peer}",
                "--auto-compaction-retention=1",
                # A lab sandbox, not a bank: skip fsync for speed on shared disks.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ]
        if name == "kube-apiserver":
            # Admission plugins stay at their defaults: that keeps PodSecurity on.
            return [
                f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--secure-port={ports['kube-apiserver']}",
                f"--cert-dir={wd / 'apiserver'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                "--profiling=false",
            ]
        if name in ("kube-controller-manager", "kube-scheduler"):
            args = [
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports[name]}",
                f"--cert-dir={wd / name}",
                "--leader-elect=false",
                "--profiling=false",
            ]
            if name == "kube-controller-manager":
                args += [
                    f"--root-ca-file={pki.ca_cert}",
                    f"--service-account-private-key-file={pki.sa_key}",
                    "--use-service-account-credentials=true",
                ]
            return args
        if name == "kwok":
            # No Exec/Attach/PortForward rules, ever: they would run learner
            # commands on this host. Only the stage config is given.
            return [
                f"--kubeconfig={kubeconfig}",
                f"--config={binaries.kwok_config}",
                "--manage-all-nodes=true",
                "--node-ip=127.0.0.1",
                "--node-name=localhost",
                f"--node-port={ports['kwok']}",
                f"--server-address=127.0.0.1:{ports['kwok']}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                "--node-lease-duration-seconds=40",
                "--cidr=10.244.0.0/16",
            ]
        raise ValueError(name)

    def _write_kubeconfig(self, apiserver_port: int) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": self.name,
                    "cluster": {
                        "server": f"https://127.0.0.1:{apiserver_port}",
                        "certificate-authority": str(self.pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(self.pki.admin_cert),
                        "client-key": str(self.pki.admin_key),
                    },
                }
            ],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": "admin"}}],
            "current-context": self.name,
        }
        tmp = self.kubeconfig_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.chmod(0o600)
        tmp.replace(self.kubeconfig_path)

    def _bootstrap(self, progress: Progress) -> None:
        from labapp.clusters.localcluster.bootstrap import ensure_node_and_default_account

        ensure_node_and_default_account(self.kubeconfig_path, NODE_NAME, progress)
