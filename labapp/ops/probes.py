"""Readiness probes: each says ok, or names what is wrong."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from labapp.clusters.client import ClusterUnreachable, cluster_summary
from labapp.clusters.config import admin_kubeconfig


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    detail: str


def probe_database() -> Probe:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return Probe("database", False, f"{connection.vendor}: {exc}")
    return Probe("database", True, connection.vendor)


def probe_redis() -> Probe:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return Probe("redis", False, f"{settings.REDIS_URL}: {exc}")
    return Probe("redis", True, "ping")


def probe_cluster() -> Probe:
    try:
        summary = cluster_summary(admin_kubeconfig())
    except ClusterUnreachable as exc:
        return Probe("cluster", False, str(exc))
    return Probe("cluster", True, f"{summary.server} {summary.version}")


def readiness() -> list[Probe]:
    return [probe_database(), probe_redis(), probe_cluster()]
