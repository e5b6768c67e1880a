"""Readiness probes: each says ok, or names what is wrong.

A probe's detail never carries a URL, host, address or path: /readyz shows it to
staff, and a load balancer's logs may keep it. The operator's /cluster/ page
names the API server.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from kubernetes.client.exceptions import ApiException

from labapp.clusters.client import ClusterUnreachable, cluster_summary
from labapp.clusters.config import admin_kubeconfig
from labapp.learning.tracker import tracker_status


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
        return Probe("database", False, f"{connection.vendor}: {type(exc).__name__}")
    return Probe("database", True, connection.vendor)


def probe_redis() -> Probe:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except (redis.RedisError, ValueError) as exc:
        return Probe("redis", False, _redis_cause(exc))
    return Probe("redis", True, "ping")


def probe_cluster() -> Probe:
    try:
        summary = cluster_summary(admin_kubeconfig())
    except ClusterUnreachable as exc:
        return Probe("cluster", False, _cluster_cause(exc))
    except Exception as exc:  # a kubeconfig that does not load, ...: not ready, and why
        return Probe("cluster", False, f"the cluster check failed ({type(exc).__name__})")
    return Probe("cluster", True, summary.version)


def probe_tracker() -> Probe:
    """The tracker's heartbeat. Without it pages still serve and commands still run,
    but checks do not tick by themselves: the site is degraded, not down."""
    try:
        beat = tracker_status()
    except (redis.RedisError, ValueError) as exc:
        return Probe("tracker", False, f"its heartbeat cannot be read (Redis {_redis_cause(exc)})")
    if beat is None:
        return Probe("tracker", False, "no heartbeat in the last 30 s: checks will not tick")
    if not beat.get("synced"):
        return Probe("tracker", False, "starting: its caches have not listed yet")
    return Probe("tracker", True, f"watching {', '.join(beat.get('kinds', []))}")


def readiness() -> list[Probe]:
    """What must answer for the site to serve."""
    return [probe_database(), probe_redis(), probe_cluster()]


def degradations() -> list[Probe]:
    """What the site can serve without, worse: reported, never a reason to stop serving."""
    return [probe_tracker()]


# Anyone may ask /readyz, as often as they like. Without a shared answer each of
# those requests would reach the database, Redis and the API server: an anonymous
# flood would become one on the cluster. Staff always get a fresh answer.
_shared_lock = threading.Lock()
_shared: tuple[float, list[Probe], list[Probe]] | None = None


def fresh_probes() -> tuple[list[Probe], list[Probe]]:
    """Every probe now (readiness, degradations); the answer others then share."""
    global _shared
    required, optional = readiness(), degradations()
    _shared = (time.monotonic(), required, optional)
    return required, optional


def shared_probes(max_age: float) -> tuple[list[Probe], list[Probe]]:
    """The last answer if it is younger than `max_age` seconds, else a fresh one.
    Callers arriving together wait for one round of probes instead of each running one."""
    with _shared_lock:
        if _shared is not None and time.monotonic() - _shared[0] < max_age:
            return _shared[1], _shared[2]
        return fresh_probes()


def forget_shared_probes() -> None:
    global _shared
    _shared = None


def _redis_cause(exc: Exception) -> str:
    # Most specific first: AuthenticationError is a ConnectionError.
    if isinstance(exc, redis.AuthenticationError):
        return "authentication failed"
    if isinstance(exc, redis.TimeoutError):
        return "timed out"
    if isinstance(exc, redis.ConnectionError):
        return "could not connect"
    if isinstance(exc, ValueError):
        return "REDIS_URL is not a Redis URL"
    return f"error ({type(exc).__name__})"


def _cluster_cause(exc: ClusterUnreachable) -> str:
    """ClusterUnreachable's own message names the server: say the cause instead."""
    cause = exc.__cause__
    if isinstance(cause, ApiException):
        return f"the API server answered HTTP {cause.status}"
    if cause is None and "kubeconfig" in str(exc):
        return "the admin kubeconfig does not exist"
    return "the API server could not be reached"
