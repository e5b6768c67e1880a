"""Learner isolation, asserted against the real API server with real tokens.

The personas: learner A and learner B each hold their own sandbox; the
admin is the lab's own identity. Every refusal asserted here comes from the
API server (RBAC or the admission policy), not from our shell.
"""

from __future__ import annotations

import secrets
import subprocess

import pytest

from labapp.clusters import isolation
from tests.fixtures.cluster import make_kubectl
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.cluster


def _sandbox(admin_kubeconfig, tmp_path_factory, who: str):
    sandbox_id = f"{who}{secrets.token_hex(2)}"
    namespaces = {"assets": f"assets-{sandbox_id}"}
    credentials = isolation.provision(
        admin_kubeconfig, sandbox_id=sandbox_id, namespaces=namespaces, token_seconds=1800
    )
    path = tmp_path_factory.mktemp(who) / "kubeconfig"
    path.write_text(credentials.kubeconfig)
    return sandbox_id, namespaces["assets"], make_kubectl(path)


@pytest.fixture(scope="module")
def sandboxes(local_cluster, tmp_path_factory, kubectl):
    admin = local_cluster.kubeconfig_path
    a = _sandbox(admin, tmp_path_factory, "a")
    b = _sandbox(admin, tmp_path_factory, "b")
    # Something of B's worth stealing.
    made = kubectl("-n", b[1], "create", "configmap", "b-secret-plans", "--from-literal=x=1")
    assert made.returncode == 0, made.stderr
    yield a, b
    for sandbox_id, namespace, _ in (a, b):
        isolation.teardown(admin, sandbox_id=sandbox_id, namespaces={"assets": namespace})


def refused(result, *fragments: str) -> None:
    assert result.returncode != 0, f"expected a refusal, got: {result.stdout}"
    for fragment in fragments:
        # kubectl says "Forbidden" or "is forbidden" depending on the verb.
        assert fragment.lower() in result.stderr.lower(), result.stderr


@pytest.mark.parametrize(
    "verb_args",
    [
        ["get", "pods"],
        ["get", "configmap", "b-secret-plans"],
        ["get", "configmaps"],
        ["patch", "configmap", "b-secret-plans", "-p", '{"data":{"x":"2"}}'],
        ["delete", "configmap", "b-secret-plans"],
        ["create", "configmap", "planted", "--from-literal=y=1"],
        ["delete", "pods", "--all"],
    ],
)
def test_learner_a_cannot_touch_anything_in_bs_namespace(sandboxes, verb_args):
    (_, _, as_a), (_, b_ns, _) = sandboxes
    refused(as_a("-n", b_ns, *verb_args), "Forbidden", f'in the namespace "{b_ns}"')


def test_learner_a_cannot_list_across_namespaces_or_see_bs_namespace(sandboxes):
    (_, _, as_a), (_, b_ns, _) = sandboxes
    refused(as_a("get", "pods", "--all-namespaces"), "Forbidden", "at the cluster scope")
    refused(as_a("get", "namespace", b_ns), "Forbidden")
    refused(as_a("get", "namespaces"), "Forbidden")


def test_learner_a_cannot_create_or_delete_namespaces(sandboxes):
    (_, a_ns, as_a), _ = sandboxes
    refused(as_a("create", "namespace", "a-new-one"), "Forbidden")
    refused(as_a("delete", "namespace", a_ns), "Forbidden")


def test_learner_a_may_change_only_pod_security_labels_on_their_namespace(sandboxes, kubectl):
    (_, a_ns, as_a), _ = sandboxes
    allowed = as_a("label", "namespace", a_ns, "pod-security.kubernetes.io/warn=baseline")
    assert allowed.returncode == 0, allowed.stderr
    shown = kubectl("get", "namespace", a_ns, "-o", "jsonpath={.metadata.labels}")
    assert '"pod-security.kubernetes.io/warn":"baseline"' in shown.stdout

    refused(
        as_a("label", "namespace", a_ns, "team=red"),
        "learners may change only pod-security.kubernetes.io/* labels",
    )
    refused(
        as_a("label", "namespace", a_ns, "labapp.dev/sandbox-"),
        "learners may change only pod-security.kubernetes.io/* labels",
    )
    refused(as_a("annotate", "namespace", a_ns, "note=mine"), "learners may not change annotations")


def test_learner_a_cannot_raise_their_quota_or_reach_other_learners_tokens(sandboxes):
    (_, a_ns, as_a), (b_id, _, _) = sandboxes
    refused(as_a("-n", a_ns, "delete", "resourcequota", "labapp-sandbox"), "Forbidden")
    refused(as_a("-n", isolation.LEARNERS_NAMESPACE, "get", "serviceaccounts"), "Forbidden")
    refused(
        as_a("-n", isolation.LEARNERS_NAMESPACE, "create", "token", isolation.account_name(b_id)),
        "Forbidden",
    )
    refused(as_a("get", "pods", "-n", a_ns, "--as=system:admin"), "Forbidden", "impersonate")


def test_learner_a_can_work_in_their_own_namespace(sandboxes):
    (_, a_ns, as_a), _ = sandboxes
    made = as_a("-n", a_ns, "create", "configmap", "mine", "--from-literal=k=v")
    assert made.returncode == 0, made.stderr
    listed = as_a("-n", a_ns, "get", "configmaps", "-o", "name")
    assert "configmap/mine" in listed.stdout


def test_provisioning_twice_does_no_harm_and_teardown_revokes_everything(
    local_cluster, tmp_path, kubectl
):
    admin = local_cluster.kubeconfig_path
    sandbox_id = f"t{secrets.token_hex(2)}"
    namespaces = {"assets": f"assets-{sandbox_id}"}
    isolation.provision(admin, sandbox_id=sandbox_id, namespaces=namespaces)
    again = isolation.provision(admin, sandbox_id=sandbox_id, namespaces=namespaces)
    path = tmp_path / "kubeconfig"
    path.write_text(again.kubeconfig)
    as_learner = make_kubectl(path)
    assert as_learner("-n", namespaces["assets"], "get", "pods").returncode == 0

    isolation.teardown(admin, sandbox_id=sandbox_id, namespaces=namespaces)
    isolation.teardown(admin, sandbox_id=sandbox_id, namespaces=namespaces)  # repeatable

    # The API server caches a validated token for ~10s; RBAC refuses at once.
    def refused() -> subprocess.CompletedProcess[str] | None:
        listed = as_learner("-n", namespaces["assets"], "get", "pods")
        return listed if listed.returncode != 0 else None

    after = wait_for(refused, timeout=15, what="the learner to be refused")
    assert "forbidden" in after.stderr.lower() or "unauthorized" in after.stderr.lower()
    gone = kubectl("get", "clusterrole", f"labapp-sandbox-{sandbox_id}")
    assert gone.returncode != 0 and "NotFound" in gone.stderr
