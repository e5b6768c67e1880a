"""One named local cluster: its folder, its processes, and its lifecycle.

Layout of `<home>/<name>/`: pki/, etcd/ (data, kept across down/up),
logs/<component>.log, pids/<component>.pid, ports.json, admin.kubeconfig
(naming 127.0.0.1), and admin@<name>.kubeconfig for each extra name the API
server's certificate carries (naming that name: e.g. `localcluster`, the compose
service, for the containers that reach it over the network).

Everything listens on 127.0.0.1 unless `bind_address` says otherwise; then the
API server alone listens there (etcd, the controller manager, the scheduler and
KWOK stay on loopback).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from labapp.clusters.localcluster import processes
from labapp.clusters.localcluster.audit import LOG_FILE as AUDIT_LOG_FILE
from labapp.clusters.localcluster.build import Binaries, Progress, Toolchain
from labapp.clusters.localcluster.errors import ClusterError
from labapp.clusters.localcluster.flags import component_args
from labapp.clusters.localcluster.pki import ClusterPKI, san_entry

NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
NODE_NAME = "kwok-node-0"
LOOPBACK = "127.0.0.1"
# A running component that answers its health check badly gets this long to recover
# before `up` restarts it (an API server waits for a restarted etcd, for instance).
UNHEALTHY_GRACE_SECONDS = 10.0

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
    def __init__(
        self,
        name: str,
        *,
        home: Path,
        toolchain: Toolchain,
        bind_address: str = LOOPBACK,
        extra_sans: tuple[str, ...] = (),
    ) -> None:
        if not NAME_PATTERN.match(name):
            raise ClusterError(
                f"Cluster name {name!r} is not valid: use 1-40 lower-case letters, "
                "digits and dashes, starting and ending with a letter or digit."
            )
        try:
            bind = ipaddress.ip_address(bind_address)
        except ValueError:
            raise ClusterError(
                f"bind address {bind_address!r} is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)"
            ) from None
        for extra in extra_sans:
            try:
                san_entry(extra)
            except ValueError as exc:
                raise ClusterError(f"extra certificate name: {exc}") from None
        self.name = name
        self.workdir = home / name
        self.toolchain = toolchain
        self.bind_address = str(bind)
        self.extra_sans = tuple(extra_sans)
        # Where this machine's own clients reach the API server: loopback, unless it
        # listens on one particular other address.
        if bind.is_unspecified or bind.is_loopback:
            self.local_address = "::1" if bind.version == 6 else LOOPBACK
        else:
            self.local_address = self.bind_address
        self.pki = ClusterPKI(self.workdir / "pki", self.extra_sans)

    # -- paths ---------------------------------------------------------------
    @property
    def kubeconfig_path(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    def kubeconfig_path_for(self, host: str) -> Path:
        """The admin kubeconfig naming `host` (one of the extra certificate names):
        for clients on other machines or containers. Empty or loopback: the usual one."""
        if host in ("", "localhost", LOOPBACK, "::1"):
            return self.kubeconfig_path
        return self.workdir / f"admin@{host}.kubeconfig"

    def _pid_path(self, component: str) -> Path:
        return self.workdir / "pids" / f"{component}.pid"

    def log_path(self, component: str) -> Path:
        return self.workdir / "logs" / f"{component}.log"

    @property
    def audit_log_path(self) -> Path:
        return self.workdir / AUDIT_LOG_FILE

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
        ports = processes.pick_ports(wanted, keep, {"kube-apiserver": self.bind_address})
        moved = {key for key in ports if old_ports.get(key) != ports[key]}
        for key in sorted(moved & set(old_ports)):
            progress(f"port {old_ports[key]} for {key} is taken; using {ports[key]}")
        self._ports_path.write_text(json.dumps(ports, indent=2))
        self._write_kubeconfigs(ports["kube-apiserver"])

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
            # Flags or certificates changed (a new bind address or certificate name):
            # a pid file from before this was recorded counts as current.
            configured = found and found.config in (
                None,
                self._config_digest(component, binaries, ports),
            )
            if (
                found
                and current
                and configured
                and not upstream_moved
                and self._healthy_within(component, ports, UNHEALTHY_GRACE_SECONDS)
            ):
                progress(f"{component.name} is already running (pid {found.pid})")
                continue
            if found:
                why = (
                    "its binaries changed"
                    if not current
                    else "its flags or certificate changed"
                    if not configured
                    else "a component it uses moved port"
                    if upstream_moved
                    else "it is unhealthy"
                )
                progress(f"restarting {component.name} (pid {found.pid}): {why}")
                self._stop(component.name)
            started.append(component.name)
            self._start(component, binaries, ports, progress)

    def supervise(
        self,
        progress: Progress = print,
        *,
        interval: float = 5.0,
        unhealthy_limit: int = 3,
        max_failures: int = 5,
        stop: threading.Event | None = None,
    ) -> None:
        """Bring the cluster up, then keep it up until `stop` is set (or the caller is
        interrupted): a component that exits is started again, and one that fails
        `unhealthy_limit` health checks in a row is restarted. After `max_failures`
        failed recoveries in a row it gives up with ClusterError, so that whatever
        runs this (a container's restart policy) can take over."""
        stop = stop or threading.Event()
        self.up(progress)
        strikes = {component.name: 0 for component in COMPONENTS}
        failures = 0
        while not stop.wait(interval if not failures else min(60.0, interval * 2**failures)):
            ports = self.ports()
            down = [c.name for c in COMPONENTS if not self._running(c)]
            for component in COMPONENTS:
                healthy = component.name not in down and self._healthy(component, ports)
                strikes[component.name] = 0 if healthy else strikes[component.name] + 1
            sick = [n for n, k in strikes.items() if n not in down and k >= unhealthy_limit]
            if not down and not sick:
                continue
            for name in down:
                progress(f"{name} is not running; starting it again")
            for name in sick:
                progress(f"{name} failed {strikes[name]} health checks in a row; restarting it")
                self._stop(name)
            try:
                self.up(progress)
            except ClusterError as exc:
                failures += 1
                progress(f"recovery {failures} of {max_failures} failed: {exc}")
                if failures >= max_failures:
                    raise ClusterError(
                        f"cluster {self.name!r} could not be kept up: {failures} recoveries "
                        f"in a row failed; the last: {exc}"
                    ) from exc
                continue
            failures = 0
            strikes = dict.fromkeys(strikes, 0)

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

    def _config_digest(
        self, component: Component, binaries: Binaries, ports: dict[str, int]
    ) -> str:
        """What a component was started with: its flags, and the serving certificate
        for the two that serve it. A change means a restart."""
        digest = hashlib.sha256()
        digest.update("\0".join(self._args(component.name, binaries, ports)).encode())
        if component.name in ("kube-apiserver", "kwok") and self.pki.serving_cert.exists():
            digest.update(self.pki.serving_cert.read_bytes())
        return digest.hexdigest()[:16]

    def _healthy_within(self, component: Component, ports: dict[str, int], grace: float) -> bool:
        deadline = time.monotonic() + grace
        while not self._healthy(component, ports):
            if time.monotonic() >= deadline or not self._running(component):
                return False
            time.sleep(0.25)
        return True

    def _stop(self, name: str) -> None:
        recorded = processes.read_pid(self._pid_path(name))
        if recorded:
            processes.stop(recorded.pid, recorded.binary)
        self._pid_path(name).unlink(missing_ok=True)

    def _start(
        self, component: Component, binaries: Binaries, ports: dict[str, int], progress: Progress
    ) -> None:
        host = self.bind_address if component.name == "kube-apiserver" else LOOPBACK
        progress(f"starting {component.name} on {_host_port(host, ports[component.owns[0]])}")
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
            config=self._config_digest(component, binaries, ports),
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
            url = f"https://{_host_port(self.local_address, port)}/readyz"
            return processes.http_ok(url, self._client_tls())
        if component.name == "kwok":
            return processes.http_ok(f"http://127.0.0.1:{port}/healthz")
        # Controller manager and scheduler serve /healthz over a self-signed cert.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        return processes.http_ok(f"https://127.0.0.1:{port}/healthz", insecure)

    def _args(self, name: str, binaries: Binaries, ports: dict[str, int]) -> list[str]:
        return component_args(
            name,
            workdir=self.workdir,
            pki=self.pki,
            kubeconfig=self.kubeconfig_path,
            bind_address=self.bind_address,
            binaries=binaries,
            ports=ports,
        )

    def _write_kubeconfigs(self, apiserver_port: int) -> None:
        """admin.kubeconfig for this machine, and one per extra certificate name;
        those of names no longer configured are removed."""
        self._write_kubeconfig(
            self.kubeconfig_path, f"https://{_host_port(self.local_address, apiserver_port)}"
        )
        wanted = {self.kubeconfig_path_for(host) for host in self.extra_sans}
        wanted.discard(self.kubeconfig_path)
        for path in wanted:
            host = path.name.removeprefix("admin@").removesuffix(".kubeconfig")
            self._write_kubeconfig(path, f"https://{_host_port(host, apiserver_port)}")
        for stale in self.workdir.glob("admin@*.kubeconfig"):
            if stale not in wanted:
                stale.unlink(missing_ok=True)

    def _write_kubeconfig(self, path: Path, server: str) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": self.name,
                    "cluster": {
                        "server": server,
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
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.chmod(0o600)
        tmp.replace(path)

    def _bootstrap(self, progress: Progress) -> None:
        from labapp.clusters.localcluster.bootstrap import ensure_node_and_default_account

        ensure_node_and_default_account(self.kubeconfig_path, NODE_NAME, progress)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
