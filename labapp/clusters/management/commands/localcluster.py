"""`manage.py localcluster up|run|down|status|kubeconfig|build [--name NAME]`."""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labapp.clusters.config import local_cluster
from labapp.clusters.localcluster import LocalCluster, LocalClusterError


class Command(BaseCommand):
    help = (
        "Run a real local Kubernetes control plane (etcd, apiserver, KCM, scheduler, KWOK). "
        "`run` stays in the foreground, restarts a component that dies, and stops them all "
        "on Ctrl-C or SIGTERM (the localcluster container runs it)."
    )
    # It runs the control plane, not the site: its health check (`status`) must stay
    # cheap, and a lab with a problem must not keep the cluster down.
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action", choices=["up", "run", "down", "status", "kubeconfig", "build"]
        )
        parser.add_argument(
            "--name",
            default=None,
            help="cluster name (default: LABAPP_LOCALCLUSTER_NAME or 'default')",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=5.0,
            help="run: seconds between two rounds of health checks (default 5)",
        )

    def handle(
        self, *args: object, action: str, name: str | None, interval: float, **options: object
    ) -> None:
        try:
            cluster = local_cluster(name)
            if action == "up":
                cluster.up(progress=self._say)
            elif action == "run":
                self._run(cluster, interval)
            elif action == "down":
                cluster.down(progress=self._say)
            elif action == "build":
                binaries = cluster.toolchain.ensure(progress=self._say)
                self._say(f"Kubernetes {binaries.kube_version} binaries: {binaries.directory}")
            elif action == "kubeconfig":
                self.stdout.write(str(cluster.kubeconfig_path_for(settings.LOCALCLUSTER_HOST)))
            else:
                self._status(cluster)
        except LocalClusterError as exc:
            raise CommandError(str(exc)) from exc

    def _run(self, cluster: LocalCluster, interval: float) -> None:
        """Up, then supervised until SIGTERM or Ctrl-C; then every component is stopped
        (etcd cleanly: its data stays for the next run)."""

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            cluster.supervise(progress=self._say, interval=interval)
        except KeyboardInterrupt:
            self._say("stopping")
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                cluster.down(progress=self._say)
            finally:
                signal.signal(signal.SIGTERM, previous)

    def _say(self, message: str) -> None:
        self.stderr.write(f"[localcluster] {message}")
        self.stderr.flush()

    def _status(self, cluster: LocalCluster) -> None:
        rows = cluster.status()
        self.stdout.write(f"{'COMPONENT':<25}{'PID':>8}{'PORT':>7}  {'STATE':<9}{'RSS MiB':>8}")
        for row in rows:
            state = "healthy" if row.healthy else ("unhealthy" if row.running else "down")
            rss = f"{row.rss_mib:.0f}" if row.rss_mib else "-"
            self.stdout.write(
                f"{row.name:<25}{row.pid or '-':>8}{row.port or '-':>7}  {state:<9}{rss:>8}"
            )
        if not all(row.healthy for row in rows):
            raise CommandError(f"cluster {cluster.name!r} is not fully up")
