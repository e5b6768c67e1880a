""" "Check again": the step's checks re-run against the cluster and the step's last output."""

from __future__ import annotations

import pytest
from django.utils import timezone

from labapp.learning.services import lab_start
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.services import sandbox_provision
from tests.fixtures.cluster import write_unreachable_kubeconfig

pytestmark = [pytest.mark.cluster, pytest.mark.django_db]


def test_check_again_passes_once_the_cluster_agrees(
    settings, local_cluster, tmp_path, learner, as_learner, tiny_lab, kubectl, unused_tcp_port
):
    settings.KUBECONFIG = str(local_cluster.kubeconfig_path)
    settings.SANDBOX_HOME = tmp_path
    lab_start(user=learner, lab_id=tiny_lab.id)
    sandbox = sandbox_provision(sandbox_id=Sandbox.objects.get(owner=learner).id)
    assert sandbox.state == Sandbox.State.READY, sandbox.status_message
    ns = sandbox.namespaces["shop"]
    # The step's command ran, and said what the output checks look for...
    CommandRun.objects.create(
        sandbox=sandbox,
        step_id="label-namespace",
        command="kubectl apply -k shop/restricted",
        state="succeeded",
        exit_code=0,
        stdout=f"namespace/{ns} configured\nconfigmap/shop unchanged\n",
        stderr=f'Warning: existing pods in namespace "{ns}" violate the new PodSecurity '
        'enforce level "restricted:latest"\n',
        finished_at=timezone.now(),
    )
    url = "/labs/tiny/steps/label-namespace/check/"

    # The API is unreachable: "could not check", and the step is not failed for it.
    settings.KUBECONFIG = str(write_unreachable_kubeconfig(tmp_path / "kc", unused_tcp_port))
    page = as_learner.post(url, headers={"HX-Request": "true"}).content.decode()
    assert "Could not check" in page and "not your mistake" in page
    assert 'data-state="working"' in page

    # ...but the namespace is not labelled yet: the label check fails.
    settings.KUBECONFIG = str(local_cluster.kubeconfig_path)
    page = as_learner.post(url, headers={"HX-Request": "true"}).content.decode()
    assert page.count('data-status="pass"') == 2
    assert page.count('data-status="fail"') == 1
    assert 'data-state="passed"' not in page

    labelled = kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    assert labelled.returncode == 0, labelled.stderr
    page = as_learner.post(url, headers={"HX-Request": "true"}).content.decode()
    assert page.count('data-status="pass"') == 3
    assert 'data-state="passed"' in page
