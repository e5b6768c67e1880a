""" "Check again": the step's checks re-run against the cluster and the step's last output."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from labapp.learning.services import lab_start
from labapp.runs.models import CommandRun
from labapp.sandboxes.models import Sandbox
from labapp.sandboxes.services import sandbox_provision
from tests.fixtures.cluster import write_unreachable_kubeconfig

pytestmark = [pytest.mark.cluster, pytest.mark.django_db]

WARNING = (
    'Warning: existing pods in namespace "x" violate the new PodSecurity enforce '
    'level "baseline:latest"\n'
)


def test_check_again_passes_once_the_cluster_agrees(
    settings, local_cluster, tmp_path, django_user_model, kubectl, unused_tcp_port
):
    settings.KUBECONFIG = str(local_cluster.kubeconfig_path)
    settings.SANDBOX_HOME = tmp_path
    ada = django_user_model.objects.create_user("ada")
    lab_start(user=ada, lab_id="pss-baseline")
    sandbox = sandbox_provision(sandbox_id=Sandbox.objects.get(owner=ada).id)
    ns = sandbox.namespaces["assets"]
    CommandRun.objects.create(
        sandbox=sandbox,
        step_id="label-namespace",
        command="kubectl apply -k assets/baseline-namespace",
        state="succeeded",
        exit_code=0,
        stderr=WARNING,
        finished_at=timezone.now(),
    )
    client = Client()
    client.force_login(ada)
    url = "/labs/pss-baseline/steps/label-namespace/check/"

    # The API is unreachable: "could not check", and the step is not failed for it.
    settings.KUBECONFIG = str(write_unreachable_kubeconfig(tmp_path / "kc", unused_tcp_port))
    page = client.post(url, headers={"HX-Request": "true"}).content.decode()
    assert "Could not check" in page and "not your mistake" in page
    assert 'data-state="working"' in page

    settings.KUBECONFIG = str(local_cluster.kubeconfig_path)
    labelled = kubectl(
        "label",
        "namespace",
        ns,
        "pod-security.kubernetes.io/enforce=baseline",
        "pod-security.kubernetes.io/warn=baseline",
    )
    assert labelled.returncode == 0, labelled.stderr
    page = client.post(url, headers={"HX-Request": "true"}).content.decode()
    assert page.count('data-status="pass"') == 3
    assert 'data-state="passed"' in page
