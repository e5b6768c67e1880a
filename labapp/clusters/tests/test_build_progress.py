"""The Go builds say they are still going, with the time taken; the pin key ignores that."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from labapp.clusters.localcluster import BuildError, Toolchain
from labapp.clusters.localcluster.build import GO_MODULES_DIR, elapsed


def fake_go(tmp_path: Path, script: str) -> str:
    go = tmp_path / "go"
    go.write_text("#!/bin/sh\n" + script)
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    return str(go)


def test_elapsed_reads_like_a_clock():
    assert elapsed(0.4) == "0s"
    assert elapsed(45) == "45s"
    assert elapsed(150) == "2m30s"
    assert elapsed(3601) == "60m01s"


def test_a_long_go_build_reports_progress_with_the_time_taken(tmp_path: Path):
    go = fake_go(tmp_path, 'sleep 1.3\necho "$@"\n')
    toolchain = Toolchain(tmp_path / "cache", progress_every=0.25)
    said: list[str] = []
    out = toolchain._go(
        go,
        "kube",
        dict(os.environ),
        ["build", "-o", "x", "k8s.io/kubernetes/cmd/kube-apiserver"],
        progress=said.append,
        what="kube-apiserver",
    )
    assert out.strip() == "build -o x k8s.io/kubernetes/cmd/kube-apiserver"
    assert len(said) >= 3, said
    assert all(re.fullmatch(r"still building kube-apiserver\u2026 \d+s", line) for line in said)
    assert said[-1].endswith("1s")


def test_a_failing_go_build_names_its_error(tmp_path: Path):
    go = fake_go(tmp_path, 'echo "cannot find module" >&2\nexit 1\n')
    toolchain = Toolchain(tmp_path / "cache", progress_every=0.25)
    with pytest.raises(BuildError, match="failed in gopins/etcd:\ncannot find module"):
        toolchain._go(go, "etcd", dict(os.environ), ["build"], progress=print, what="etcd")


def test_progress_does_not_change_the_pin_key(tmp_path: Path):
    # The cache directory is named by the pin key: it must not depend on reporting.
    assert (
        Toolchain(tmp_path, progress_every=1).pin_key()
        == Toolchain(tmp_path).pin_key()
        == Toolchain(tmp_path, progress_every=300).pin_key()
    )


def test_the_build_entry_point_prints_the_same_pin_key():
    result = subprocess.run(
        [sys.executable, "-m", "labapp.clusters.localcluster", "--print-key"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LABAPP_LOCALCLUSTER_CACHE": str(settings.LOCALCLUSTER_CACHE)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == Toolchain(settings.LOCALCLUSTER_CACHE, GO_MODULES_DIR).pin_key()
