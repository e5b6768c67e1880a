"""Boot the local control plane several times and print what it costs.

Figures, not a timed test: the machines are shared and noisy, so read the
medians side by side rather than against a fixed bound.

    .venv/bin/python bench/localcluster_boot.py [--boots 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labapp.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402

from labapp.clusters.localcluster import LocalCluster, Toolchain  # noqa: E402


def quiet(message: str) -> None:
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    toolchain = Toolchain(settings.LOCALCLUSTER_CACHE)
    started = time.monotonic()
    was_cached = toolchain.cached() is not None
    binaries = toolchain.ensure(progress=print)
    build_now = time.monotonic() - started
    info = toolchain.build_info()
    print(f"binaries: Kubernetes {binaries.kube_version} in {binaries.directory}")
    print(f"build when it built (s, per module): {info.get('seconds')}")
    print(f"build this run: {'cached' if was_cached else f'{build_now:.1f}s'}")

    cold, warm = [], []
    rss: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-clusters-") as home:
        for boot in range(args.boots):
            cluster = LocalCluster(f"bench-{boot}", home=Path(home), toolchain=toolchain)
            t0 = time.monotonic()
            cluster.up(progress=quiet)
            cold.append(time.monotonic() - t0)
            for row in cluster.status():
                rss.setdefault(row.name, []).append(row.rss_mib or 0.0)
            cluster.down(progress=quiet)
            # Second boot of the same cluster: data and certificates exist.
            t0 = time.monotonic()
            cluster.up(progress=quiet)
            warm.append(time.monotonic() - t0)
            cluster.down(progress=quiet)
            print(f"boot {boot + 1}: fresh {cold[-1]:.2f}s, restart {warm[-1]:.2f}s")

    figures = {
        "boots": args.boots,
        "fresh_boot_to_ready_s_median": round(statistics.median(cold), 2),
        "restart_boot_to_ready_s_median": round(statistics.median(warm), 2),
        "rss_mib_median": {name: round(statistics.median(v), 1) for name, v in rss.items()},
        "build_seconds_when_built": info.get("seconds"),
    }
    total = sum(figures["rss_mib_median"].values())
    print()
    print(f"{'boot-to-ready (median of ' + str(args.boots) + ')':<34}{'seconds':>10}")
    print(f"{'  fresh cluster':<34}{figures['fresh_boot_to_ready_s_median']:>10.2f}")
    restart = figures["restart_boot_to_ready_s_median"]
    restart = figures["restart_boot_to_ready_s_median"]
    print(f"{'  restart of the same cluster':<34}{restart:>10.2f}")
    ratio = figures["fresh_boot_to_ready_s_median"] / figures["restart_boot_to_ready_s_median"]
    print(f"{'  fresh / restart':<34}{ratio:>10.2f}x")
    print(f"\n{'resident memory after ready':<34}{'MiB':>10}")
    for name, value in figures["rss_mib_median"].items():
        print(f"{'  ' + name:<34}{value:>10.1f}")
    print(f"{'  whole control plane':<34}{total:>10.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
