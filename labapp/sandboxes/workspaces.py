"""A sandbox's files on this machine, made from the database and the lab files alone.

A worker on any host can run a learner's next command: `sandbox_materialize`
writes the kubeconfig (decrypted from the database) and renders the workspace
(the lab's kustomize folders with the learner's namespaces) when this machine
lacks them or has an outdated copy. Nothing needs a shared disk: learners
cannot write files (the restricted shell has no redirections), so a workspace
is a pure function of the lab, its files and the sandbox's namespaces, and a
stamp of those says whether the copy here is current.

Safe to call from several processes at once: one lock file per sandbox, a
workspace rendered aside and renamed into place, a kubeconfig written to a
temporary file and renamed. A new workspace's kubectl cache starts from this
machine's warm cache of the cluster (`labapp.clusters.kubecache`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from labapp.catalog.registry import get_lab
from labapp.catalog.spec import LabSpec
from labapp.catalog.workspace import render_workspace
from labapp.clusters import kubecache
from labapp.clusters.config import admin_kubeconfig
from labapp.clusters.kubectl import kubectl_path
from labapp.sandboxes.models import Sandbox

log = logging.getLogger(__name__)
STAMP = ".labapp-workspace"
LOCK = ".lock"
# kubectl's cache inside a workspace: the executor sets KUBECACHEDIR=<workdir>/.kube/cache.
KUBE_CACHE = Path(".kube") / "cache"
# Folders of SANDBOX_HOME that are not sandboxes (sandbox slugs start with a letter).
WARM_CACHE_DIR = ".kubecache"
# How often a process looks for files of sandboxes that are gone (see sweep_local_files).
SWEEP_EVERY_SECONDS = 600.0
_last_sweep = 0.0


def sandbox_materialize(*, sandbox: Sandbox, provisioning: bool = False) -> None:
    """Make sure this machine has the sandbox's workspace and kubeconfig, as the
    database and the lab files say. Cheap when they are in place (a stat, a read,
    a lock). `provisioning`: also rebuild this machine's warm kubectl cache of the
    cluster when it is old (otherwise it is only built when missing)."""
    _maybe_sweep()
    sandbox.directory.mkdir(parents=True, exist_ok=True)
    with _locked(sandbox.directory / LOCK):
        _workspace(sandbox, get_lab(sandbox.lab_id), refresh_cache=provisioning)
        if sandbox.learner_kubeconfig:
            _write_private(sandbox.kubeconfig_path, sandbox.learner_kubeconfig)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def workspace_stamp(lab: LabSpec, namespaces: dict[str, str]) -> str:
    """What the workspace is made from: the lab, its namespaces, and each source
    file's name, size and modification time (a redeployed lab renders anew)."""
    sources = []
    for folder, source in sorted(lab.workspace.items()):
        for path in sorted(source.rglob("*")):
            if path.is_file():
                info = path.stat()
                sources.append(
                    [folder, str(path.relative_to(source)), info.st_size, info.st_mtime_ns]
                )
    text = json.dumps({"lab": lab.id, "namespaces": namespaces, "sources": sources}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _workspace(sandbox: Sandbox, lab: LabSpec, *, refresh_cache: bool) -> None:
    workspace = sandbox.workspace
    wanted = workspace_stamp(lab, sandbox.namespaces)
    try:
        current = (workspace / STAMP).read_text()
    except OSError:
        current = None
    if current != wanted:
        scratch = Path(tempfile.mkdtemp(prefix=".workspace-", dir=sandbox.directory))
        old = sandbox.directory / f".old-{os.getpid()}-{time.monotonic_ns()}"
        try:
            render_workspace(lab, sandbox.namespaces, scratch)
            (scratch / STAMP).write_text(wanted)
            if workspace.exists():
                # kubectl's cache is worth keeping; the rest is rendered anew.
                with contextlib.suppress(OSError):
                    (workspace / ".kube").rename(scratch / ".kube")
                workspace.rename(old)
            scratch.rename(workspace)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
    if not (workspace / KUBE_CACHE).exists():
        warm = warm_cache(max_age=kubecache.MAX_AGE_SECONDS if refresh_cache else float("inf"))
        if warm is not None:
            kubecache.seed_workspace_cache(warm, workspace / KUBE_CACHE)
    elif refresh_cache:
        warm_cache(max_age=kubecache.MAX_AGE_SECONDS)


def warm_cache(*, max_age: float = kubecache.MAX_AGE_SECONDS) -> Path | None:
    """This machine's warm kubectl cache of the deployment's cluster."""
    try:
        return kubecache.warm_cache(
            admin_kubeconfig(),
            root=settings.SANDBOX_HOME / WARM_CACHE_DIR,
            kubectl=kubectl_path(),
            max_age=max_age,
        )
    except Exception as exc:  # a cold cache is slower, never wrong
        log.warning("no warm kubectl cache: %s", exc)
        return None


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, if its content differs; atomically."""
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def sweep_local_files() -> int:
    """Remove this machine's files of sandboxes that are no longer live (torn
    down, expired or failed on another host: the teardown removed only its own
    host's copy). Returns how many sandbox folders it removed."""
    home = settings.SANDBOX_HOME
    try:
        slugs = {
            entry.name for entry in os.scandir(home) if entry.is_dir() and entry.name[:1] != "."
        }
    except OSError:
        return 0
    if not slugs:
        return 0
    # Only folders of sandboxes this database knows to be over: never one it does
    # not know (another deployment's, or a test's, sharing the folder).
    dead = set(
        Sandbox.objects.filter(slug__in=slugs)
        .exclude(state__in=[Sandbox.State.PROVISIONING, Sandbox.State.READY])
        .values_list("slug", flat=True)
    )
    for slug in dead:
        shutil.rmtree(home / slug, ignore_errors=True)
    return len(dead)


def _maybe_sweep() -> None:
    global _last_sweep
    now = time.monotonic()
    if now - _last_sweep >= SWEEP_EVERY_SECONDS:
        _last_sweep = now
        try:
            sweep_local_files()
        except Exception:  # tidying up must never fail a run
            log.warning("sweeping sandbox files failed", exc_info=True)
