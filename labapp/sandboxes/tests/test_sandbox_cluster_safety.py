"""Sandboxes on a shared cluster: what a lab declares reaches the cluster, and a
teardown the cluster could not hear is done later, by the beat task."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from labapp.clusters.pod_guard import PRIVILEGED_IMAGES_ANNOTATION
from labapp.sandboxes import tasks
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.services import (
    sandbox_create,
    sandbox_provision,
    sandbox_teardown,
    sandboxes_expire,
    sandboxes_retry_teardown,
)
from tests.fixtures.cluster import make_kubectl, write_unreachable_kubeconfig

pytestmark = [pytest.mark.cluster, pytest.mark.django_db]


@pytest.fixture
def cluster_settings(settings, local_cluster, tmp_path, tiny_lab):
    settings.KUBECONFIG = str(local_cluster.kubeconfig_path)
    settings.SANDBOX_HOME = tmp_path / "sandboxes"
    return settings


def provisioned(owner, lab_id="tiny", **options) -> Sandbox:
    sandbox = sandbox_create(owner=owner, lab_id=lab_id, **options)
    sandbox = sandbox_provision(sandbox_id=sandbox.id)
    assert sandbox.state == Sandbox.State.READY, sandbox.status_message
    return sandbox


def namespace_phase(kubectl, name: str) -> str:
    shown = kubectl("get", "namespace", name, "-o", "jsonpath={.status.phase}")
    return shown.stdout if shown.returncode == 0 else "gone"


def learners_kubectl(sandbox: Sandbox):
    sandbox.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
    sandbox.kubeconfig_path.write_text(sandbox.learner_kubeconfig)
    return make_kubectl(sandbox.kubeconfig_path)


def pending(sandbox: Sandbox) -> bool:
    return Sandbox.objects.get(id=sandbox.id).teardown_pending


def later() -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=2)


def cluster_goes_away(settings, tmp_path, port: int) -> str:
    reachable = settings.KUBECONFIG
    settings.KUBECONFIG = str(write_unreachable_kubeconfig(tmp_path / "gone", port))
    return reachable


def test_a_teardown_while_the_cluster_is_unreachable_is_retried_until_done(
    cluster_settings, learner, kubectl, tmp_path, unused_tcp_port
):
    sandbox = provisioned(learner)
    namespace = sandbox.namespaces["shop"]
    reachable = cluster_goes_away(cluster_settings, tmp_path, unused_tcp_port)

    gone = sandbox_teardown(sandbox_id=sandbox.id)
    # The learner is done with it (a new sandbox may start), but the cluster is not.
    assert gone.state == Sandbox.State.DELETED
    assert pending(gone)
    assert namespace_phase(kubectl, namespace) == "Active"
    assert sandbox_create(owner=learner, lab_id="tiny").id != sandbox.id

    # Still unreachable: the retry fails and keeps it pending.
    assert sandboxes_retry_teardown(now=later()) == 0
    assert pending(gone)

    cluster_settings.KUBECONFIG = reachable
    assert sandboxes_retry_teardown() == 0  # just tried: it waits its turn
    assert sandboxes_retry_teardown(now=later()) == 1
    assert not pending(gone)
    assert namespace_phase(kubectl, namespace) in ("Terminating", "gone")
    assert sandboxes_retry_teardown(now=later()) == 0


def test_an_expiry_while_the_cluster_is_unreachable_is_retried_too(
    cluster_settings, learner, kubectl, tmp_path, unused_tcp_port
):
    sandbox = provisioned(learner, lifetime=dt.timedelta(minutes=1))
    reachable = cluster_goes_away(cluster_settings, tmp_path, unused_tcp_port)
    assert sandboxes_expire(now=later()) == 1
    sandbox.refresh_from_db()
    assert (sandbox.state, sandbox.teardown_pending) == (Sandbox.State.EXPIRED, True)
    assert namespace_phase(kubectl, sandbox.namespaces["shop"]) == "Active"

    cluster_settings.KUBECONFIG = reachable
    assert sandboxes_retry_teardown(now=later()) == 1
    sandbox.refresh_from_db()
    assert (sandbox.state, sandbox.teardown_pending) == (Sandbox.State.EXPIRED, False)
    assert namespace_phase(kubectl, sandbox.namespaces["shop"]) in ("Terminating", "gone")


def test_the_retry_runs_on_the_beat(settings):
    entries = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    assert tasks.retry_sandbox_teardowns.name in entries
    assert tasks.retry_sandbox_teardowns.name == "labapp.sandboxes.tasks.retry_sandbox_teardowns"


def test_a_sandbox_carries_its_labs_privileged_images_and_nothing_more(
    cluster_settings, learner, another_learner, kubectl
):
    privileged = provisioned(learner, lab_id="tiny-privileged")
    plain = provisioned(another_learner)
    for sandbox, expected in ((privileged, "registry.example/shop:1.0"), (plain, None)):
        shown = kubectl("get", "namespace", sandbox.namespaces["shop"], "-o", "json")
        annotations = json.loads(shown.stdout)["metadata"].get("annotations", {})
        assert annotations.get(PRIVILEGED_IMAGES_ANNOTATION) == expected
    # The setup's privileged pod runs (its image is declared); the learner of
    # the plain lab cannot make one.
    pods = kubectl("-n", privileged.namespaces["shop"], "get", "pods", "-o", "json")
    [pod] = json.loads(pods.stdout)["items"]
    assert pod["spec"]["containers"][0]["securityContext"]["privileged"] is True
    ran = learners_kubectl(plain)(
        "-n", plain.namespaces["shop"], "run", "p", "--image=registry.example/shop:1.0",
        '--overrides={"spec":{"containers":[{"name":"p","image":"registry.example/shop:1.0",'
        '"securityContext":{"privileged":true}}]}}',
    )  # fmt: skip
    assert ran.returncode != 0
    assert "labapp pod guard: privileged containers are not allowed in this lab" in ran.stderr


def test_exec_is_granted_to_sandboxes_of_labs_that_declare_exec_commands(
    settings, local_cluster, tmp_path, lab_copy, learner, another_learner
):
    settings.KUBECONFIG = str(local_cluster.kubeconfig_path)
    settings.SANDBOX_HOME = tmp_path / "sandboxes"

    def declare_exec(lab: dict) -> None:
        lab["steps"][0]["exec"] = ["whoami"]

    lab_copy.derive("tiny-exec", declare_exec)
    with_exec = provisioned(learner, lab_id="tiny-exec")
    without = provisioned(another_learner)
    for sandbox, expected in ((with_exec, "yes"), (without, "no")):
        answer = learners_kubectl(sandbox)(
            "auth", "can-i", "create", "pods", "--subresource=exec",
            "-n", sandbox.namespaces["shop"],
        )  # fmt: skip
        assert answer.stdout.strip() == expected, sandbox.lab_id
