"""The cheaper cold path, against the real API server: a sandbox's objects go
out as one batch, the cluster-wide guard is applied once per cluster (and again
when it goes missing), and a new workspace's kubectl starts from a warm cache."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from labapp.clusters import isolation, kubecache, objects, pod_guard
from labapp.clusters.kubectl import kubectl_path
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.cluster


class Applies:
    """Counts apply_objects calls as isolation makes them, and passes them on."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, kubeconfig, bodies, *, parallel: int = 1) -> None:
        self.batches.append([f"{b['kind']}/{b['metadata']['name']}" for b in bodies])
        objects.apply_objects(kubeconfig, bodies, parallel=parallel)

    def guard_batches(self) -> int:
        return sum(f"Namespace/{isolation.LEARNERS_NAMESPACE}" in b for b in self.batches)


@pytest.fixture
def applies(monkeypatch) -> Applies:
    counter = Applies()
    monkeypatch.setattr(isolation, "apply_objects", counter)
    return counter


def provision(admin: Path) -> tuple[str, dict[str, str]]:
    sandbox_id = f"cold{secrets.token_hex(2)}"
    namespaces = {"assets": f"assets-{sandbox_id}", "tools": f"tools-{sandbox_id}"}
    isolation.provision(admin, sandbox_id=sandbox_id, namespaces=namespaces, token_seconds=600)
    return sandbox_id, namespaces


def test_each_sandbox_is_one_batch_and_the_guard_is_applied_once(local_cluster, applies, kubectl):
    admin = local_cluster.kubeconfig_path
    isolation.ensure_cluster_guard(admin)  # whatever this process knew, it knows now
    applies.batches.clear()
    made = [provision(admin) for _ in range(3)]
    try:
        assert applies.guard_batches() == 0
        assert len(applies.batches) == 3  # one batch per sandbox
        for sandbox_id, namespaces in made:
            for namespace in namespaces.values():
                for kind in ("role", "rolebinding", "resourcequota", "limitrange"):
                    shown = kubectl("-n", namespace, "get", kind, "-o", "name")
                    assert shown.returncode == 0 and shown.stdout.strip(), (kind, shown.stderr)
            shown = kubectl("get", "clusterrolebinding", f"labapp-sandbox-{sandbox_id}")
            assert shown.returncode == 0, shown.stderr
        # Another process (or this one, having forgotten) finds the guard in place
        # by reading it, and applies nothing.
        isolation.forget_cluster_guard()
        assert isolation.ensure_cluster_guard(admin) is False
        assert applies.guard_batches() == 0
    finally:
        for sandbox_id, namespaces in made:
            isolation.teardown(admin, sandbox_id=sandbox_id, namespaces=namespaces)


def test_a_guard_that_went_missing_is_applied_again(local_cluster, applies, kubectl):
    admin = local_cluster.kubeconfig_path
    isolation.ensure_cluster_guard(admin)
    applies.batches.clear()
    binding = pod_guard.POLICY_NAMES[0]
    deleted = kubectl("delete", "validatingadmissionpolicybinding", binding)
    assert deleted.returncode == 0, deleted.stderr
    wait_until_unguarded(admin, kubectl)
    # This process still believes the guard is whole: the new sandbox's proof that
    # the guard answers fails, so provisioning applies the guard again and retries.
    sandbox_id, namespaces = provision(admin)
    try:
        assert applies.guard_batches() == 1
        assert kubectl("get", "validatingadmissionpolicybinding", binding).returncode == 0
    finally:
        isolation.teardown(admin, sandbox_id=sandbox_id, namespaces=namespaces)
    # A process that looks afresh finds a missing piece too, and applies only then.
    deleted = kubectl("delete", "validatingadmissionpolicy", isolation.GUARD_POLICY)
    assert deleted.returncode == 0, deleted.stderr
    isolation.forget_cluster_guard()
    assert isolation.ensure_cluster_guard(admin) is True
    assert kubectl("get", "validatingadmissionpolicy", isolation.GUARD_POLICY).returncode == 0
    assert isolation.ensure_cluster_guard(admin) is False


def wait_until_unguarded(admin: Path, kubectl) -> None:
    """The API server applies a deleted binding's removal a moment later."""
    probe = f"unguarded-{secrets.token_hex(2)}"
    made = kubectl("create", "namespace", probe)
    assert made.returncode == 0, made.stderr
    labelled = kubectl(
        "label", "namespace", probe, f"{pod_guard.GUARD_LABEL}={pod_guard.GUARD_LABEL_VALUE}"
    )
    assert labelled.returncode == 0, labelled.stderr

    def unguarded() -> bool:
        try:
            pod_guard.verify_pod_guard(admin, namespace=probe, timeout=0)
        except pod_guard.PodGuardNotEnforced:
            return True
        return False

    try:
        wait_for(unguarded, timeout=30, what="the API server to drop the deleted binding")
    finally:
        kubectl("delete", "namespace", probe, "--wait=false")


def digest(folder: Path) -> str:
    hashed = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            hashed.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return hashed.hexdigest()


def test_a_new_workspace_starts_from_the_clusters_warm_kubectl_cache(local_cluster, tmp_path):
    admin = local_cluster.kubeconfig_path
    warm = kubecache.warm_cache(admin, root=tmp_path / "warm", kubectl=kubectl_path())
    assert warm is not None and (warm / "discovery").is_dir() and (warm / "http").is_dir()
    assert kubecache.warm_cache(admin, root=tmp_path / "warm", kubectl=kubectl_path()) == warm
    shared = digest(warm)
    workspace = tmp_path / "workspace"
    assert kubecache.seed_workspace_cache(warm, workspace / ".kube" / "cache")
    assert not kubecache.seed_workspace_cache(warm, workspace / ".kube" / "cache")
    entries = sorted(p.name for p in (workspace / ".kube/cache/http").iterdir())
    sample = next(p for p in (workspace / ".kube/cache/http").iterdir() if p.is_file())
    assert sample.stat().st_nlink >= 2  # a link to the shared file, not a copy
    # kubectl in the workspace, as the restricted shell runs it.
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "warm"}}
    (workspace / "cm.yaml").write_text(json.dumps(config))
    env = {
        "KUBECONFIG": str(admin),
        "HOME": str(workspace),
        "PATH": "/nonexistent",
        "KUBECACHEDIR": str(workspace / ".kube" / "cache"),
        "KUBERC": "off",
    }
    for args in (
        ["apply", "-n", "default", "-f", "cm.yaml"],
        ["apply", "-n", "default", "-f", "cm.yaml"],  # a patch: the OpenAPI documents
        ["get", "-n", "default", "configmap", "warm"],
        ["delete", "-n", "default", "configmap", "warm"],
    ):
        done = subprocess.run(
            [str(kubectl_path()), *args], env=env, cwd=workspace, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    # Nothing was missing from the warm cache, and nothing was written into it.
    assert sorted(p.name for p in (workspace / ".kube/cache/http").iterdir()) == entries
    assert digest(warm) == shared
    assert not os.access(sample, os.W_OK) or os.geteuid() == 0  # read-only (root ignores it)
