"""Which cluster this deployment talks to, read from settings."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from labapp.clusters.localcluster import LocalCluster, Toolchain


def local_cluster(name: str | None = None) -> LocalCluster:
    return LocalCluster(
        name or settings.LOCALCLUSTER_NAME,
        home=settings.LOCALCLUSTER_HOME,
        toolchain=Toolchain(settings.LOCALCLUSTER_CACHE),
    )


def admin_kubeconfig() -> Path:
    """LABAPP_KUBECONFIG when set (kind, EKS, ...); else the local cluster's."""
    if settings.KUBECONFIG:
        return Path(settings.KUBECONFIG)
    return local_cluster().kubeconfig_path
