"""The image, read from its Dockerfile and .dockerignore (no Docker engine here):
pinned bases, the Go build before the source, a non-root user, a clean build context;
and the first stage's builder run as that stage runs it, with the standard library only."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from labapp.clusters.localcluster import Toolchain
from labapp.clusters.localcluster.build import PROGRAMS

ROOT = Path(settings.BASE_DIR)


@dataclass
class Stage:
    base: str
    name: str
    steps: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def index(self, instruction: str, pattern: str) -> int:
        for position, (kind, args) in enumerate(self.steps):
            if kind == instruction and re.search(pattern, args):
                return position
        raise AssertionError(f"no {instruction} matching {pattern!r} in stage {self.name}")

    def all(self, instruction: str) -> list[str]:
        return [args for kind, args in self.steps if kind == instruction]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), " ".join(rest.split())
        if instruction == "FROM":
            base, _, name = rest.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip()))
        elif stages:
            stages[-1].steps.append((instruction, rest))
        elif instruction == "ARG":
            key, _, default = rest.partition("=")
            args[key] = default
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    args, stages = parse_dockerfile((ROOT / "Dockerfile").read_text())
    return args, {stage.name: stage for stage in stages}


def test_base_images_are_pinned_to_exact_versions(dockerfile):
    args, stages = dockerfile
    assert set(stages) == {"controlplane", "app"}
    bases = {name: stage.base for name, stage in stages.items()}
    assert bases == {"controlplane": "${GO_IMAGE}", "app": "${PYTHON_IMAGE}"}
    assert re.fullmatch(r"golang:\d+\.\d+\.\d+-bookworm(@sha256:[0-9a-f]{64})?", args["GO_IMAGE"])
    assert re.fullmatch(
        r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", args["PYTHON_IMAGE"]
    )
    # The Go image is at least the Go the pins need.
    needed = re.search(r"^go (\d+)\.(\d+)", (ROOT / "gopins/kube/go.mod").read_text(), re.M)
    have = re.match(r"golang:(\d+)\.(\d+)", args["GO_IMAGE"])
    assert needed and have
    assert tuple(map(int, have.groups())) >= tuple(map(int, needed.groups()))


def test_the_go_pins_are_built_before_any_of_the_application_is_copied(dockerfile):
    _, stages = dockerfile
    build = stages["controlplane"]
    copies = build.all("COPY")
    # Never the whole tree, nor the app: only the pins and the builder's own files.
    for args in copies:
        sources = shlex.split(args)[:-1]
        for source in sources:
            assert source.startswith(("gopins/", "labapp/clusters/localcluster/")), source
    for module in PROGRAMS:
        assert any(f"gopins/{module}/" in args for args in copies), f"gopins/{module} not copied"
    built = build.index("RUN", r"-m labapp\.clusters\.localcluster --cache /opt/localcluster")
    assert all(position < built for position, (kind, _) in enumerate(build.steps) if kind == "COPY")
    assert "gopins/compose" not in " ".join(copies)  # its pin does not rebuild the plane


def test_the_app_stage_installs_dependencies_then_binaries_then_the_source(dockerfile):
    _, stages = dockerfile
    app = stages["app"]
    source = app.index("COPY", r"^\. \.$")
    assert app.index("COPY", r"^pyproject\.toml constraints\.txt") < source
    assert app.index("RUN", r"pip install") < source
    assert app.index("COPY", r"--from=controlplane /opt/localcluster") < source
    # The source stays root's: the app user cannot change it.
    assert "--chown" not in app.steps[source][1]


def test_the_app_runs_as_a_user_that_is_not_root(dockerfile):
    _, stages = dockerfile
    app = stages["app"]
    users = app.all("USER")
    assert users, "no USER: the app would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    last_user = max(i for i, (kind, _) in enumerate(app.steps) if kind == "USER")
    assert all(kind != "RUN" for kind, _ in app.steps[last_user:]), "RUN after USER"
    useradd = app.steps[app.index("RUN", r"useradd")][1]
    assert f"--uid 1000 --user-group --shell /usr/sbin/nologin {users[-1].split(':')[0]}" in (
        useradd
    )
    # Static files outside the state volume, so an upgrade serves the new ones.
    env = " ".join(app.all("ENV"))
    assert "LABAPP_STATIC_ROOT=/app/staticfiles" in env
    assert "LABAPP_VAR_DIR=/var/lib/labapp" in env
    assert "--log-config labapp/ops/uvicorn_logging.json" in app.all("CMD")[-1]


def test_the_first_stage_builder_needs_the_standard_library_only(tmp_path: Path, dockerfile):
    """Lay out what the first stage copies (and the empty package files it makes), and
    run its builder as it does, without site-packages: it names the same pin key, so
    the app stage finds the binaries it built."""
    _, stages = dockerfile
    build = stages["controlplane"]
    src = tmp_path / "src"
    for args in build.all("COPY"):
        *sources, dest = shlex.split(args)
        for source in sources:
            target = src / dest
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target / Path(source).name)
    [touch] = [args for args in build.all("RUN") if args.startswith("touch ")]
    for name in shlex.split(touch)[1:]:
        (src / name).touch()
    result = subprocess.run(
        [sys.executable, "-S", "-E", "-m", "labapp.clusters.localcluster", "--print-key"],
        cwd=src,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == Toolchain(settings.LOCALCLUSTER_CACHE).pin_key()


# -- the build context ------------------------------------------------------------------


def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (exclude?, regex) rules; the last rule that matches decides,
    and a rule that matches a folder covers what is inside it (Docker's semantics for
    these patterns: `*` within one path element, `**` across them)."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                part, re.escape(part)
            )
        rules.append((not negate, re.compile(f"{regex}(/.*)?")))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    verdict = False
    for exclude, regex in rules:
        if regex.fullmatch(path):
            verdict = exclude
    return verdict


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.production",
        "var/clusters/default/pki/ca.key",
        "var/clusters/default/admin.kubeconfig",
        "var/labapp.sqlite3",
        "var/sandboxes/abc/kubeconfig",
        ".venv/bin/python",
        ".git/HEAD",
        "labapp/__pycache__/settings.cpython-311.pyc",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        "test-artifacts/lab.png",
        "node_modules/htmx/index.js",
        "staticfiles/css/app.css",
        "labapp.egg-info/PKG-INFO",
        "deploy/secrets/eks.kubeconfig",
        "deploy/secrets/token.txt",
    ],
)
def test_the_build_context_leaves_out(path: str):
    assert excluded(path, ignore_rules())


@pytest.mark.parametrize(
    "path",
    [
        "manage.py",
        "pyproject.toml",
        "constraints.txt",
        "labapp/settings.py",
        "labapp/ops/uvicorn_logging.json",
        "labapp/clusters/localcluster/build.py",
        "gopins/kube/go.mod",
        "gopins/kube/go.sum",
        "lab_steps/pss-baseline/lab.yaml",
        "templates/base.html",
        "static/css/app.css",
        ".env.example",
    ],
)
def test_the_build_context_keeps(path: str):
    assert not excluded(path, ignore_rules())


def test_nothing_private_in_this_checkout_would_reach_the_image():
    """Walk this very checkout as the build would see it."""
    rules = ignore_rules()
    sent = []
    for folder, dirs, files in os.walk(ROOT):
        relative = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if relative == "." else relative + "/"
        dirs[:] = [d for d in dirs if not excluded(prefix + d, rules)]
        sent += [prefix + f for f in files if not excluded(prefix + f, rules)]
    assert "manage.py" in sent
    private = [
        path
        for path in sent
        if path.startswith(("var/", ".venv/", ".git/"))
        or Path(path).name == ".env"
        or path.endswith((".key", ".kubeconfig", ".sqlite3", ".pyc"))
    ]
    assert private == []
