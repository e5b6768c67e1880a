"""What a cold sandbox and a learner's kubectl cost, before and after issue 15,
side by side in one run on one control plane of its own.

1. A sandbox, made the old way and the new way, alternately:
   - old: the cluster-wide guard applied again for every sandbox, the sandbox's
     objects applied one by one, a workspace whose kubectl cache starts empty;
   - new: the guard checked once per cluster, the objects applied as one batch,
     the workspace's kubectl cache seeded from the cluster's warm cache.
   Both then run the lab's setup (kubectl apply -k, setup checks). CPU-seconds
   are this process (threads included), its kubectl children, and the API
   server and etcd; wall is the learner's wait.
2. The first `kubectl apply -k` in a fresh workspace: an empty kubectl cache
   against one seeded from the warm cache.
3. kubectl's Go garbage collector (GOGC unset, 100, 200, 400): CPU-seconds and
   peak memory of a get and of an `apply -k`, interleaved.

Figures, not a timed test: the machine is shared, so its load is printed too.

    .venv/bin/python bench/cold_path.py [--sandboxes 8] [--runs 10] [--lab pss-baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TICKS = os.sysconf("SC_CLK_TCK")
TIME = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"  # GNU time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sandboxes", type=int, default=8, help="per way (old, new)")
    parser.add_argument("--runs", type=int, default=10, help="kubectl runs per variant")
    parser.add_argument("--lab", default="pss-baseline")
    parser.add_argument("--lab-root", type=Path, default=ROOT / "lab_steps")
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/cold_path.json")
    args = parser.parse_args()

    with bench_cluster(args.lab_root, args.lab) as bench:
        figures: dict[str, Any] = {"load_before": os.getloadavg(), "cores": os.cpu_count()}
        figures["sandbox"] = sandboxes(bench, args.sandboxes)
        figures["first_apply"] = first_apply(bench, args.runs)
        figures["gogc"] = gogc(bench, args.runs)
        figures["load_after"] = os.getloadavg()
    report(figures)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    print(f"\nwritten to {args.json}")


@dataclass
class Bench:
    home: Path
    admin: Path
    lab: Any  # LabSpec
    kubectl: Path
    server_pids: list[int]


@contextmanager
def bench_cluster(lab_root: Path, lab_id: str) -> Iterator[Bench]:
    """Django against a temporary folder, and a local control plane of its own.
    The lab registry holds only the lab measured (and what its workspace uses)."""
    home = Path(tempfile.mkdtemp(prefix="labapp-cold-path-"))
    labs = home / "labs"
    labs.mkdir()
    for entry in lab_root.iterdir():
        if entry.is_dir() and (entry.name == lab_id or not (entry / "lab.yaml").exists()):
            (labs / entry.name).symlink_to(entry.resolve())
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "labapp.settings",
            "LABAPP_VAR_DIR": str(home / "var"),
            "LABAPP_SANDBOX_HOME": str(home / "sandboxes"),
            "LABAPP_LOCALCLUSTER_HOME": str(home / "clusters"),
            "LABAPP_LOCALCLUSTER_NAME": "coldpath",
            "LABAPP_LAB_STEPS_DIR": str(labs),
        }
    )
    (home / "var").mkdir()
    import django

    django.setup()
    from django.conf import settings

    from labapp.catalog.registry import get_lab
    from labapp.clusters.config import local_cluster
    from labapp.clusters.kubectl import kubectl_path

    cluster = local_cluster()
    cluster.up(progress=lambda message: None)
    settings.KUBECONFIG = str(cluster.kubeconfig_path)
    pids = [
        row.pid
        for row in cluster.status()
        if row.name in ("kube-apiserver", "etcd") and row.pid is not None
    ]
    try:
        yield Bench(home, cluster.kubeconfig_path, get_lab(lab_id), kubectl_path(), pids)
    finally:
        cluster.down(progress=lambda message: None)
        shutil.rmtree(home, ignore_errors=True)


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


@dataclass
class Cost:
    wall: float
    own: float  # this process, every thread
    children: float  # kubectl (reaped children)
    server: float  # kube-apiserver + etcd

    @property
    def total(self) -> float:
        return self.own + self.children + self.server


COST_FIELDS = ("wall", "own", "children", "server")
Phases = dict[str, Cost]


def measured(bench: Bench, work: Callable[[], object]) -> Cost:
    own0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server0 = sum(process_cpu(pid) for pid in bench.server_pids)
    t0 = time.monotonic()
    work()
    wall = time.monotonic() - t0
    own1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server1 = sum(process_cpu(pid) for pid in bench.server_pids)
    return Cost(
        wall=wall,
        own=max(0.0, own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime),
        children=max(0.0, kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime),
        server=max(0.0, server1 - server0),
    )


# -- 1. a sandbox, the old way and the new way -------------------------------------


def old_way(bench: Bench, slug: str, namespaces: dict[str, str], workspace: Path) -> Phases:
    """Before issue 15: everything applied one by one, the guard for every sandbox."""
    from labapp.catalog.workspace import render_workspace
    from labapp.clusters import isolation
    from labapp.clusters.learner_access import Quota
    from labapp.clusters.objects import apply_objects
    from labapp.clusters.pod_guard import verify_pod_guard

    def cluster_objects() -> None:
        apply_objects(bench.admin, isolation.cluster_guard_objects())
        apply_objects(
            bench.admin,
            isolation.sandbox_objects(
                slug, namespaces, Quota(), privileged_images=bench.lab.privileged_images
            ),
        )
        for physical in namespaces.values():
            verify_pod_guard(bench.admin, namespace=physical)
        isolation.issue_token(bench.admin, sandbox_id=slug, seconds=3600)

    def workspace_and_setup() -> None:
        render_workspace(bench.lab, namespaces, workspace)
        setup(bench, namespaces, workspace)

    return {
        "objects": measured(bench, cluster_objects),
        "setup": measured(bench, workspace_and_setup),
    }


def new_way(bench: Bench, slug: str, namespaces: dict[str, str], workspace: Path) -> Phases:
    """After: the guard once per cluster, one batch, a warm kubectl cache."""
    from labapp.catalog.workspace import render_workspace
    from labapp.clusters import isolation, kubecache

    def cluster_objects() -> None:
        isolation.provision(
            bench.admin,
            sandbox_id=slug,
            namespaces=namespaces,
            token_seconds=3600,
            privileged_images=bench.lab.privileged_images,
        )

    def workspace_and_setup() -> None:
        render_workspace(bench.lab, namespaces, workspace)
        warm = kubecache.warm_cache(bench.admin, root=bench.home / "warm", kubectl=bench.kubectl)
        assert warm is not None
        kubecache.seed_workspace_cache(warm, workspace / ".kube" / "cache")
        setup(bench, namespaces, workspace)

    return {
        "objects": measured(bench, cluster_objects),
        "setup": measured(bench, workspace_and_setup),
    }


def setup(bench: Bench, namespaces: dict[str, str], workspace: Path) -> None:
    from labapp.catalog.setup import run_lab_setup
    from labapp.clusters.tools import default_tools

    problems = run_lab_setup(
        bench.lab,
        namespaces=namespaces,
        workspace=workspace,
        admin_kubeconfig=bench.admin,
        tools=default_tools(),
    )
    assert not problems, problems


def sandboxes(bench: Bench, count: int) -> dict[str, Any]:
    from labapp.clusters import isolation

    # The old way strips the guard's hash annotation each time; the new way would see
    # that when it looks again (every few minutes) and apply. Out here, no looking again.
    isolation.GUARD_RECHECK_SECONDS = float("inf")
    costs: dict[str, list[Phases]] = {"old": [], "new": []}
    made: list[tuple[str, dict[str, str]]] = []
    ways = {"old": old_way, "new": new_way}
    # One of each first, unmeasured: the warm cache, the clients, discovery.
    for index in range(count + 1):
        for name, way in ways.items():
            slug = f"{name[0]}{index:02d}{os.urandom(2).hex()}"
            namespaces = {n: f"{n}-{slug}" for n in bench.lab.namespaces}
            workspace = bench.home / "sandboxes" / slug / "workspace"
            phases = way(bench, slug, namespaces, workspace)
            phases["sandbox"] = Cost(
                *(sum(getattr(c, f) for c in phases.values()) for f in COST_FIELDS)
            )
            if index:
                costs[name].append(phases)
            made.append((slug, namespaces))
    for slug, namespaces in made:
        isolation.teardown(bench.admin, sandbox_id=slug, namespaces=namespaces)
    return {
        name: {
            phase: {
                field: round(statistics.median(getattr(p[phase], field) for p in values), 3)
                for field in (*COST_FIELDS, "total")
            }
            | {"n": len(values)}
            for phase in ("objects", "setup", "sandbox")
        }
        for name, values in costs.items()
    }


# -- 2. the first kubectl apply -k in a fresh workspace ------------------------------


def learner(bench: Bench) -> tuple[Path, Path, dict[str, str], str]:
    """A sandbox to run as: its kubeconfig, workspace, namespaces and an `apply -k`
    folder of the lab's."""
    from labapp.clusters import isolation

    slug = f"k{os.urandom(3).hex()}"
    namespaces = {n: f"{n}-{slug}" for n in bench.lab.namespaces}
    credentials = isolation.provision(
        bench.admin,
        sandbox_id=slug,
        namespaces=namespaces,
        token_seconds=3600,
        privileged_images=bench.lab.privileged_images,
    )
    kubeconfig = bench.home / f"{slug}.kubeconfig"
    kubeconfig.write_text(credentials.kubeconfig)
    workspace = bench.home / "sandboxes" / slug / "workspace"
    from labapp.catalog.workspace import render_workspace

    render_workspace(bench.lab, namespaces, workspace)
    setup(bench, namespaces, workspace)
    folder = next(
        c.run.split()[-1]
        for step in bench.lab.steps
        for c in step.commands
        if c.run.startswith("kubectl apply -k")
    )
    return kubeconfig, workspace, namespaces, folder


@dataclass
class Run:
    cpu: float
    wall: float
    max_rss_mib: float
    code: int
    error: str = ""
    stderr: str = ""


def kubectl(
    bench: Bench, kubeconfig: Path, workspace: Path, args: list[str], extra: dict[str, str]
) -> Run:
    """As the restricted shell runs it: the same bare environment."""
    env = {
        "KUBECONFIG": str(kubeconfig),
        "HOME": str(workspace),
        "PATH": "/nonexistent",
        "LANG": "C.UTF-8",
        "KUBECACHEDIR": str(workspace / ".kube" / "cache"),
        "KUBERC": "off",
        **extra,
    }
    # Through GNU time, which forks kubectl: a child forked from this (large) process
    # would report this process's peak memory as its own. wait4 counts time's CPU
    # with kubectl's (time's own is a millisecond or two).
    peak = bench.home / "peak-rss"
    t0 = time.monotonic()
    process = subprocess.Popen(
        [TIME, "-f", "%M", "-o", str(peak), str(bench.kubectl), *args],
        env=env,
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    stderr = process.stderr.read().decode(errors="replace")  # kubectl's messages
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Run(
        cpu=usage.ru_utime + usage.ru_stime,
        wall=time.monotonic() - t0,
        max_rss_mib=int(peak.read_text().split()[-1]) / 1024,
        code=process.returncode,
        error=stderr[-300:] if process.returncode else "",
        stderr=stderr,
    )


def medians(runs: list[Run]) -> dict[str, Any]:
    return {
        "cpu_s": round(statistics.median(r.cpu for r in runs), 3),
        "wall_s": round(statistics.median(r.wall for r in runs), 3),
        "max_rss_mib": round(statistics.median(r.max_rss_mib for r in runs), 1),
        "failed": sum(r.code != 0 for r in runs),
        "n": len(runs),
        "last_error": next((r.error for r in reversed(runs) if r.code), ""),
    }


def first_apply(bench: Bench, runs: int) -> dict[str, Any]:
    from labapp.clusters import kubecache

    kubeconfig, source, _, folder = learner(bench)
    warm = kubecache.warm_cache(bench.admin, root=bench.home / "warm", kubectl=bench.kubectl)
    assert warm is not None
    results: dict[str, list[Run]] = {"cold": [], "warm": []}
    requests: dict[str, int] = {}

    def fresh(name: str) -> Path:
        workspace = bench.home / "fresh"
        shutil.rmtree(workspace, ignore_errors=True)
        shutil.copytree(source, workspace, ignore=shutil.ignore_patterns(".kube"))
        if name == "warm":
            kubecache.seed_workspace_cache(warm, workspace / ".kube" / "cache")
        return workspace

    for _ in range(runs):
        for name in results:
            workspace = fresh(name)
            results[name].append(kubectl(bench, kubeconfig, workspace, ["apply", "-k", folder], {}))
    for name in results:  # once more, counting its requests to the API server
        workspace = fresh(name)
        logged = kubectl(bench, kubeconfig, workspace, ["apply", "-k", folder, "-v=6"], {})
        requests[name] = logged.stderr.count('"Response" verb=')
    return {"command": f"kubectl apply -k {folder}"} | {
        name: medians(values) | {"api_requests": requests[name]} for name, values in results.items()
    }


# -- 3. GOGC ------------------------------------------------------------------------


def gogc(bench: Bench, runs: int) -> dict[str, Any]:
    kubeconfig, workspace, namespaces, folder = learner(bench)
    namespace = next(iter(namespaces.values()))
    commands = {
        "get": ["-n", namespace, "get", "pods"],
        "apply -k": ["apply", "-k", folder],
    }
    settings = {"unset": {}, "100": {"GOGC": "100"}, "200": {"GOGC": "200"}, "400": {"GOGC": "400"}}
    for args in commands.values():  # warm the workspace's cache
        kubectl(bench, kubeconfig, workspace, args, {})
    results: dict[str, dict[str, list[Run]]] = {c: {s: [] for s in settings} for c in commands}
    for _ in range(runs):
        for command, args in commands.items():
            for name, extra in settings.items():
                results[command][name].append(kubectl(bench, kubeconfig, workspace, args, extra))
    return {
        command: {name: medians(values) for name, values in per.items()}
        for command, per in results.items()
    }


def report(figures: dict[str, Any]) -> None:
    errors = {
        row["last_error"]
        for part in (figures["first_apply"], *figures["gogc"].values())
        for row in part.values()
        if isinstance(row, dict) and row.get("last_error")
    }
    for error in errors:
        print(f"a kubectl run failed: {error}")
    print(
        f"cores: {figures['cores']}; load average before {figures['load_before']}, "
        f"after {figures['load_after']}"
    )
    print("\n1. one cold sandbox (medians, seconds; all but wall are CPU-seconds)")
    print(f"{'':22} {'wall':>7} {'own':>7} {'kubectl':>8} {'apiserver+etcd':>15} {'CPU total':>10}")
    phases = {
        "objects": "cluster objects",
        "setup": "workspace + setup",
        "sandbox": "the whole sandbox",
    }
    for phase, title in phases.items():
        for name in ("old", "new"):
            row = figures["sandbox"][name][phase]
            print(
                f"{title + ', ' + name:22} {row['wall']:7.3f} {row['own']:7.3f} "
                f"{row['children']:8.3f} {row['server']:15.3f} {row['total']:10.3f}   n={row['n']}"
            )
    first = figures["first_apply"]
    print(f"\n2. the first `{first['command']}` in a fresh workspace (medians)")
    for name in ("cold", "warm"):
        row = first[name]
        print(
            f"{name:6} cpu {row['cpu_s']:.3f} s   wall {row['wall_s']:.3f} s   "
            f"rss {row['max_rss_mib']:6.1f} MiB  failed {row['failed']}/{row['n']}  "
            f"API requests {row['api_requests']}"
        )
    print("\n3. kubectl and GOGC (medians: CPU-seconds, wall, peak RSS)")
    for command, per in figures["gogc"].items():
        for name, row in per.items():
            print(
                f"{command:9} GOGC={name:6} cpu {row['cpu_s']:.3f} s  wall {row['wall_s']:.3f} s"
                f"  rss {row['max_rss_mib']:6.1f} MiB  failed {row['failed']}/{row['n']}"
            )


if __name__ == "__main__":
    main()
