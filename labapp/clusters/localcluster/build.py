"""Build the control-plane binaries (and yq) from the Go modules in `gopins/`.

The output lands in a cache directory keyed by a hash of the pins (every
go.mod and go.sum, plus the link flags), so a second `up` never rebuilds and
a change of pin never reuses a stale binary.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labapp.clusters.localcluster.errors import BuildError

GO_MODULES_DIR = Path(__file__).resolve().parents[3] / "gopins"

# module folder -> [(binary name, Go package)]
PROGRAMS: dict[str, list[tuple[str, str]]] = {
    "kube": [
        ("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
        ("kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager"),
        ("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
    ],
    "etcd": [("etcd", "go.etcd.io/etcd/server/v3")],
    "kwok": [("kwok", "sigs.k8s.io/kwok/cmd/kwok")],
    # Not part of the control plane: the yq (v4) learners pipe kubectl into.
    "yq": [("yq", "github.com/mikefarah/yq/v4")],
}

# KWOK's own stage files, joined into the one config kwok reads. Pods get
# ready/complete/delete; nodes get initialised and kept alive by a lease.
KWOK_STAGES = [
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
]

Progress = Callable[[str], None]

# While one `go build` runs, a line says so this often, with the time it has taken.
PROGRESS_EVERY_SECONDS = 20.0


def elapsed(seconds: float) -> str:
    """2m30s, or 45s under a minute."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class Binaries:
    directory: Path
    kwok_config: Path
    kube_version: str

    def path(self, program: str) -> Path:
        return self.directory / program


def _required_pin(go_mod: str, module: str) -> str:
    match = re.search(rf"^\s*{re.escape(module)}\s+(v\S+)", go_mod, re.MULTILINE)
    if not match:
        raise BuildError(f"{module} is not pinned in gopins/kube/go.mod")
    return match.group(1)


def required_go_version(modules_dir: Path = GO_MODULES_DIR) -> str:
    """The newest `go` directive across the modules: the Go we need."""
    versions = []
    for module in PROGRAMS:
        text = (modules_dir / module / "go.mod").read_text()
        match = re.search(r"^go\s+(\S+)", text, re.MULTILINE)
        if match:
            versions.append(match.group(1))
    return max(versions, key=_version_tuple)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


class Toolchain:
    """Knows the pins, the cache, and how to turn one into the other."""

    def __init__(
        self,
        cache_dir: Path,
        modules_dir: Path = GO_MODULES_DIR,
        *,
        progress_every: float = PROGRESS_EVERY_SECONDS,
    ) -> None:
        self.cache_dir = cache_dir
        self.modules_dir = modules_dir
        # How often a running `go build` reports; not part of the pin key.
        self.progress_every = progress_every

    @functools.cached_property
    def kube_version(self) -> str:
        # Read on first use: building a Toolchain (every admin_kubeconfig()
        # call does) must not touch the disk.
        kube_mod = (self.modules_dir / "kube" / "go.mod").read_text()
        return _required_pin(kube_mod, "k8s.io/kubernetes")

    def _kube_ldflags(self) -> str:
        major, minor = _version_tuple(self.kube_version)[:2]
        flags = ["-s", "-w"]
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [
                f"-X {package}.gitVersion={self.kube_version}",
                f"-X {package}.gitMajor={major}",
                f"-X {package}.gitMinor={minor}",
                f"-X {package}.gitTreeState=clean",
                f"-X {package}.gitCommit=gomodules",
            ]
        return " ".join(flags)

    def pin_key(self) -> str:
        digest = hashlib.sha256()
        for module in sorted(PROGRAMS):
            for name in ("go.mod", "go.sum"):
                digest.update((self.modules_dir / module / name).read_bytes())
        digest.update(self._kube_ldflags().encode())
        digest.update(json.dumps(KWOK_STAGES).encode())
        digest.update(f"{platform.system()}-{platform.machine()}".encode())
        return digest.hexdigest()[:16]

    @property
    def output_dir(self) -> Path:
        return self.cache_dir / self.pin_key()

    def cached(self) -> Binaries | None:
        out = self.output_dir
        names = [name for programs in PROGRAMS.values() for name, _ in programs]
        if all((out / "bin" / name).is_file() for name in names) and (out / "kwok.yaml").is_file():
            return Binaries(out / "bin", out / "kwok.yaml", self.kube_version)
        return None

    def build_info(self) -> dict[str, object]:
        info = self.output_dir / "build-info.json"
        return json.loads(info.read_text()) if info.is_file() else {}

    def ensure(self, progress: Progress = print) -> Binaries:
        found = self.cached()
        if found:
            return found
        go = self._find_go()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # One build at a time per cache: parallel `up`s wait rather than race.
        with open(self.cache_dir / f"{self.pin_key()}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            found = self.cached()
            if found:
                return found
            return self._build(go, progress)

    def _find_go(self) -> str:
        needed = required_go_version(self.modules_dir)
        go = shutil.which("go")
        if go is None:
            raise BuildError(
                f"Go {needed} or newer is needed to build the local control plane, "
                "and no `go` command is on PATH. Install Go, or point LABAPP_KUBECONFIG "
                "at an existing cluster."
            )
        result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True)
        found = result.stdout.strip().removeprefix("go")
        if result.returncode != 0 or _version_tuple(found) < _version_tuple(needed):
            raise BuildError(
                f"Go {needed} or newer is needed to build the local control plane; "
                f"{go} reports {found or result.stderr.strip()!r}."
            )
        return go

    def _build(self, go: str, progress: Progress) -> Binaries:
        staging = Path(tempfile.mkdtemp(prefix="build-", dir=self.cache_dir))
        staging.chmod(0o755)  # mkdtemp makes it private; workers may run as another user
        env = {**os.environ, "CGO_ENABLED": "0"}
        timings: dict[str, float] = {}
        try:
            for module, programs in PROGRAMS.items():
                ldflags = self._kube_ldflags() if module == "kube" else "-s -w"
                names = ", ".join(name for name, _ in programs)
                progress(
                    f"building {names} (Go module gopins/{module}); "
                    "a first build takes several minutes"
                )
                started = time.monotonic()
                for name, package in programs:
                    self._go(
                        go,
                        module,
                        env,
                        [
                            "build",
                            "-trimpath",
                            "-ldflags",
                            ldflags,
                            "-o",
                            str(staging / "bin" / name),
                            package,
                        ],
                        progress=progress,
                        what=name,
                    )
                timings[module] = round(time.monotonic() - started, 1)
                progress(f"built {names} in {elapsed(timings[module])}")
            kwok_dir = self._go(
                go, "kwok", env, ["list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"]
            ).strip()
            stages = [(Path(kwok_dir) / stage).read_text() for stage in KWOK_STAGES]
            (staging / "kwok.yaml").write_text("\n---\n".join(stages))
            (staging / "build-info.json").write_text(
                json.dumps(
                    {
                        "kube_version": self.kube_version,
                        "seconds": timings,
                        "built_at": time.time(),
                    },
                    indent=2,
                )
            )
            if self.output_dir.exists():
                shutil.rmtree(self.output_dir)
            staging.rename(self.output_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        found = self.cached()
        assert found is not None
        return found

    def _go(
        self,
        go: str,
        module: str,
        env: dict[str, str],
        args: list[str],
        *,
        progress: Progress | None = None,
        what: str = "",
    ) -> str:
        """Run one go command in gopins/<module>; while it runs, say so every
        `progress_every` seconds with the time it has taken."""
        started = time.monotonic()
        with subprocess.Popen(
            [go, *args],
            cwd=self.modules_dir / module,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            while True:
                try:
                    stdout, stderr = process.communicate(timeout=self.progress_every)
                    break
                except subprocess.TimeoutExpired:
                    # communicate() keeps what it read so far: nothing is lost by asking again.
                    if progress is not None:
                        took = elapsed(time.monotonic() - started)
                        progress(f"still building {what or module}\u2026 {took}")
        if process.returncode != 0:
            raise BuildError(
                f"`go {' '.join(args[:1])}` failed in gopins/{module}:\n{stderr[-4000:]}"
            )
        return stdout


def main(argv: list[str] | None = None) -> int:
    """`python -m labapp.clusters.localcluster [--cache DIR] [--print-key]`: build the pins.

    Needs only the standard library, this file and errors.py: the image's first
    stage builds the pins with it before any of the application is copied in.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(
            os.environ.get("LABAPP_LOCALCLUSTER_CACHE")
            or Path.home() / ".cache" / "labapp" / "localcluster"
        ),
    )
    parser.add_argument("--print-key", action="store_true", help="print the pin key and stop")
    options = parser.parse_args(argv)
    toolchain = Toolchain(options.cache)
    if options.print_key:
        print(toolchain.pin_key())
        return 0

    def say(message: str) -> None:
        print(f"[localcluster] {message}", file=sys.stderr, flush=True)

    try:
        binaries = toolchain.ensure(say)
    except BuildError as exc:
        say(str(exc))
        return 1
    say(f"Kubernetes {binaries.kube_version} binaries: {binaries.directory}")
    return 0
