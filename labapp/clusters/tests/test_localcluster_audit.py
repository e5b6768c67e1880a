"""The local control plane writes an audit log, and the Pod Security records in it
can be read for chosen namespaces only (what the lab page shows a learner)."""

from __future__ import annotations

import secrets
import time

import pytest

from labapp.clusters.localcluster.audit import psa_audit_records

pytestmark = pytest.mark.cluster

PRIVILEGED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0
          securityContext: {privileged: true}
"""


def test_audit_mode_violations_are_recorded_and_read_per_namespace(local_cluster, kubectl):
    audited, other = (f"audit-{secrets.token_hex(3)}" for _ in range(2))
    for name in (audited, other):
        assert kubectl("create", "namespace", name).returncode == 0
    labelled = kubectl("label", "namespace", audited, "pod-security.kubernetes.io/audit=baseline")
    assert labelled.returncode == 0, labelled.stderr
    try:
        for name in (audited, other):
            applied = kubectl("apply", "-f", "-", stdin=PRIVILEGED.replace("NS", name))
            assert applied.returncode == 0, applied.stderr
        deadline = time.monotonic() + 30
        records = []
        while time.monotonic() < deadline:
            records = psa_audit_records(local_cluster.audit_log_path, [audited])
            if {r.resource for r in records if r.violations} >= {"deployments", "pods"}:
                break
            time.sleep(0.5)
        flagged = {r.resource: r for r in records if r.violations}
        assert {"deployments", "replicasets", "pods"} <= set(flagged), records
        assert 'would violate PodSecurity "baseline:latest": privileged' in (
            flagged["deployments"].violations
        )
        assert flagged["pods"].actor == "replicaset-controller"
        assert all(r.namespace == audited for r in records)
        # The other namespace has no audit label: none of its requests is annotated
        # as a violation, and none of its records is read for the audited one.
        assert not [
            r for r in psa_audit_records(local_cluster.audit_log_path, [other]) if r.violations
        ]
    finally:
        for name in (audited, other):
            kubectl("delete", "namespace", name, "--wait=false")
