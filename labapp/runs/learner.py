"""How this worker starts a sandbox's processes: what its lab lets the shell run,
and the uid they run as. The shell is Django-free; this reads the settings and
the lab for it.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from django.conf import settings

from labapp.catalog.registry import get_lab
from labapp.sandboxes.models import Sandbox
from labapp.shell.learner_user import LearnerUser, can_switch_to, hand_over, let_through, seal
from labapp.shell.policy import ShellPolicy

log = logging.getLogger(__name__)


def shell_policy(sandbox: Sandbox) -> ShellPolicy:
    """The commands `kubectl exec` may run: those the sandbox's lab declares."""
    return ShellPolicy.for_lab(get_lab(sandbox.lab_id).exec_commands)


def learner_user(sandbox: Sandbox) -> LearnerUser | None:
    """The sandbox's own uid, with its files (already on this machine) handed over
    to it. None where this worker cannot switch uids: its processes then run as
    the worker, as before, and a warning says so once."""
    user = LearnerUser.for_sandbox(sandbox.id)
    reason = can_switch_to(user)
    if reason is not None:
        _warn_once(reason)
        return None
    _seal_worker_files()
    let_through(settings.SANDBOX_HOME)
    hand_over(sandbox.directory, user)
    return user


@functools.cache
def _warn_once(reason: str) -> None:
    log.warning("learner commands run as the worker's own user: %s", reason)


@functools.cache
def _seal_worker_files() -> None:
    """Once per process: what the worker keeps is no learner uid's to read."""
    changed = seal(worker_private_paths())
    if changed:
        log.warning(
            "took others' permissions off %s: learner processes run on this machine",
            ", ".join(map(str, changed)),
        )


def worker_private_paths() -> list[Path]:
    """The database, the admin kubeconfig and local clusters, the worker's caches,
    and the secret files settings read (`*_FILE`)."""
    paths = [
        settings.LOCALCLUSTER_HOME,
        Path.home() / ".cache",
        Path.home() / ".kube",
        *(Path(value) for name, value in os.environ.items() if name.endswith("_FILE") and value),
    ]
    if settings.KUBECONFIG:
        paths.append(Path(settings.KUBECONFIG))
    database = settings.DATABASES["default"]
    if str(database["ENGINE"]).endswith("sqlite3"):
        name = Path(str(database["NAME"]))
        paths += [name, *(name.with_name(name.name + end) for end in ("-wal", "-shm", "-journal"))]
    return paths
