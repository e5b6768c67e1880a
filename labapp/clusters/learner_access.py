"""What a learner may make in their namespaces, in one table: RBAC grants it,
the ResourceQuota counts it, and teardown strips its finalizers.

One table keeps the three in step: a kind a learner can create but the quota
does not count would let one `kubectl create -f -` pipe make thousands of
objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from labapp.clusters.client import ClusterUnreachable, describe_api_error
from labapp.clusters.objects import resource_for

WRITE = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
READ = ["get", "list", "watch"]


@dataclass(frozen=True)
class LearnerKind:
    group: str  # "" is the core group
    version: str
    resource: str
    kind: str
    count: int  # how many a namespace may hold
    # Subresources a learner may read or write with it (e.g. "scale", "log").
    subresources: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def quota_key(self) -> str:
        return f"count/{self.resource}" + (f".{self.group}" if self.group else "")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


SCALE = {"scale": ["get", "update", "patch"]}
LEARNER_KINDS = (
    LearnerKind("", "v1", "pods", "Pod", 20, {"log": ["get"]}),
    LearnerKind("", "v1", "services", "Service", 5),
    LearnerKind("", "v1", "configmaps", "ConfigMap", 20),
    LearnerKind("", "v1", "secrets", "Secret", 20),
    LearnerKind("", "v1", "serviceaccounts", "ServiceAccount", 10),
    LearnerKind("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", 5),
    # Each template change makes a ReplicaSet; ten old ones are kept per Deployment.
    LearnerKind("apps", "v1", "deployments", "Deployment", 10, SCALE),
    LearnerKind("apps", "v1", "replicasets", "ReplicaSet", 30, SCALE),
    LearnerKind("apps", "v1", "statefulsets", "StatefulSet", 5, SCALE),
    LearnerKind("apps", "v1", "daemonsets", "DaemonSet", 2),
    LearnerKind("batch", "v1", "jobs", "Job", 10),
    LearnerKind("batch", "v1", "cronjobs", "CronJob", 5),
)

# Readable, never writable: events (a learner's own would mislead checks and
# the instructor), endpoints (hand-made ones can route a Service anywhere),
# and the quota and limits themselves.
READ_ONLY_RULES = [
    {
        "apiGroups": [""],
        "resources": ["events", "endpoints", "resourcequotas", "limitranges"],
        "verbs": READ,
    },
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": READ},
]


def learner_rules(*, exec_allowed: bool) -> list[dict]:
    """The Role in each learner namespace. Never pods/attach, pods/portforward
    or ephemeral containers; pods/exec only when the lab declares exec commands."""
    groups: dict[str, list[LearnerKind]] = {}
    for kind in LEARNER_KINDS:
        groups.setdefault(kind.group, []).append(kind)
    rules: list[dict] = []
    for group, kinds in groups.items():
        rules.append(
            {"apiGroups": [group], "resources": [k.resource for k in kinds], "verbs": WRITE}
        )
        for kind in kinds:
            for sub, verbs in kind.subresources.items():
                rules.append(
                    {"apiGroups": [group], "resources": [f"{kind.resource}/{sub}"], "verbs": verbs}
                )
    if exec_allowed:
        # WebSocket exec is a GET that also needs create (Kubernetes 1.31 and later).
        rules.append({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"]})
    return rules + READ_ONLY_RULES


@dataclass(frozen=True)
class Quota:
    pods: int = 10  # not yet finished; finished ones count in count/pods
    requests_cpu: str = "2"
    requests_memory: str = "2Gi"
    limits_memory: str = "4Gi"
    requests_storage: str = "5Gi"
    # Overrides of LEARNER_KINDS' counts, by resource: {"configmaps": 3}.
    counts: Mapping[str, int] = field(default_factory=dict)

    def hard(self) -> dict[str, str]:
        unknown = set(self.counts) - {k.resource for k in LEARNER_KINDS}
        if unknown:
            raise ValueError(f"no learner kind {', '.join(sorted(unknown))} to count")
        hard = {
            "pods": str(self.pods),
            "requests.cpu": self.requests_cpu,
            "requests.memory": self.requests_memory,
            "limits.memory": self.limits_memory,
            "requests.storage": self.requests_storage,
            # A LoadBalancer is a cloud load balancer, a NodePort a port on every node.
            "services.loadbalancers": "0",
            "services.nodeports": "0",
        }
        for kind in LEARNER_KINDS:
            hard[kind.quota_key] = str(self.counts.get(kind.resource, kind.count))
        return hard


def strip_finalizers(admin_kubeconfig: Path, *, namespace: str) -> int:
    """Remove every finalizer from what a learner could have made in a namespace,
    so its deletion never hangs on one that nothing will ever remove. Returns
    how many objects were stripped."""
    stripped = 0
    for kind in LEARNER_KINDS:
        resource = resource_for(admin_kubeconfig, kind.api_version, kind.kind)
        try:
            listed = resource.get(namespace=namespace, _request_timeout=10).to_dict()
            for item in listed.get("items", []):
                meta = item.get("metadata", {})
                if not meta.get("finalizers"):
                    continue
                try:
                    resource.patch(
                        name=meta["name"],
                        namespace=namespace,
                        body={"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                        _request_timeout=10,
                    )
                    stripped += 1
                except ApiException as exc:
                    if exc.status != 404:  # gone meanwhile: nothing left to strip
                        raise
        except ApiException as exc:
            raise ClusterUnreachable(
                f"stripping finalizers from {kind.resource} in {namespace}: "
                f"{describe_api_error(exc)}"
            ) from exc
        except (HTTPError, OSError) as exc:
            raise ClusterUnreachable(describe_api_error(exc)) from exc
    return stripped
