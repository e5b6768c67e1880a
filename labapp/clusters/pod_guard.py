"""The pod guard: what no pod in a learner namespace may do, on any cluster.

Pod Security Admission follows labels that learners set themselves (the labs
teach exactly that), so it cannot protect the nodes. These
ValidatingAdmissionPolicies hold whatever those labels say. They match on the
namespace, by a label learners cannot change, never on the user: pods are
created by the ReplicaSet controller, not by the learner. Pod templates
(Deployments, Jobs, ...) are checked too, so the learner sees the refusal at
`kubectl apply` rather than as a silent ReplicaFailure.

Privileged containers are refused, except for the images the sandbox's lab
declares; provisioning writes those onto the namespace as an annotation that
learners cannot change either, and the policy reads it from there.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from labapp.clusters.client import ClusterUnreachable, api_client, describe_api_error

GUARD_LABEL = "labapp.dev/pod-guard"
GUARD_LABEL_VALUE = "enforce"
PRIVILEGED_IMAGES_ANNOTATION = "labapp.dev/privileged-images"
MESSAGE_PREFIX = "labapp pod guard: "
# Pod Security Standards, Baseline: the capabilities a container may add.
BASELINE_CAPABILITIES = (
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
)

# Pod Security Standards, Baseline: the sysctls a pod may set (namespaced, and
# isolated from the node and other pods).
SAFE_SYSCTLS = (
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
)
# ... and the SELinux types a pod or container may ask for.
SELINUX_TYPES = ("container_t", "container_init_t", "container_kvm_t", "container_engine_t")
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"

# Where the pod's spec and its metadata (for AppArmor's annotations) sit in each
# kind the guard reads.
_POLICIES = (
    (
        "labapp-pod-guard-pods",
        [{"apiGroups": [""], "resources": ["pods", "pods/ephemeralcontainers"]}],
        "object",
    ),
    (
        "labapp-pod-guard-workloads",
        [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
            },
            {"apiGroups": ["batch"], "resources": ["jobs"]},
        ],
        "object.spec.template",
    ),
    (
        "labapp-pod-guard-cronjobs",
        [{"apiGroups": ["batch"], "resources": ["cronjobs"]}],
        "object.spec.jobTemplate.spec.template",
    ),
)
POLICY_NAMES = tuple(name for name, _, _ in _POLICIES)


class PodGuardNotEnforced(RuntimeError):
    """The API server admits what the guard refuses: no sandbox may start."""


def guard_namespace_metadata(privileged_images: Sequence[str]) -> tuple[dict, dict]:
    """The label that binds the guard, and the annotation it reads, for a namespace."""
    annotations = {}
    if privileged_images:
        # Image references hold no commas, so a comma-separated list is unambiguous.
        annotations[PRIVILEGED_IMAGES_ANNOTATION] = ",".join(privileged_images)
    return {GUARD_LABEL: GUARD_LABEL_VALUE}, annotations


def pod_guard_objects() -> list[dict]:
    """The policies and their bindings; applied once per cluster with the other guards."""
    objects = []
    for name, rules, pod in _POLICIES:
        pods = name == "labapp-pod-guard-pods"
        objects += [
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {**rule, "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"]}
                            for rule in rules
                        ]
                    },
                    "matchConditions": [
                        {
                            # Metadata-only updates (labels, finalizers, controllers
                            # adopting pods) change nothing the guard judges; skipping
                            # them keeps teardown and controllers unblocked.
                            "name": "pod-spec-written",
                            "expression": "request.operation == 'CREATE' || "
                            "object.spec != oldObject.spec",
                        }
                    ],
                    "variables": _variables(pod),
                    "validations": _validations(pods=pods),
                },
            },
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name},
                "spec": {
                    "policyName": name,
                    "validationActions": ["Deny"],
                    "matchResources": {
                        "namespaceSelector": {"matchLabels": {GUARD_LABEL: GUARD_LABEL_VALUE}}
                    },
                },
            },
        ]
    return objects


def _variables(pod: str) -> list[dict]:
    def optional(field: str) -> str:
        return f"(has(variables.spec.{field}) ? variables.spec.{field} : [])"

    annotation = f"'{PRIVILEGED_IMAGES_ANNOTATION}'"
    return [
        {"name": "spec", "expression": f"{pod}.spec"},
        {
            # A template's metadata may be left out altogether.
            "name": "podAnnotations",
            "expression": f"has({pod}.metadata) && has({pod}.metadata.annotations) ? "
            f"{pod}.metadata.annotations : {{}}",
        },
        {
            "name": "containers",
            "expression": "variables.spec.containers + "
            f"{optional('initContainers')} + {optional('ephemeralContainers')}",
        },
        {
            "name": "annotations",
            "expression": "has(namespaceObject.metadata.annotations) ? "
            "namespaceObject.metadata.annotations : {}",
        },
        {
            "name": "privilegedImages",
            "expression": f"{annotation} in variables.annotations ? "
            f"variables.annotations[{annotation}].split(',') : []",
        },
        {
            "name": "privileged",
            "expression": "variables.containers.filter(c, "
            f"{_set('c', 'securityContext.privileged')})",
        },
        {
            "name": "addsCapabilities",
            "expression": "variables.containers.filter(c, has(c.securityContext) && "
            "has(c.securityContext.capabilities) && has(c.securityContext.capabilities.add) && "
            f"c.securityContext.capabilities.add.exists(cap, !(cap in {_baseline()})))",
        },
    ]


def _validations(*, pods: bool) -> list[dict]:
    spec = "variables.spec"
    # A pod's nodeName is written later by the scheduler's binding, so only a
    # pod's creation is judged; a template's nodeName always lands on its pods.
    node_name = f"!has({spec}.nodeName) || {spec}.nodeName == ''"
    if pods:
        node_name = f"request.operation != 'CREATE' || {node_name}"
    rules = [
        (f"!{_set(spec, 'hostPID')}", "hostPID is not allowed"),
        (f"!{_set(spec, 'hostIPC')}", "hostIPC is not allowed"),
        (f"!{_set(spec, 'hostNetwork')}", "hostNetwork is not allowed"),
        (
            f"!has({spec}.volumes) || {spec}.volumes.all(v, !has(v.hostPath))",
            "hostPath volumes are not allowed",
        ),
        (
            "variables.containers.all(c, !has(c.ports) || "
            "c.ports.all(p, !has(p.hostPort) || p.hostPort == 0))",
            "hostPort is not allowed",
        ),
        (node_name, "spec.nodeName is not allowed; the scheduler places pods"),
        (
            f"!has({spec}.ephemeralContainers) || size({spec}.ephemeralContainers) == 0",
            "ephemeral containers are not allowed",
        ),
        (
            f"!{_set(spec, 'securityContext.windowsOptions.hostProcess')} && "
            "variables.containers.all(c, "
            f"!{_set('c', 'securityContext.windowsOptions.hostProcess')})",
            "Windows hostProcess containers are not allowed",
        ),
    ]
    rules += _baseline_profile_rules()
    validations = [
        {"expression": expression, "message": MESSAGE_PREFIX + message, "reason": "Forbidden"}
        for expression, message in rules
    ]
    validations += [
        {
            "expression": "size(variables.addsCapabilities) == 0",
            "message": f"{MESSAGE_PREFIX}capabilities beyond the Baseline set are not allowed",
            "messageExpression": f"'{MESSAGE_PREFIX}capabilities beyond the Baseline set "
            "are not allowed (' + variables.addsCapabilities.map(c, 'container ' + c.name + "
            "' adds ' + c.securityContext.capabilities.add.filter(cap, "
            f"!(cap in {_baseline()})).join(', ')).join('; ') + ')'",
            "reason": "Forbidden",
        },
        {
            "expression": "variables.privileged.all(c, c.image in variables.privilegedImages)",
            "message": f"{MESSAGE_PREFIX}privileged containers are not allowed",
            "messageExpression": "size(variables.privilegedImages) == 0 ? "
            f"'{MESSAGE_PREFIX}privileged containers are not allowed in this lab' : "
            f"'{MESSAGE_PREFIX}privileged containers are allowed only for the images this lab "
            "declares (' + variables.privilegedImages.join(', ') + '), not ' + "
            "variables.privileged.filter(c, !(c.image in variables.privilegedImages))"
            ".map(c, c.image).join(', ')",
            "reason": "Forbidden",
        },
        {
            # A declared image with any command of the learner's choosing would
            # be a root shell on the node: privileged containers run the image's own.
            "expression": f"variables.privileged.all(c, {_runs_own_command('c')})",
            "message": f"{MESSAGE_PREFIX}a privileged container must run its image's own "
            "command (no command, args, exec probes or exec hooks)",
            "reason": "Forbidden",
        },
    ]
    return validations


def _baseline_profile_rules() -> list[tuple[str, str]]:
    """The rest of Baseline's controls, held whatever Pod Security label the
    learner has set: each loosens the container's confinement on the node."""

    def nowhere(field: str, bad: str) -> str:
        """`field` of the pod's and of every container's securityContext is not `bad`
        (a format string for the field's path)."""
        pod = f"variables.spec.securityContext.{field}"
        on_pod = f"!(has(variables.spec.securityContext) && has({pod}) && {bad.format(pod)})"
        container = f"c.securityContext.{field}"
        on_containers = (
            "variables.containers.all(c, "
            f"!(has(c.securityContext) && has({container}) && {bad.format(container)}))"
        )
        return f"{on_pod} && {on_containers}"

    loose_selinux = (
        "((has({0}.type) && {0}.type != '' && !({0}.type in "
        + _cel_list(SELINUX_TYPES)
        + ")) || (has({0}.user) && {0}.user != '') || (has({0}.role) && {0}.role != ''))"
    )
    apparmor_annotations = (
        "variables.podAnnotations.all(k, "
        f"!k.startsWith('{APPARMOR_ANNOTATION_PREFIX}') || "
        "variables.podAnnotations[k] == 'runtime/default' || "
        "variables.podAnnotations[k].startsWith('localhost/'))"
    )
    handlers = [
        ("has(c.{0})", "c.{0}", probe)
        for probe in ("livenessProbe", "readinessProbe", "startupProbe")
    ] + [
        ("has(c.lifecycle) && has(c.lifecycle.{0})", "c.lifecycle.{0}", hook)
        for hook in ("postStart", "preStop")
    ]
    no_hosts = " && ".join(
        f"!({present.format(name)} && has({path.format(name)}.{action}) && "
        f"has({path.format(name)}.{action}.host) && {path.format(name)}.{action}.host != '')"
        for present, path, name in handlers
        for action in ("httpGet", "tcpSocket")
    )
    sysctls = "variables.spec.securityContext.sysctls"
    return [
        (
            nowhere("seccompProfile", "{}.type == 'Unconfined'"),
            "an Unconfined seccomp profile is not allowed",
        ),
        (
            nowhere("appArmorProfile", "{}.type == 'Unconfined'") + " && " + apparmor_annotations,
            "an unconfined AppArmor profile is not allowed",
        ),
        (
            nowhere("seLinuxOptions", loose_selinux),
            "SELinux options other than a container type are not allowed",
        ),
        (
            "variables.containers.all(c, !has(c.securityContext) || "
            "!has(c.securityContext.procMount) || c.securityContext.procMount == 'Default')",
            "procMount other than Default is not allowed",
        ),
        (
            f"!has(variables.spec.securityContext) || !has({sysctls}) || "
            f"{sysctls}.all(s, s.name in {_cel_list(SAFE_SYSCTLS)})",
            "sysctls outside Baseline's safe set are not allowed",
        ),
        (
            f"variables.containers.all(c, {no_hosts})",
            "a probe or hook may not name a host: the node's kubelet would connect there",
        ),
    ]


def _cel_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def _set(obj: str, path: str) -> str:
    """A boolean field that is present and true. CEL's has() fails on a missing
    parent, so each level is tested in turn."""
    parts = path.split(".")
    tests = [f"has({obj}.{'.'.join(parts[: i + 1])})" for i in range(len(parts))]
    return "(" + " && ".join([*tests, f"{obj}.{path}"]) + ")"


def _baseline() -> str:
    return _cel_list(BASELINE_CAPABILITIES)


def _runs_own_command(c: str) -> str:
    probes = [
        f"!(has({c}.{probe}) && has({c}.{probe}.exec))"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe")
    ]
    hooks = [
        f"!(has({c}.lifecycle) && has({c}.lifecycle.{hook}) && has({c}.lifecycle.{hook}.exec))"
        for hook in ("postStart", "preStop")
    ]
    return " && ".join([f"!has({c}.command)", f"!has({c}.args)", *probes, *hooks])


def verify_pod_guard(admin_kubeconfig: Path, *, namespace: str, timeout: float = 15) -> None:
    """Prove the guard refuses in this namespace, so a cluster without working
    admission policies never gets a learner. The probe is a dry run of a pod
    that Pod Security's Restricted profile admits (Pod Security runs first and
    would hide the guard's answer) but that names its node.

    A new policy takes a moment to reach the API server's admission chain."""
    core = k8s.CoreV1Api(api_client(admin_kubeconfig))
    restricted = k8s.V1SecurityContext(
        run_as_non_root=True,
        allow_privilege_escalation=False,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )
    probe = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="labapp-pod-guard-probe"),
        spec=k8s.V1PodSpec(
            node_name="labapp-pod-guard-probe",
            containers=[
                k8s.V1Container(name="probe", image="probe:0", security_context=restricted)
            ],
        ),
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            core.create_namespaced_pod(namespace, probe, dry_run="All", _request_timeout=10)
            answer = "it was admitted"
        except ApiException as exc:
            if MESSAGE_PREFIX in str(exc.body):
                return
            answer = f"{describe_api_error(exc)}: {str(exc.body)[:300]}"
        except (HTTPError, OSError) as exc:
            raise ClusterUnreachable(describe_api_error(exc)) from exc
        if time.monotonic() > deadline:
            raise PodGuardNotEnforced(
                f"the pod guard does not refuse a pod that names its node in {namespace} "
                f"({answer}); the cluster needs ValidatingAdmissionPolicy v1 "
                "(Kubernetes 1.30 or later)"
            )
        time.sleep(0.25)
