"""What the processes sharing the machine cost: CPU seconds and resident memory,
read from /proc, named by their role in the stack (uvicorn, a Celery worker, the
tracker, Redis, each control-plane component) and the load generator itself."""

from __future__ import annotations

import functools
import os
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness import Bench

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # after "(comm)": state(0) ppid(1) pgrp(2) ... utime(11) stime(12) cutime(13)
    # cstime(14) ... rss in pages(21)
    return raw.rsplit(")", 1)[1].split()


def _cpu_of(fields: list[str]) -> float:
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


def proc_cpu(pid: int) -> float:
    """CPU seconds of one process and of the children it has reaped."""
    fields = _stat_fields(pid)
    return _cpu_of(fields) if fields else 0.0


def proc_rss_mib(pid: int) -> float:
    fields = _stat_fields(pid)
    return int(fields[21]) * PAGE_KIB / 1024 if fields else 0.0


def _group(pgid: int) -> list[list[str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields and int(fields[2]) == pgid:
                found.append(fields)
    return found


def group_cpu(pgid: int) -> float:
    """CPU seconds of every live process in a process group (a Celery worker and its
    pool, with the kubectl children they reaped; uvicorn and its workers)."""
    return sum(_cpu_of(fields) for fields in _group(pgid))


def group_rss_mib(pgid: int) -> float:
    """Resident memory of every live process in a process group."""
    return sum(int(fields[21]) * PAGE_KIB / 1024 for fields in _group(pgid))


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, every core."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def generator_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def generator_children_cpu() -> float:
    """kubectl run by the generator itself (bare kubectl); the stack's processes are
    children too, but are reaped only when the bench ends."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def role_of(args: list[str] | str) -> str:
    """A stack process's role, from its command line."""
    text = " ".join(args) if isinstance(args, list) else str(args)
    if " worker " in f" {text} ":
        name = text.split(" -n ", 1)[1].split("@", 1)[0] if " -n " in text else "worker"
        return f"worker_{name}"
    for role in ("uvicorn", "tracker", "beat"):
        if role in text:
            return role
    return text.split()[0]


@dataclass
class Probe:
    """CPU seconds and resident memory of the processes that share the machine."""

    cpu: dict[str, Callable[[], float]]
    rss: dict[str, Callable[[], float]]

    @classmethod
    def for_bench(cls, bench: Bench) -> Probe:
        cpu: dict[str, Callable[[], float]] = {
            "generator": generator_cpu,
            "generator_kubectl": generator_children_cpu,
        }
        rss: dict[str, Callable[[], float]] = {
            "generator": functools.partial(proc_rss_mib, os.getpid()),
        }
        for process in bench.stack.processes:
            role = role_of(process.args)  # type: ignore[arg-type]
            cpu[role] = functools.partial(group_cpu, process.pid)
            rss[role] = functools.partial(group_rss_mib, process.pid)
        if bench.redis.process is not None:
            cpu["redis"] = functools.partial(proc_cpu, bench.redis.process.pid)
            rss["redis"] = functools.partial(proc_rss_mib, bench.redis.process.pid)
        for component in bench.cluster.status():
            if component.pid:
                cpu[component.name] = functools.partial(proc_cpu, component.pid)
                rss[component.name] = functools.partial(proc_rss_mib, component.pid)
        return cls(cpu, rss)

    def sample(self) -> dict[str, float]:
        busy, total = machine_busy()
        return {
            **{name: probe() for name, probe in self.cpu.items()},
            "_wall": time.monotonic(),
            "_machine_busy": busy,
            "_machine_total": total,
        }

    def memory(self) -> dict[str, float]:
        """Resident MiB of each process (with its group), now."""
        return {name: round(probe(), 1) for name, probe in self.rss.items()}


CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def server_side_mib(memory: dict[str, float]) -> dict[str, float]:
    """Resident memory of the app's processes and of the control plane, apart."""
    app = sum(v for k, v in memory.items() if k not in CONTROL_PLANE and k != "generator")
    cluster = sum(v for k, v in memory.items() if k in CONTROL_PLANE)
    return {"app": round(app, 1), "control_plane": round(cluster, 1)}


def cpu_between(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    wall = after["_wall"] - before["_wall"]
    seconds = {
        name: round(after[name] - before[name], 2) for name in before if not name.startswith("_")
    }
    total = after["_machine_total"] - before["_machine_total"]
    busy = (after["_machine_busy"] - before["_machine_busy"]) / total if total else 0.0
    return {
        "wall_s": round(wall, 1),
        "cpu_s": seconds,
        # share of ONE core over the window (200 % is the whole 2-core machine)
        "pct_of_one_core": {name: round(100 * s / wall, 1) for name, s in seconds.items()}
        if wall
        else {},
        "machine_busy_pct": round(100 * busy, 1),
    }


def add_cpu(total: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    """Sum the windows of several rounds."""
    if total is None:
        return part
    wall = total["wall_s"] + part["wall_s"]
    seconds = {name: round(total["cpu_s"][name] + part["cpu_s"][name], 2) for name in part["cpu_s"]}
    busy = (
        total["machine_busy_pct"] * total["wall_s"] + part["machine_busy_pct"] * part["wall_s"]
    ) / (wall or 1)
    return {
        "wall_s": round(wall, 1),
        "cpu_s": seconds,
        "pct_of_one_core": {name: round(100 * s / wall, 1) for name, s in seconds.items()}
        if wall
        else {},
        "machine_busy_pct": round(busy, 1),
    }


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def other_heavy_processes(bench_home: Path | None = None) -> list[str]:
    """What else runs on the machine (the first few by CPU), for the record."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pcpu,args", "--sort=-pcpu"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()[1:]
    except (OSError, subprocess.SubprocessError):
        return []
    picked = []
    for line in out:
        if bench_home and str(bench_home) in line:
            continue
        pct, _, args = line.strip().partition(" ")
        if float(pct or 0) < 5:
            break
        picked.append(f"{pct}% {args[:110]}")
        if len(picked) == 8:
            break
    return picked
