"""Sandbox lifecycle services, called directly against the real control plane."""

from __future__ import annotations

import datetime as dt

import pytest
import redis

from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.services import (
    sandbox_create,
    sandbox_provision,
    sandbox_reset,
    sandbox_teardown,
    sandboxes_redo_stalled,
)
from tests.fixtures.cluster import make_kubectl, write_unreachable_kubeconfig

pytestmark = [pytest.mark.cluster, pytest.mark.django_db]


@pytest.fixture
def cluster_settings(settings, local_cluster, tmp_path, tiny_lab):
    settings.KUBECONFIG = str(local_cluster.kubeconfig_path)
    settings.SANDBOX_HOME = tmp_path / "sandboxes"
    return settings


def provisioned(learner, lab_id="tiny") -> Sandbox:
    return sandbox_provision(sandbox_id=sandbox_create(owner=learner, lab_id=lab_id).id)


def namespace_phase(kubectl, name: str) -> str:
    shown = kubectl("get", "namespace", name, "-o", "jsonpath={.status.phase}")
    return shown.stdout if shown.returncode == 0 else "gone"


def test_provisioning_makes_a_ready_sandbox_at_the_labs_starting_state(
    cluster_settings, learner, kubectl
):
    sandbox = provisioned(learner)
    assert sandbox.state == Sandbox.State.READY, sandbox.status_message
    ns = sandbox.namespaces["shop"]
    assert ns == f"shop-{sandbox.slug}"
    # Setup ran as admin: the shop pod runs, with the lab's starting configuration.
    pods = kubectl("-n", ns, "get", "pods", "-o", "jsonpath={.items[*].status.phase}")
    assert pods.stdout == "Running"
    greeting = kubectl("-n", ns, "get", "configmap", "shop", "-o", "jsonpath={.data.GREETING}")
    assert greeting.stdout == "hi"
    # The learner's own token works, in their namespace only.
    sandbox.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
    sandbox.kubeconfig_path.write_text(sandbox.learner_kubeconfig)
    learners_kubectl = make_kubectl(sandbox.kubeconfig_path)
    assert learners_kubectl("-n", ns, "get", "deployment", "shop").returncode == 0
    assert learners_kubectl("-n", "default", "get", "pods").returncode != 0
    assert (sandbox.workspace / "shop" / "restricted").is_dir()
    assert f"namespace: {ns}" in (sandbox.workspace / "shop/base/kustomization.yaml").read_text()


def test_provisioning_twice_does_no_harm_and_create_resumes(cluster_settings, learner):
    sandbox = provisioned(learner)
    again = sandbox_provision(sandbox_id=sandbox.id)
    assert (again.state, again.learner_kubeconfig) == (
        Sandbox.State.READY,
        sandbox.learner_kubeconfig,
    )
    assert sandbox_create(owner=learner, lab_id="tiny").id == sandbox.id


def test_an_unreachable_cluster_fails_provisioning_naming_the_cause(
    cluster_settings, learner, tmp_path, unused_tcp_port
):
    cluster_settings.KUBECONFIG = str(
        write_unreachable_kubeconfig(tmp_path / "kc", unused_tcp_port)
    )
    sandbox = provisioned(learner)
    assert sandbox.state == Sandbox.State.FAILED
    assert sandbox.status_message.startswith("the sandbox cluster is unreachable:")
    assert "could not be reached" in sandbox.status_message
    assert not sandbox.directory.exists()


def test_a_failing_setup_leaves_nothing_half_made(cluster_settings, learner, kubectl, lab_copy):
    broken = lab_copy.workspace_file("shop/base/configmap.yaml")
    broken.write_text(broken.read_text().replace("GREETING: hi", "GREETING: [not, a, string]"))
    sandbox = provisioned(learner)
    assert sandbox.state == Sandbox.State.FAILED
    assert "setup command `kubectl apply -k shop/base` failed" in sandbox.status_message
    assert namespace_phase(kubectl, sandbox.namespaces["shop"]) in ("Terminating", "gone")
    account = kubectl("-n", "labapp-learners", "get", "serviceaccount", f"learner-{sandbox.slug}")
    assert "NotFound" in account.stderr


def test_reset_replaces_the_sandbox_and_teardown_removes_it(cluster_settings, learner, kubectl):
    first = provisioned(learner)
    fresh = sandbox_reset(sandbox_id=first.id)
    first.refresh_from_db()
    assert first.state == Sandbox.State.DELETED
    assert fresh.slug != first.slug and fresh.state == Sandbox.State.PROVISIONING
    assert namespace_phase(kubectl, first.namespaces["shop"]) in ("Terminating", "gone")
    fresh = sandbox_provision(sandbox_id=fresh.id)
    assert fresh.state == Sandbox.State.READY

    gone = sandbox_teardown(sandbox_id=fresh.id)
    assert gone.state == Sandbox.State.DELETED
    assert namespace_phase(kubectl, fresh.namespaces["shop"]) in ("Terminating", "gone")
    assert not gone.directory.exists()


def test_a_stalled_provisioning_is_queued_again(
    cluster_settings, learner, redis_server, django_capture_on_commit_callbacks, django_user_model
):
    sandbox = sandbox_create(owner=learner, lab_id="tiny")
    unclaimed = sandbox_create(owner=django_user_model.objects.create_user("u2"), lab_id="tiny")
    fresh = sandbox_create(owner=django_user_model.objects.create_user("u3"), lab_id="tiny")
    long_ago = sandbox.updated_at - dt.timedelta(minutes=30)
    # A worker claimed it and vanished; another's message was lost before any claim.
    Sandbox.objects.filter(id=sandbox.id).update(updated_at=long_ago, claimed_at=long_ago)
    Sandbox.objects.filter(id=unclaimed.id).update(
        updated_at=unclaimed.updated_at - dt.timedelta(seconds=90)
    )
    queue = redis.Redis.from_url(redis_server.url)
    queue.delete("provisioning")
    with django_capture_on_commit_callbacks(execute=True):
        assert sandboxes_redo_stalled() == 2  # not `fresh`: its message may still come
    assert queue.llen("provisioning") == 2  # real messages, on the real broker
    fresh.refresh_from_db()
    assert fresh.claimed_at is None
    sandbox.refresh_from_db()
    assert sandbox.claimed_at is None


def test_a_sandbox_made_for_a_later_step_replays_the_earlier_solutions(
    cluster_settings, learner, kubectl
):
    sandbox = sandbox_create(
        owner=learner, lab_id="tiny", replay_steps=["label-namespace", "configure"]
    )
    sandbox = sandbox_provision(sandbox_id=sandbox.id)
    assert sandbox.state == Sandbox.State.READY, sandbox.status_message
    ns = sandbox.namespaces["shop"]
    labels = kubectl("get", "namespace", ns, "-o", "jsonpath={.metadata.labels}")
    assert '"pod-security.kubernetes.io/enforce":"restricted"' in labels.stdout
    greeting = kubectl("-n", ns, "get", "configmap", "shop", "-o", "jsonpath={.data.GREETING}")
    assert greeting.stdout == "hello"
    assert kubectl("-n", ns, "get", "service", "shop").returncode == 0
    running = kubectl(
        "-n", ns, "get", "pods", "--field-selector=status.phase=Running", "-o", "name"
    )
    assert running.stdout.startswith("pod/shop-")  # not recycled yet: where step 3 begins


def test_an_expired_sandbox_is_torn_down_and_refuses_commands(cluster_settings, learner, kubectl):
    import time_machine

    from labapp.runs.services import RunNotAllowed, run_start
    from labapp.sandboxes.services import sandboxes_expire

    sandbox = sandbox_provision(
        sandbox_id=sandbox_create(
            owner=learner, lab_id="tiny", lifetime=dt.timedelta(minutes=30)
        ).id
    )
    assert sandboxes_expire() == 0
    with time_machine.travel(sandbox.expires_at + dt.timedelta(seconds=1)):
        with pytest.raises(RunNotAllowed, match="expired"):
            run_start(sandbox=sandbox, command="kubectl get pods")
        assert sandboxes_expire() == 1
    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.EXPIRED
    assert namespace_phase(kubectl, sandbox.namespaces["shop"]) in ("Terminating", "gone")


REAL_NODE = """
apiVersion: v1
kind: Node
metadata:
  name: real-node-1
"""


def test_privileged_labs_are_refused_on_real_nodes_unless_the_operator_opts_in(
    cluster_settings, learner, kubectl, django_user_model
):
    # A Node without KWOK's annotation counts as a real node. (KWOK still
    # simulates it here: no real machine can join this test cluster.)
    made = kubectl("apply", "-f", "-", stdin=REAL_NODE)
    assert made.returncode == 0, made.stderr
    try:
        refused = provisioned(learner, lab_id="tiny-privileged")
        assert refused.state == Sandbox.State.FAILED
        assert refused.status_message == (
            "the lab 'tiny-privileged' runs privileged pods, and this cluster has real nodes; "
            "the operator must set LABAPP_ALLOW_PRIVILEGED_LABS=true to allow it"
        )
        assert namespace_phase(kubectl, refused.namespaces["shop"]) == "gone"
        # The tiny lab needs no privileges: it is fine anywhere.
        unprivileged = provisioned(learner, lab_id="tiny")
        assert unprivileged.state == Sandbox.State.READY, unprivileged.status_message
        cluster_settings.ALLOW_PRIVILEGED_LABS = True
        other = django_user_model.objects.create_user("opted-in")
        opted_in = provisioned(other, lab_id="tiny-privileged")
        assert opted_in.state == Sandbox.State.READY, opted_in.status_message
    finally:
        kubectl("delete", "node", "real-node-1")


def test_an_unexpected_error_fails_provisioning_with_its_cause(
    cluster_settings, learner, kubectl, tmp_path
):
    not_a_folder = tmp_path / "occupied"
    not_a_folder.write_text("a file where the sandboxes' folder should be")
    cluster_settings.SANDBOX_HOME = not_a_folder
    sandbox = provisioned(learner)
    assert sandbox.state == Sandbox.State.FAILED
    assert sandbox.status_message.startswith("provisioning failed (")
    assert "Error" in sandbox.status_message  # the exception's type, named
    assert namespace_phase(kubectl, sandbox.namespaces["shop"]) in ("Terminating", "gone")
