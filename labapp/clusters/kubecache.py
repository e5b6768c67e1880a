"""A warm kubectl cache (discovery and OpenAPI) per cluster, shared read-only by
every workspace on this machine.

kubectl keeps what it learns about an API server under `--cache-dir`
($KUBECACHEDIR): discovery documents (`discovery/<host_port>/`, trusted for six
hours) and an HTTP cache of the OpenAPI documents (`http/`, revalidated by ETag).
A fresh workspace starts empty, so its first command pays for all of it. Here
one warm copy is built per cluster (`kubectl api-resources`, then `kubectl
explain` for each API group learners use), and each workspace's cache starts
as hard links to it. kubectl replaces cache files by renaming new ones into
place and never writes into a file, so the shared copy stays as it was built;
its files are read-only besides.

Nothing in it is secret: discovery and OpenAPI are the same for every user.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from labapp.clusters.client import api_client
from labapp.clusters.learner_access import LEARNER_KINDS

# Rebuilt when older than this, so a workspace's copy has hours of kubectl's
# six-hour discovery lifetime left (file times are kept by the links).
MAX_AGE_SECONDS = 3600.0
BUILD_TIMEOUT_SECONDS = 60
READY = "ready"  # a file in a finished cache: its time is the build's


def cache_root_for(admin_kubeconfig: Path, root: Path) -> Path:
    """Where this cluster's warm cache lives under `root`: named by the API server's
    address and certificate authority, as kubectl keys its own cache by address."""
    configuration = api_client(admin_kubeconfig).configuration
    authority = Path(configuration.ssl_ca_cert).read_bytes() if configuration.ssl_ca_cert else b""
    key = hashlib.sha256(configuration.host.encode() + b"\0" + authority).hexdigest()[:16]
    return root / key


def warm_cache(
    admin_kubeconfig: Path, *, root: Path, kubectl: Path, max_age: float = MAX_AGE_SECONDS
) -> Path | None:
    """This cluster's warm cache directory, built first when missing or old.
    None when it cannot be built (the workspace then starts cold, as before)."""
    home = cache_root_for(admin_kubeconfig, root)
    cache = home / "cache"
    with contextlib.suppress(OSError):
        if time.time() - (home / READY).stat().st_mtime < max_age:
            return cache
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process is building it
            return cache if (home / READY).exists() else None
        try:
            _build(admin_kubeconfig, home, kubectl)
        except (OSError, subprocess.SubprocessError):
            return cache if (home / READY).exists() else None
    return cache


def _build(admin_kubeconfig: Path, home: Path, kubectl: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=home))
    try:
        env = {
            "KUBECONFIG": str(admin_kubeconfig.absolute()),
            "HOME": str(scratch),
            "PATH": "/nonexistent",
            "KUBECACHEDIR": str(scratch / "cache"),
            "KUBERC": "off",
        }
        commands = [["api-resources", "-o", "name"]] + [
            ["explain", f"--api-version={api_version}", resource]
            for api_version, resource in _one_resource_per_group_version()
        ]
        for args in commands:
            subprocess.run(
                # No --request-timeout: it is part of each URL, so of each cache key.
                [str(kubectl), *args],
                env=env,
                cwd=scratch,
                capture_output=True,
                timeout=BUILD_TIMEOUT_SECONDS,
                check=True,
            )
        for path in (scratch / "cache").rglob("*"):
            if path.is_file():
                path.chmod(0o444)
        # Swap the new cache in; a workspace linking from the old one meanwhile
        # keeps the links it made.
        old = home / f"old-{os.getpid()}-{time.monotonic_ns()}"
        with contextlib.suppress(FileNotFoundError):
            (home / "cache").rename(old)
        (scratch / "cache").rename(home / "cache")
        (home / READY).touch()
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _one_resource_per_group_version() -> list[tuple[str, str]]:
    """`kubectl explain` fetches the OpenAPI document of a whole group version."""
    chosen: dict[str, str] = {}
    for kind in LEARNER_KINDS:
        chosen.setdefault(kind.api_version, kind.resource)
    return sorted(chosen.items())


def seed_workspace_cache(cache: Path, workspace_cache: Path) -> bool:
    """Give a workspace's kubectl cache (its $KUBECACHEDIR) the warm cache's files
    as hard links (copies across file systems), unless it has a cache already.
    Returns True when it seeded one."""
    if workspace_cache.exists():
        return False
    workspace_cache.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".cache-", dir=workspace_cache.parent))
    try:
        shutil.copytree(cache, scratch / "cache", copy_function=_link_or_copy)
        try:
            (scratch / "cache").rename(workspace_cache)
        except OSError:
            return False  # another run seeded it first
    except (OSError, shutil.Error):
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return True


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
