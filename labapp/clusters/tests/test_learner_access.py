"""What a learner may do and make, asserted with their own token against the
real API server: exec only when the lab declares it, never attach or
port-forward, no events of their own, object counts capped by the quota, and
a teardown that no finalizer of theirs can hold up.
"""

from __future__ import annotations

import json
import secrets

import pytest

from labapp.clusters import isolation
from labapp.clusters.learner_access import LEARNER_KINDS, Quota, learner_rules
from tests.fixtures.cluster import Kubectl, make_kubectl
from tests.fixtures.waiting import wait_for


def _provision(admin, tmp_path_factory, who: str, **options) -> tuple[str, str, Kubectl]:
    sandbox_id = f"{who}{secrets.token_hex(2)}"
    namespace = f"assets-{sandbox_id}"
    credentials = isolation.provision(
        admin, sandbox_id=sandbox_id, namespaces={"assets": namespace}, **options
    )
    path = tmp_path_factory.mktemp(who) / "kubeconfig"
    path.write_text(credentials.kubeconfig)
    return sandbox_id, namespace, make_kubectl(path)


@pytest.fixture(scope="module")
def sandboxes(local_cluster, tmp_path_factory):
    """A learner whose lab declares exec commands, and one whose lab does not."""
    admin = local_cluster.kubeconfig_path
    made = {
        "exec": _provision(admin, tmp_path_factory, "lx", exec_allowed=True),
        "plain": _provision(admin, tmp_path_factory, "lp"),
    }
    yield made
    for sandbox_id, namespace, _ in made.values():
        isolation.teardown(admin, sandbox_id=sandbox_id, namespaces={"assets": namespace})


def can_i(sandbox, verb: str, resource: str) -> bool:
    _, namespace, as_learner = sandbox
    # `can-i VERB pods/exec` would ask about a pod named "exec".
    resource, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    answer = as_learner("auth", "can-i", verb, resource, *extra, "-n", namespace)
    assert answer.stdout.strip() in ("yes", "no"), answer.stderr
    return answer.stdout.strip() == "yes"


def test_exec_is_granted_only_when_the_lab_declares_exec_commands(sandboxes):
    assert can_i(sandboxes["exec"], "create", "pods/exec")
    assert can_i(sandboxes["exec"], "get", "pods/exec")
    assert not can_i(sandboxes["plain"], "create", "pods/exec")
    assert not can_i(sandboxes["plain"], "get", "pods/exec")


@pytest.mark.parametrize("who", ["exec", "plain"])
@pytest.mark.parametrize(
    "resource", ["pods/attach", "pods/portforward", "pods/ephemeralcontainers"]
)
def test_attach_port_forward_and_ephemeral_containers_are_never_granted(sandboxes, who, resource):
    for verb in ("get", "create", "update", "patch"):
        assert not can_i(sandboxes[who], verb, resource), (verb, resource)


def test_learners_read_events_but_cannot_make_them(sandboxes):
    plain = sandboxes["plain"]
    for resource in ("events", "events.events.k8s.io"):
        assert can_i(plain, "list", resource)
        for verb in ("create", "update", "patch", "delete"):
            assert not can_i(plain, verb, resource), (verb, resource)
    _, namespace, as_learner = plain
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "fake"},
        "involvedObject": {"kind": "Pod", "name": "x", "namespace": namespace},
        "reason": "Forged",
        "message": "your check passed",
    }
    made = as_learner("-n", namespace, "create", "-f", "-", stdin=json.dumps(event))
    assert made.returncode != 0 and "forbidden" in made.stderr.lower()


def test_learners_cannot_write_endpoints_quotas_or_limits(sandboxes):
    plain = sandboxes["plain"]
    for resource in ("endpoints", "resourcequotas", "limitranges"):
        assert can_i(plain, "get", resource)
        assert not can_i(plain, "create", resource)
        assert not can_i(plain, "patch", resource)


def test_every_kind_a_learner_can_create_is_counted_by_the_quota(sandboxes, kubectl):
    _, namespace, _ = sandboxes["plain"]
    shown = kubectl("-n", namespace, "get", "resourcequota", "labapp-sandbox", "-o", "json")
    hard = json.loads(shown.stdout)["spec"]["hard"]
    for kind in LEARNER_KINDS:
        resource = kind.resource + (f".{kind.group}" if kind.group else "")
        assert can_i(sandboxes["plain"], "create", resource), resource
        assert hard[kind.quota_key] == str(kind.count)
    assert hard["services.loadbalancers"] == "0"
    assert hard["services.nodeports"] == "0"


def test_the_role_and_the_quota_come_from_one_table():
    # Every creatable resource in the Role is in the quota, and nothing else is creatable.
    hard = Quota().hard()
    for exec_allowed in (False, True):
        for rule in learner_rules(exec_allowed=exec_allowed):
            if "create" not in rule["verbs"]:
                continue
            for resource in rule["resources"]:
                if "/" in resource:
                    assert resource == "pods/exec" and exec_allowed
                    continue
                group = rule["apiGroups"][0]
                assert f"count/{resource}" + (f".{group}" if group else "") in hard
    with pytest.raises(ValueError, match="no learner kind widgets"):
        Quota(counts={"widgets": 1}).hard()


def _quota_used(kubectl, namespace: str) -> dict:
    shown = kubectl("-n", namespace, "get", "resourcequota", "labapp-sandbox", "-o", "json")
    return json.loads(shown.stdout).get("status", {}).get("used", {})


def test_the_object_count_quota_refuses_the_configmap_past_the_limit(
    local_cluster, tmp_path_factory, kubectl
):
    admin = local_cluster.kubeconfig_path
    limit = 4
    sandbox_id, namespace, as_learner = _provision(
        admin, tmp_path_factory, "lq", quota=Quota(counts={"configmaps": limit})
    )
    try:
        # Every namespace gets kube-root-ca.crt, which counts too.
        wait_for(
            lambda: _quota_used(kubectl, namespace).get("count/configmaps") == "1",
            what="the quota to count kube-root-ca.crt",
        )
        for index in range(limit - 1):
            made = as_learner("-n", namespace, "create", "configmap", f"c{index}")
            assert made.returncode == 0, made.stderr
        over = as_learner("-n", namespace, "create", "configmap", "one-too-many")
        assert over.returncode != 0
        assert "exceeded quota: labapp-sandbox" in over.stderr
        assert f"limited: count/configmaps={limit}" in over.stderr
    finally:
        isolation.teardown(admin, sandbox_id=sandbox_id, namespaces={"assets": namespace})


def test_one_pipe_of_many_objects_stops_at_the_quota(sandboxes, kubectl):
    _, namespace, as_learner = sandboxes["plain"]
    wait_for(
        lambda: "count/secrets" in _quota_used(kubectl, namespace), what="the quota's first count"
    )
    many = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{index}"}}
            for index in range(60)
        ],
    }
    made = as_learner("-n", namespace, "create", "-f", "-", stdin=json.dumps(many))
    assert made.returncode != 0
    assert "exceeded quota" in made.stderr
    listed = kubectl("-n", namespace, "get", "secrets", "-o", "name")
    assert len(listed.stdout.split()) == 20


HELD = "example.com/never-released"


def test_teardown_completes_even_when_the_learner_left_finalizers(
    local_cluster, tmp_path_factory, kubectl
):
    admin = local_cluster.kubeconfig_path
    sandbox_id, namespace, as_learner = _provision(admin, tmp_path_factory, "lf")
    held = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "held", "finalizers": [HELD]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "held", "finalizers": [HELD]},
            "spec": {
                "selector": {"matchLabels": {"app": "held"}},
                "template": {
                    # Every pod the ReplicaSet makes carries the finalizer as well.
                    "metadata": {"labels": {"app": "held"}, "finalizers": [HELD]},
                    "spec": {"containers": [{"name": "c", "image": "registry.example/x:1"}]},
                },
            },
        },
    ]
    listed = {"apiVersion": "v1", "kind": "List", "items": held}
    made = as_learner("-n", namespace, "create", "-f", "-", stdin=json.dumps(listed))
    assert made.returncode == 0, made.stderr
    wait_for(
        lambda: kubectl("-n", namespace, "get", "pods", "-o", "name").stdout.strip(),
        what="the deployment's pod",
    )
    isolation.teardown(admin, sandbox_id=sandbox_id, namespaces={"assets": namespace})
    wait_for(
        lambda: "NotFound" in kubectl("get", "namespace", namespace).stderr,
        timeout=120,
        what=f"namespace {namespace} to be gone",
    )
