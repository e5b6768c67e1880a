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
        bind_address=settings.LOCALCLUSTER_BIND,
        extra_sans=tuple(settings.LOCALCLUSTER_SANS),
    )


def admin_kubeconfig() -> Path:
    """LABAPP_KUBECONFIG when set (kind, EKS, ...); else the local cluster's, naming
    LABAPP_LOCALCLUSTER_HOST when set (compose: the `localcluster` service)."""
    if settings.KUBECONFIG:
        return Path(settings.KUBECONFIG)
    return local_cluster().kubeconfig_path_for(settings.LOCALCLUSTER_HOST)
