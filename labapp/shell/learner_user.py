"""Each sandbox's processes run as a uid of its own, when the worker is root.

The uid comes from a fixed range (no /etc/passwd entry is needed: no learner
program looks itself up). The sandbox's directory (its workspace and kubeconfig)
belongs to that uid, mode 0700, so no other sandbox's processes can open it; the
worker's own files are closed to it by `seal`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Far above the uids and subordinate-uid ranges that distributions hand out (regular
# users from 1000, rootless containers' ranges from 100000 in steps of 65536).
DEFAULT_UID_BASE = 1_000_000_000
DEFAULT_UID_COUNT = 1_000_000


@dataclass(frozen=True)
class LearnerUser:
    uid: int
    gid: int

    @classmethod
    def for_sandbox(
        cls, number: int, *, base: int = DEFAULT_UID_BASE, count: int = DEFAULT_UID_COUNT
    ) -> LearnerUser:
        """Sandbox `number` (its database id) gets uid and gid `base + number % count`.
        Two sandboxes share one only if a million were made while the older lived."""
        uid = base + number % count
        return cls(uid=uid, gid=uid)


def can_switch_to(user: LearnerUser) -> str | None:
    """None when this process can run programs as `user`; else why not."""
    if os.geteuid() != 0:
        return "the worker is not root"
    if not _mapped(user.uid, Path("/proc/self/uid_map")) or not _mapped(
        user.gid, Path("/proc/self/gid_map")
    ):
        return f"uid {user.uid} is outside this user namespace's mapped ids"
    return None


def _mapped(ident: int, id_map: Path) -> bool:
    """Whether a user namespace maps `ident` (no map file: no namespaces, all ids)."""
    try:
        lines = id_map.read_text().splitlines()
    except OSError:
        return True
    for line in lines:
        inside, _, length = (int(field) for field in line.split())
        if inside <= ident < inside + length:
            return True
    return False


def hand_over(directory: Path, user: LearnerUser) -> None:
    """Give the sandbox's directory to its uid: it alone may enter (0700), and
    everything the worker wrote in it (workspace, kubeconfig, kubectl's cache
    from setup) becomes its own.

    The tree is the learner's to write, so the walk follows no symbolic link and
    changes no file with a second hard link: either could point the root worker
    at a file outside the sandbox. (The warm kubectl cache's files are such links,
    shared by every workspace and readable by all; they stay as they are.)
    """
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, user.uid, user.gid, follow_symlinks=False)
    os.chmod(directory, 0o700, follow_symlinks=False)
    for _, dirnames, filenames, dir_fd in os.fwalk(directory, follow_symlinks=False):
        for name in [*dirnames, *filenames]:
            # Another worker may be rendering this sandbox's workspace anew meanwhile.
            with contextlib.suppress(FileNotFoundError):
                _hand_over_entry(name, dir_fd, user)


def _hand_over_entry(name: str, dir_fd: int, user: LearnerUser) -> None:
    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode) or (info.st_uid, info.st_gid) == (user.uid, user.gid):
        return
    if not stat.S_ISDIR(info.st_mode) and info.st_nlink > 1:
        return
    os.chown(name, user.uid, user.gid, dir_fd=dir_fd, follow_symlinks=False)


def let_through(home: Path) -> None:
    """Learners' uids must pass through `home` (the sandboxes' parent) and every
    directory above it, to reach their own; they may not list `home`.

    kustomize opens a directory by its absolute path, so a working directory
    alone is not enough. Only the search bit is added where it is missing.
    """
    home.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(home.stat().st_mode) & 0o007 != 0o001:
        os.chmod(home, (stat.S_IMODE(home.stat().st_mode) & ~0o007) | 0o001)
    for directory in home.resolve().parents:
        mode = stat.S_IMODE(directory.stat().st_mode)
        if not mode & stat.S_IXOTH:
            log.warning(
                "adding o+x to %s so that learner processes can reach their sandboxes", directory
            )
            os.chmod(directory, mode | stat.S_IXOTH)


def seal(paths: list[Path]) -> list[Path]:
    """Take every permission for others off `paths` (the worker's own files: the
    database, the admin kubeconfig, caches); owner and group keep theirs.
    Returns the paths it changed."""
    changed = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue  # not there (yet): nothing to open
        if mode & 0o007:
            os.chmod(path, mode & ~0o007)
            changed.append(path)
    return changed
