"""What a fresh local cluster needs before it can take workloads."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from labapp.clusters.client import api_client, forget_client
from labapp.clusters.localcluster.build import Progress
from labapp.clusters.localcluster.errors import ClusterError

NODE_READY_TIMEOUT = 60.0
DEFAULT_ACCOUNT_TIMEOUT = 60.0


def ensure_node_and_default_account(kubeconfig: Path, node_name: str, progress: Progress) -> None:
    forget_client(kubeconfig)
    core = k8s.CoreV1Api(api_client(kubeconfig))
    node = k8s.V1Node(
        metadata=k8s.V1ObjectMeta(
            name=node_name,
            # KWOK manages every node (--manage-all-nodes); the labels are what
            # a scheduler and a learner expect to see on a node.
            labels={
                "type": "kwok",
                "kubernetes.io/hostname": node_name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
            annotations={"kwok.x-k8s.io/node": "fake"},
        )
    )
    try:
        core.create_node(node)
        progress(f"created node {node_name} (simulated by KWOK)")
    except ApiException as exc:
        if exc.status != 409:
            raise
    started = time.monotonic()
    _wait(
        lambda: _node_ready(core, node_name),
        NODE_READY_TIMEOUT,
        f"node {node_name} did not become Ready; is kwok running?",
    )
    progress(f"node {node_name} is Ready after {time.monotonic() - started:.1f}s")
    # ServiceAccount admission refuses pods until `default` exists, and a
    # lab's first error would then be about that, not about PodSecurity.
    _wait(
        lambda: _has_default_account(core),
        DEFAULT_ACCOUNT_TIMEOUT,
        "ServiceAccount default/default was not created; is kube-controller-manager running?",
    )


def _node_ready(core: k8s.CoreV1Api, name: str) -> bool:
    node = core.read_node(name)
    conditions = (node.status and node.status.conditions) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _has_default_account(core: k8s.CoreV1Api) -> bool:
    try:
        core.read_namespaced_service_account("default", "default")
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _wait(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise ClusterError(f"{message} (waited {timeout:.0f}s)")
