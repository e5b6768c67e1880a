"""Strict readers for settings that come from environment variables.

A typo in a deployment's environment should stop the process at start-up
with a message naming the variable, not surface later as odd behaviour.
Secrets may be given as NAME_FILE, a path whose contents are the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    file_path = environ.get(f"{name}_FILE")
    if file_path:
        if name in environ:
            raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path} cannot be read: {exc}") from exc
    return environ.get(name, default)


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    raw = env_str(name, "", environ).strip().lower()
    if raw == "":
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean; use one of {sorted(_TRUE | _FALSE)}."
    )


def env_int(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    raw = env_str(name, "", environ).strip()
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as `nproc` counts them)."""
    return len(os.sched_getaffinity(0))


def env_worker_concurrency(cores: int, environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """The processes of the quick and the slow lane's workers (settings.py says why
    these defaults). One place, so that the benchmarks, which read them before Django
    is set up, and docker-compose.yml (through labapp.ops.worker_size) size what `make up` runs."""
    return (
        env_int("LABAPP_WORKER_CONCURRENCY", 2 * cores, environ),
        env_int("LABAPP_SLOW_WORKER_CONCURRENCY", min(6 * cores, 32), environ),
    )


def env_list(name: str, default: list[str], environ: Mapping[str, str] | None = None) -> list[str]:
    raw = env_str(name, "", environ).strip()
    if raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


_POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql")


def env_database(name: str, environ: Mapping[str, str] | None = None) -> dict[str, object] | None:
    """A PostgreSQL DATABASES entry from a URL such as
    postgres://user:password@host:5432/dbname?sslmode=require (read by dj-database-url:
    query options such as sslmode, sslrootcert or connect_timeout go to OPTIONS);
    None when the variable is unset. Also NAME_FILE, for a password kept out of the
    environment."""
    import dj_database_url

    raw = env_str(name, "", environ).strip()
    if not raw:
        return None
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in _POSTGRES_SCHEMES:
        raise ImproperlyConfigured(
            f"{name} must look like postgres://user:password@host:5432/dbname"
            f"[?sslmode=require]; it starts with {scheme + '://' if scheme else 'no scheme'}"
        )
    try:
        config = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} cannot be read: {exc}") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured(
            f"{name} names no database: postgres://user:password@host:5432/dbname"
        )
    config["PORT"] = str(config.get("PORT") or "")
    return dict(config)


def env_log_format(environ: Mapping[str, str] | None = None) -> str:
    """LABAPP_LOG_FORMAT: `text` or `json`; by default text while DJANGO_DEBUG is on,
    else json. The settings, Celery's logging and uvicorn's all read it here."""
    debug = env_bool("DJANGO_DEBUG", True, environ)
    log_format = env_str("LABAPP_LOG_FORMAT", "text" if debug else "json", environ)
    if log_format not in ("text", "json"):
        raise ImproperlyConfigured(f"LABAPP_LOG_FORMAT={log_format!r} must be text or json")
    return log_format
