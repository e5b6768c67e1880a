"""The seed's Baseline walkthrough against the real API server and real kubectl.

Nothing here is mocked: the messages asserted are the ones kube-apiserver's
PodSecurity admission and the ReplicaSet controller produce.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from tests.fixtures.waiting import wait_for

ASSETS = settings.BASE_DIR / "lab_steps" / "components" / "assets"
PRIVILEGED_VIOLATION = (
    'violates PodSecurity "baseline:latest": privileged '
    '(container "assets" must not set securityContext.privileged=true)'
)

pytestmark = pytest.mark.cluster


def _pods(kubectl) -> list[dict]:
    listed = kubectl("-n", "assets", "get", "pods", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)["items"]


def _running_pods(kubectl) -> list[dict]:
    return [
        p
        for p in _pods(kubectl)
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


def _conditions(kubectl) -> dict[str, dict]:
    shown = kubectl("-n", "assets", "get", "deployment", "assets", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    return {c["type"]: c for c in json.loads(shown.stdout)["status"].get("conditions", [])}


def test_baseline_profile_blocks_privileged_pods_until_the_deployment_is_fixed(kubectl):
    # 1. A privileged Deployment runs in an unlabelled namespace.
    applied = kubectl("apply", "-k", str(ASSETS / "privileged-workload"))
    assert applied.returncode == 0, applied.stderr
    [pod] = wait_for(lambda: _running_pods(kubectl), what="the privileged pod to run")
    assert pod["spec"]["containers"][0]["securityContext"]["privileged"] is True

    # 2. Labelling the namespace Baseline warns about the running pod.
    labelled = kubectl("apply", "-k", str(ASSETS / "baseline-namespace"))
    assert labelled.returncode == 0, labelled.stderr
    assert 'violate the new PodSecurity enforce level "baseline:latest"' in labelled.stderr
    assert f"{pod['metadata']['name']}: privileged" in labelled.stderr

    # 3. Recycled pods are refused, and the Deployment says why.
    deleted = kubectl("-n", "assets", "delete", "pod", "--all")
    assert deleted.returncode == 0, deleted.stderr
    failure = wait_for(
        lambda: _conditions(kubectl).get("ReplicaFailure"), what="the ReplicaFailure condition"
    )
    assert failure["status"] == "True"
    assert failure["reason"] == "FailedCreate"
    assert PRIVILEGED_VIOLATION in failure["message"]
    assert _pods(kubectl) == []

    # 4. Without the privileged flag the pod is admitted and runs again.
    fixed = kubectl("apply", "-k", str(ASSETS / "baseline-workload"))
    assert fixed.returncode == 0, fixed.stderr
    assert "Warning" not in fixed.stderr
    [pod] = wait_for(lambda: _running_pods(kubectl), what="the fixed pod to run")
    context = pod["spec"]["containers"][0]["securityContext"]
    assert not context.get("privileged")
    assert "runAsUser" not in context
