"""Per-learner isolation in a shared cluster: namespaces, RBAC, admission policy,
quotas and a short-lived token.

A learner acts as a ServiceAccount in LEARNERS_NAMESPACE (a namespace they
have no rights in). RBAC gives that account its own namespaces and nothing
else; for their Namespace objects it gets get/patch/update by resourceNames
only, and a ValidatingAdmissionPolicy then lets it change nothing there but
the Pod Security labels and kubectl's last-applied annotation. That also keeps
the pod guard's label and annotation in place (see `pod_guard`); what the
learner may make, and how many, is in `learner_access`.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from labapp.clusters.client import ClusterUnreachable, api_client, describe_api_error
from labapp.clusters.learner_access import Quota, learner_rules, strip_finalizers
from labapp.clusters.objects import apply_objects, delete_object, list_objects
from labapp.clusters.pod_guard import (
    PodGuardNotEnforced,
    guard_namespace_metadata,
    pod_guard_objects,
    verify_pod_guard,
)

LEARNERS_NAMESPACE = "labapp-learners"
LEARNERS_GROUP = f"system:serviceaccounts:{LEARNERS_NAMESPACE}"
GUARD_POLICY = "labapp-learner-namespace-guard"
SANDBOX_LABEL = "labapp.dev/sandbox"
LOGICAL_LABEL = "labapp.dev/logical-namespace"
PSA_PREFIX = "pod-security.kubernetes.io/"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# The cluster-wide guard objects: labelled so they can be listed, and stamped with
# a hash of their definition so a new version of this code applies its own.
GUARD_LABELS = {"app.kubernetes.io/managed-by": "labapp", "labapp.dev/cluster-guard": "true"}
GUARD_SELECTOR = "labapp.dev/cluster-guard=true"
GUARD_HASH_ANNOTATION = "labapp.dev/guard-hash"
GUARD_RECHECK_SECONDS = 300.0
# Sandbox objects applied at once (see apply_objects).
APPLY_PARALLEL = 8
# API server identity -> when this process last found the guard in place (monotonic).
_guard_checked: dict[str, float] = {}


@dataclass(frozen=True)
class LearnerCredentials:
    service_account: str
    kubeconfig: str  # YAML, with an embedded token
    expires_at: dt.datetime


def account_name(sandbox_id: str) -> str:
    return f"learner-{sandbox_id}"


def ensure_cluster_guard(admin_kubeconfig: Path, *, force: bool = False) -> bool:
    """Put the objects every sandbox shares in place, once per cluster: the
    learners' namespace, the namespace policy and the pod guard.

    A process remembers, per API server (its address and the uid of its
    kube-system namespace, so a cluster rebuilt at the same address counts as
    new), that it found them in place, and looks again after
    GUARD_RECHECK_SECONDS: three reads, and an apply only when one is missing
    or differs from this code's version (a hash annotation on each). `force`
    applies them whatever it remembers. Returns True when it applied them."""
    api = api_client(admin_kubeconfig)
    try:
        system = k8s.CoreV1Api(api).read_namespace("kube-system", _request_timeout=10)
    except (ApiException, HTTPError, OSError) as exc:
        raise ClusterUnreachable(f"{api.configuration.host}: {describe_api_error(exc)}") from exc
    identity = f"{api.configuration.host} {system.metadata.uid if system.metadata else ''}"
    checked = _guard_checked.get(identity)
    if not force and checked is not None and time.monotonic() - checked < GUARD_RECHECK_SECONDS:
        return False
    objects = cluster_guard_objects()
    digest = hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()[:16]
    applied = force or not _guard_in_place(admin_kubeconfig, objects, digest)
    if applied:
        stamped = copy.deepcopy(objects)
        for body in stamped:
            body["metadata"].setdefault("annotations", {})[GUARD_HASH_ANNOTATION] = digest
        apply_objects(admin_kubeconfig, stamped, parallel=4)
    _guard_checked[identity] = time.monotonic()
    return applied


def forget_cluster_guard() -> None:
    """Look at the cluster's guard objects again before the next sandbox."""
    _guard_checked.clear()


def _guard_in_place(admin_kubeconfig: Path, objects: list[dict], digest: str) -> bool:
    """Every guard object exists with this code's hash."""
    for api_version, kind in sorted({(body["apiVersion"], body["kind"]) for body in objects}):
        names = {body["metadata"]["name"] for body in objects if body["kind"] == kind}
        found = {
            obj.name: obj.body["metadata"].get("annotations") or {}
            for obj in list_objects(
                admin_kubeconfig,
                api_version=api_version,
                kind=kind,
                namespace=None,
                label_selector=GUARD_SELECTOR,
            )
        }
        if any(found.get(name, {}).get(GUARD_HASH_ANNOTATION) != digest for name in names):
            return False
    return True


def cluster_guard_objects() -> list[dict]:
    """The learners' namespace, the namespace policy and the pod guard.
    Cluster-scoped: RBAC gives learners nothing there."""
    keep_labels = _all_except("Labels", f"k.startsWith('{PSA_PREFIX}')")
    keep_annotations = _all_except("Annotations", f"k == '{LAST_APPLIED}'")
    objects: list[dict] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": LEARNERS_NAMESPACE,
                "labels": {"app.kubernetes.io/managed-by": "labapp"},
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": GUARD_POLICY},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["UPDATE"],
                            "resources": ["namespaces"],
                        }
                    ]
                },
                "matchConditions": [
                    {
                        "name": "is-learner",
                        "expression": f"'{LEARNERS_GROUP}' in request.userInfo.groups",
                    }
                ],
                "variables": [
                    {"name": "newLabels", "expression": _meta_map("object", "labels")},
                    {"name": "oldLabels", "expression": _meta_map("oldObject", "labels")},
                    {
                        "name": "newAnnotations",
                        "expression": _meta_map("object", "annotations"),
                    },
                    {
                        "name": "oldAnnotations",
                        "expression": _meta_map("oldObject", "annotations"),
                    },
                ],
                "validations": [
                    {
                        "expression": keep_labels,
                        "message": (
                            f"learners may change only {PSA_PREFIX}* labels on their namespace"
                        ),
                        "reason": "Forbidden",
                    },
                    {
                        "expression": keep_annotations,
                        "message": "learners may not change annotations on their namespace "
                        f"(only {LAST_APPLIED})",
                        "reason": "Forbidden",
                    },
                    {
                        "expression": "object.spec == oldObject.spec",
                        "message": "learners may not change their namespace's spec",
                        "reason": "Forbidden",
                    },
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": GUARD_POLICY},
            "spec": {"policyName": GUARD_POLICY, "validationActions": ["Deny"]},
        },
        *pod_guard_objects(),
    ]
    for body in objects:  # labelled, so that _guard_in_place lists only these
        body["metadata"].setdefault("labels", {}).update(GUARD_LABELS)
    return objects


def _meta_map(obj: str, field: str) -> str:
    return f"has({obj}.metadata.{field}) ? {obj}.metadata.{field} : {{}}"


def _all_except(kind: str, allowed: str) -> str:
    new, old = f"variables.new{kind}", f"variables.old{kind}"
    # Every key outside the allowed set is unchanged: none added, changed or removed.
    return (
        f"{new}.all(k, {allowed} || (k in {old} && {old}[k] == {new}[k])) && "
        f"{old}.all(k, {allowed} || k in {new})"
    )


def sandbox_objects(
    sandbox_id: str,
    namespaces: dict[str, str],
    quota: Quota,
    *,
    privileged_images: Sequence[str] = (),
    exec_allowed: bool = False,
) -> list[dict]:
    account = account_name(sandbox_id)
    # The namespace policy keeps learners off this label and annotation.
    guard_labels, guard_annotations = guard_namespace_metadata(privileged_images)
    labels = {SANDBOX_LABEL: sandbox_id, "app.kubernetes.io/managed-by": "labapp"}
    subject = [{"kind": "ServiceAccount", "name": account, "namespace": LEARNERS_NAMESPACE}]
    objects: list[dict] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": LEARNERS_NAMESPACE, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"labapp-sandbox-{sandbox_id}", "labels": labels},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces"],
                    "resourceNames": sorted(namespaces.values()),
                    "verbs": ["get", "patch", "update"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"labapp-sandbox-{sandbox_id}", "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"labapp-sandbox-{sandbox_id}",
            },
            "subjects": subject,
        },
    ]
    for logical, physical in namespaces.items():
        objects += [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": physical,
                    "labels": {**labels, **guard_labels, LOGICAL_LABEL: logical},
                    "annotations": guard_annotations,
                },
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "labapp-learner", "namespace": physical, "labels": labels},
                "rules": learner_rules(exec_allowed=exec_allowed),
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "labapp-learner", "namespace": physical, "labels": labels},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "labapp-learner",
                },
                "subjects": subject,
            },
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "labapp-sandbox", "namespace": physical, "labels": labels},
                "spec": {"hard": quota.hard()},
            },
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": {"name": "labapp-sandbox", "namespace": physical, "labels": labels},
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
                            "default": {"cpu": "500m", "memory": "256Mi"},
                            "max": {"cpu": "1", "memory": "1Gi"},
                        }
                    ]
                },
            },
        ]
    return objects


def provision(
    admin_kubeconfig: Path,
    *,
    sandbox_id: str,
    namespaces: dict[str, str],
    quota: Quota | None = None,
    token_seconds: int = 4 * 3600,
    privileged_images: Sequence[str] = (),
    exec_allowed: bool = False,
) -> LearnerCredentials:
    """Create (or complete) a sandbox's objects and issue a token. Idempotent.

    `privileged_images`: the only images the pod guard lets run privileged
    here; `exec_allowed`: grant pods/exec (the lab declares exec commands)."""
    objects = sandbox_objects(
        sandbox_id,
        namespaces,
        quota or Quota(),
        privileged_images=privileged_images,
        exec_allowed=exec_allowed,
    )
    applied_guard = ensure_cluster_guard(admin_kubeconfig)
    try:
        _apply_and_verify(admin_kubeconfig, objects, namespaces)
    except (ClusterUnreachable, PodGuardNotEnforced):
        if applied_guard:
            raise
        # What this process remembered may be stale (the guard deleted, the cluster
        # rebuilt): put the guard in place again, then try once more.
        ensure_cluster_guard(admin_kubeconfig, force=True)
        _apply_and_verify(admin_kubeconfig, objects, namespaces)
    return issue_token(admin_kubeconfig, sandbox_id=sandbox_id, seconds=token_seconds)


def _apply_and_verify(
    admin_kubeconfig: Path, objects: list[dict], namespaces: dict[str, str]
) -> None:
    apply_objects(admin_kubeconfig, objects, parallel=APPLY_PARALLEL)
    for physical in namespaces.values():
        verify_pod_guard(admin_kubeconfig, namespace=physical)


def issue_token(admin_kubeconfig: Path, *, sandbox_id: str, seconds: int) -> LearnerCredentials:
    api = api_client(admin_kubeconfig)
    account = account_name(sandbox_id)
    request = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    )
    try:
        issued = k8s.CoreV1Api(api).create_namespaced_service_account_token(
            account, LEARNERS_NAMESPACE, request, _request_timeout=10
        )
    except (ApiException, HTTPError, OSError) as exc:
        raise ClusterUnreachable(f"token for {account}: {describe_api_error(exc)}") from exc
    status = issued.status
    if status is None or not status.token or status.expiration_timestamp is None:
        raise ClusterUnreachable(f"token for {account}: the API server returned no token")
    return LearnerCredentials(
        service_account=f"system:serviceaccount:{LEARNERS_NAMESPACE}:{account}",
        kubeconfig=_kubeconfig(api.configuration, status.token, sandbox_id),
        expires_at=status.expiration_timestamp,
    )


def _kubeconfig(configuration: k8s.Configuration, token: str, sandbox_id: str) -> str:
    cluster: dict[str, object] = {"server": configuration.host}
    if configuration.ssl_ca_cert:
        pem = Path(configuration.ssl_ca_cert).read_bytes()
        cluster["certificate-authority-data"] = base64.b64encode(pem).decode()
    if not configuration.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    name = f"sandbox-{sandbox_id}"
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        },
        sort_keys=False,
    )


def teardown(admin_kubeconfig: Path, *, sandbox_id: str, namespaces: dict[str, str]) -> None:
    """Delete everything provision made. Safe to repeat; absent objects are fine."""
    name = f"labapp-sandbox-{sandbox_id}"
    rbac = "rbac.authorization.k8s.io/v1"
    # Bindings first: RBAC denies at once, while the API server may accept an
    # already-validated token for a few more seconds after its account is gone.
    for physical in namespaces.values():
        delete_object(
            admin_kubeconfig,
            api_version=rbac,
            kind="RoleBinding",
            name="labapp-learner",
            namespace=physical,
        )
    delete_object(admin_kubeconfig, api_version=rbac, kind="ClusterRoleBinding", name=name)
    delete_object(admin_kubeconfig, api_version=rbac, kind="ClusterRole", name=name)
    delete_object(
        admin_kubeconfig,
        api_version="v1",
        kind="ServiceAccount",
        name=account_name(sandbox_id),
        namespace=LEARNERS_NAMESPACE,
    )
    for physical in namespaces.values():
        delete_object(admin_kubeconfig, api_version="v1", kind="Namespace", name=physical)
        # After the delete nothing new can be made there; a finalizer the
        # learner left (even via a pod template) would hold it Terminating forever.
        strip_finalizers(admin_kubeconfig, namespace=physical)
