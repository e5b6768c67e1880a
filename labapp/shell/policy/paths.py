"""A file the learner names must be a plain relative path inside the lab's directory."""

from __future__ import annotations

import re

from labapp.shell.policy.messages import DYNAMIC, CommandRefused, shown, typed_out

_PATH_CHARS = re.compile(r"[A-Za-z0-9._+/-]+")
_HOST_LIKE = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+/")


def check_local_path(where: str, path: str, *, kustomize: bool = False) -> None:
    """`where` names what was given the path (`-f`, `kubectl kustomize`), for the message."""
    if DYNAMIC in path:
        raise typed_out(f"the path given to `{where}`")
    refused = f"`{where} {shown(path)}` is refused"
    if "://" in path or path.startswith(("git@", "git::", "http:", "https:", "ssh:")):
        raise CommandRefused(f"{refused}: URLs are not allowed, only files in the lab's directory")
    if path.startswith("~"):
        raise CommandRefused(
            f"{refused}: `~` (home directory) paths are not allowed, only "
            "relative paths inside the lab's directory"
        )
    if path.startswith("/"):
        raise CommandRefused(
            f"{refused}: absolute paths are not allowed, only relative "
            "paths inside the lab's directory"
        )
    if ".." in path.split("/"):
        raise CommandRefused(f"{refused}: `..` would leave the lab's directory")
    if not _PATH_CHARS.fullmatch(path) or path.startswith("-"):
        raise CommandRefused(f"{refused}: file paths may use only letters, digits and `. _ - + /`")
    # kustomize fetches `host.tld/org/repo` and `repo//subdir` from the network.
    if kustomize and ("//" in path or _HOST_LIKE.match(path)):
        raise CommandRefused(
            f"{refused}: it looks like a remote repository; only "
            "directories in the lab's directory are allowed"
        )
