"""What the pod guard (labapp/clusters/pod_guard.py) costs the API server: its CPU
per pod create, with the guard's policies in place and without them, in
alternating rounds on a local control plane of its own.

Each create is a server-side dry run (admission runs in full, nothing is stored)
of a three-container pod in a namespace the guard binds to. Figures, not a timed
test: the API server's CPU is read from /proc around each round.

    .venv/bin/python bench/guard_cost.py [--rounds 3] [--creates 400]
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
from kubernetes import client as k8s  # noqa: E402
from probes import proc_cpu  # noqa: E402

from labapp.clusters import pod_guard  # noqa: E402
from labapp.clusters.client import api_client  # noqa: E402
from labapp.clusters.localcluster import LocalCluster, Toolchain  # noqa: E402
from labapp.clusters.objects import apply_objects  # noqa: E402

NAMESPACE = "guard-cost"
POD = k8s.V1Pod(
    metadata=k8s.V1ObjectMeta(generate_name="p-"),
    spec=k8s.V1PodSpec(
        containers=[
            k8s.V1Container(
                name=f"c{i}",
                image="registry.example/app:1",
                ports=[k8s.V1ContainerPort(container_port=80)],
            )
            for i in range(3)
        ]
    ),
)


def guard_off(admin: Path) -> None:
    api = k8s.AdmissionregistrationV1Api(api_client(admin))
    for name in pod_guard.POLICY_NAMES:
        api.delete_validating_admission_policy_binding(name)
        api.delete_validating_admission_policy(name)


def round_of_creates(core: k8s.CoreV1Api, apiserver_pid: int, creates: int) -> float:
    """API server CPU-milliseconds per create, over `creates` dry-run creates."""
    for _ in range(20):  # the policies reach the admission chain; caches warm up
        core.create_namespaced_pod(NAMESPACE, POD, dry_run="All")
    before = proc_cpu(apiserver_pid)
    for _ in range(creates):
        core.create_namespaced_pod(NAMESPACE, POD, dry_run="All")
    return 1000 * (proc_cpu(apiserver_pid) - before) / creates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each setting")
    parser.add_argument("--creates", type=int, default=400, help="dry-run creates per round")
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results/guard_cost.json"
    )
    args = parser.parse_args()
    toolchain = Toolchain(settings.LOCALCLUSTER_CACHE)
    with tempfile.TemporaryDirectory(prefix="bench-guard-") as home:
        cluster = LocalCluster("guard-cost", home=Path(home), toolchain=toolchain)
        cluster.up(progress=lambda _: None)
        try:
            admin = cluster.kubeconfig_path
            (apiserver,) = [row.pid for row in cluster.status() if row.name == "kube-apiserver"]
            assert apiserver is not None
            core = k8s.CoreV1Api(api_client(admin))
            labels = {pod_guard.GUARD_LABEL: pod_guard.GUARD_LABEL_VALUE}
            core.create_namespace(
                k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE, labels=labels))
            )
            per_create: dict[str, list[float]] = {"with the guard": [], "without": []}
            for _ in range(args.rounds):
                apply_objects(admin, pod_guard.pod_guard_objects())
                time.sleep(2)
                per_create["with the guard"].append(round_of_creates(core, apiserver, args.creates))
                guard_off(admin)
                time.sleep(2)
                per_create["without"].append(round_of_creates(core, apiserver, args.creates))
        finally:
            cluster.down(progress=lambda _: None)
    figures = {
        "creates_per_round": args.creates,
        "rounds": args.rounds,
        "apiserver_cpu_ms_per_create": {
            setting: {"median": round(statistics.median(v), 2), "rounds": [round(x, 2) for x in v]}
            for setting, v in per_create.items()
        },
    }
    medians = {k: v["median"] for k, v in figures["apiserver_cpu_ms_per_create"].items()}
    figures["guard_ms_per_create"] = round(medians["with the guard"] - medians["without"], 2)
    for setting, row in figures["apiserver_cpu_ms_per_create"].items():
        print(f"{setting:15} API server CPU per pod create: {row['median']:.2f} ms {row['rounds']}")
    print(f"the guard's share: {figures['guard_ms_per_create']:.2f} ms per create")
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
