"""The pod guard, asserted against the real API server with learners' own tokens.

The personas: the declaring learner's lab lists the assets image among its
privileged images; the plain learner's lab lists none. Both have labelled their
namespace `pod-security.kubernetes.io/enforce=privileged`, so Pod Security
Admission allows everything there: every refusal below is the guard's.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from labapp.clusters import isolation, pod_guard
from tests.fixtures.cluster import Kubectl, make_kubectl

pytestmark = pytest.mark.cluster

DECLARED = "public.ecr.aws/aws-containers/retail-store-sample-assets:0.4.0"
OTHER_IMAGE = "registry.example/tools:1.0"
GUARD = "labapp pod guard: "


@dataclass(frozen=True)
class Learner:
    sandbox_id: str
    namespace: str
    kubectl: Kubectl


def _learner(admin, tmp_path_factory, who: str, images: tuple[str, ...]) -> Learner:
    sandbox_id = f"{who}{secrets.token_hex(2)}"
    namespace = f"assets-{sandbox_id}"
    credentials = isolation.provision(
        admin,
        sandbox_id=sandbox_id,
        namespaces={"assets": namespace},
        token_seconds=1800,
        privileged_images=images,
    )
    path = tmp_path_factory.mktemp(who) / "kubeconfig"
    path.write_text(credentials.kubeconfig)
    learner = Learner(sandbox_id, namespace, make_kubectl(path))
    # The learner opens Pod Security wide: the guard must hold regardless.
    labelled = learner.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged"
    )
    assert labelled.returncode == 0, labelled.stderr
    return learner


@pytest.fixture(scope="module")
def learners(local_cluster, tmp_path_factory):
    admin = local_cluster.kubeconfig_path
    declaring = _learner(admin, tmp_path_factory, "pgd", (DECLARED,))
    plain = _learner(admin, tmp_path_factory, "pgp", ())
    yield declaring, plain
    for learner in (declaring, plain):
        isolation.teardown(
            admin, sandbox_id=learner.sandbox_id, namespaces={"assets": learner.namespace}
        )


@pytest.fixture
def declaring(learners) -> Learner:
    return learners[0]


@pytest.fixture
def plain(learners) -> Learner:
    return learners[1]


def pod(spec: dict | None = None, container: dict | None = None, image: str = DECLARED) -> str:
    name = f"p{secrets.token_hex(3)}"
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "containers": [{"name": "c", "image": image, **(container or {})}],
                **(spec or {}),
            },
        }
    )


def annotated_pod(annotations: dict[str, str]) -> str:
    manifest = json.loads(pod())
    manifest["metadata"]["annotations"] = annotations
    return json.dumps(manifest)


def create(learner: Learner, manifest: str):
    return learner.kubectl("-n", learner.namespace, "create", "-f", "-", stdin=manifest)


def refused_by_guard(result, message: str) -> None:
    assert result.returncode != 0, f"expected the guard to refuse, got: {result.stdout}"
    assert GUARD + message in result.stderr, result.stderr


def privileged(**extra) -> dict:
    return {"securityContext": {"privileged": True}, **extra}


FORBIDDEN_PODS = {
    "hostPID": (pod({"hostPID": True}), "hostPID is not allowed"),
    "hostIPC": (pod({"hostIPC": True}), "hostIPC is not allowed"),
    "hostNetwork": (pod({"hostNetwork": True}), "hostNetwork is not allowed"),
    "hostPath": (
        pod(
            {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
            {"volumeMounts": [{"name": "root", "mountPath": "/host"}]},
        ),
        "hostPath volumes are not allowed",
    ),
    "hostPort": (
        pod(container={"ports": [{"containerPort": 8080, "hostPort": 8080}]}),
        "hostPort is not allowed",
    ),
    "hostPort in an init container": (
        pod(
            {
                "initContainers": [
                    {"name": "i", "image": DECLARED, "ports": [{"containerPort": 1, "hostPort": 1}]}
                ]
            }
        ),
        "hostPort is not allowed",
    ),
    "nodeName": (
        pod({"nodeName": "anywhere"}),
        "spec.nodeName is not allowed; the scheduler places pods",
    ),
    "SYS_ADMIN": (
        pod(container={"securityContext": {"capabilities": {"add": ["CHOWN", "SYS_ADMIN"]}}}),
        "capabilities beyond the Baseline set are not allowed (container c adds SYS_ADMIN)",
    ),
    "NET_ADMIN": (
        pod(container={"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}),
        "capabilities beyond the Baseline set are not allowed (container c adds NET_ADMIN)",
    ),
    "privileged, undeclared image": (
        pod(container=privileged(), image=OTHER_IMAGE),
        f"privileged containers are allowed only for the images this lab declares ({DECLARED}), "
        f"not {OTHER_IMAGE}",
    ),
    "privileged, declared image, own command": (
        pod(container=privileged(command=["sh", "-c", "nsenter -t 1 -a sh"])),
        "a privileged container must run its image's own command",
    ),
    "privileged, declared image, exec probe": (
        pod(container=privileged(livenessProbe={"exec": {"command": ["sh"]}})),
        "a privileged container must run its image's own command",
    ),
    # The rest of Baseline's controls: each loosens the container's confinement.
    "seccomp Unconfined on the pod": (
        pod({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
        "an Unconfined seccomp profile is not allowed",
    ),
    "seccomp Unconfined on a container": (
        pod(container={"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
        "an Unconfined seccomp profile is not allowed",
    ),
    "AppArmor Unconfined on a container": (
        pod(container={"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}),
        "an unconfined AppArmor profile is not allowed",
    ),
    "AppArmor unconfined by annotation": (
        annotated_pod({"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}),
        "an unconfined AppArmor profile is not allowed",
    ),
    "SELinux type spc_t": (
        pod({"securityContext": {"seLinuxOptions": {"type": "spc_t"}}}),
        "SELinux options other than a container type are not allowed",
    ),
    "SELinux user on a container": (
        pod(container={"securityContext": {"seLinuxOptions": {"user": "system_u"}}}),
        "SELinux options other than a container type are not allowed",
    ),
    "procMount Unmasked": (
        pod({"hostUsers": False}, {"securityContext": {"procMount": "Unmasked"}}),
        "procMount other than Default is not allowed",
    ),
    "unsafe sysctl": (
        pod({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]}}),
        "sysctls outside Baseline's safe set are not allowed",
    ),
    "probe host": (
        pod(container={"livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 10250}}}),
        "a probe or hook may not name a host",
    ),
    "hook host": (
        pod(
            container={
                "lifecycle": {"preStop": {"tcpSocket": {"host": "169.254.169.254", "port": 80}}}
            }
        ),
        "a probe or hook may not name a host",
    ),
}


@pytest.mark.parametrize("shape", FORBIDDEN_PODS)
def test_the_guard_refuses_each_forbidden_pod_with_its_rule(declaring, shape):
    manifest, message = FORBIDDEN_PODS[shape]
    refused_by_guard(create(declaring, manifest), message)


def test_the_learner_really_did_open_pod_security_wide(declaring, kubectl):
    labels = kubectl("get", "namespace", declaring.namespace, "-o", "jsonpath={.metadata.labels}")
    assert '"pod-security.kubernetes.io/enforce":"privileged"' in labels.stdout
    assert f'"{pod_guard.GUARD_LABEL}":"enforce"' in labels.stdout


def test_a_plain_pod_is_admitted(plain):
    made = create(plain, pod())
    assert made.returncode == 0, made.stderr


def test_what_baseline_allows_is_admitted(plain):
    """The guard refuses Baseline's loosenings, not its allowed values."""
    allowed = pod(
        {
            "securityContext": {
                "seccompProfile": {"type": "RuntimeDefault"},
                "seLinuxOptions": {"type": "container_t", "level": "s0:c1,c2"},
                "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}],
            }
        },
        {
            "securityContext": {
                "appArmorProfile": {"type": "RuntimeDefault"},
                "procMount": "Default",
            },
            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
            "lifecycle": {"preStop": {"tcpSocket": {"port": 8080}}},
        },
    )
    made = create(plain, allowed)
    assert made.returncode == 0, made.stderr
    localhost = annotated_pod({"container.apparmor.security.beta.kubernetes.io/c": "localhost/lab"})
    made = create(plain, localhost)
    assert made.returncode == 0, made.stderr


def test_a_privileged_pod_runs_the_declared_image_only_in_a_lab_that_declares_it(declaring, plain):
    admitted = create(declaring, pod(container=privileged()))
    assert admitted.returncode == 0, admitted.stderr
    refused_by_guard(
        create(plain, pod(container=privileged())),
        "privileged containers are not allowed in this lab",
    )
    # allowPrivilegeEscalation alone is no privilege the guard refuses.
    escalating = pod(container={"securityContext": {"allowPrivilegeEscalation": True}})
    assert create(plain, escalating).returncode == 0


def test_workload_templates_are_refused_at_apply(declaring):
    template = json.loads(pod({"hostPID": True}))
    labels = {"app": "x"}
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "host-pid"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": template["spec"]},
        },
    }
    refused_by_guard(create(declaring, json.dumps(deployment)), "hostPID is not allowed")
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "host-path"},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": OTHER_IMAGE}],
                            "volumes": [{"name": "r", "hostPath": {"path": "/"}}],
                        }
                    }
                }
            },
        },
    }
    refused_by_guard(create(declaring, json.dumps(cronjob)), "hostPath volumes are not allowed")
    # A template's own annotations are read too.
    deployment["metadata"]["name"] = "unconfined"
    deployment["spec"]["template"] = {
        "metadata": {
            "labels": labels,
            "annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"},
        },
        "spec": json.loads(pod())["spec"],
    }
    refused_by_guard(
        create(declaring, json.dumps(deployment)), "an unconfined AppArmor profile is not allowed"
    )


def test_kubectl_run_with_overrides_is_refused(plain):
    overrides = {
        "spec": {
            "hostPID": True,
            "containers": [
                {"name": "x", "image": OTHER_IMAGE, "securityContext": {"privileged": True}}
            ],
        }
    }
    ran = plain.kubectl(
        "-n", plain.namespace, "run", "x", f"--image={OTHER_IMAGE}",
        f"--overrides={json.dumps(overrides)}",
    )  # fmt: skip
    refused_by_guard(ran, "hostPID is not allowed")


def test_ephemeral_containers_are_refused(plain, kubectl):
    made = create(plain, pod())
    assert made.returncode == 0, made.stderr
    name = made.stdout.split()[0].split("/")[1]
    patch = json.dumps({"spec": {"ephemeralContainers": [{"name": "debug", "image": OTHER_IMAGE}]}})
    # RBAC gives the learner no ephemeral containers at all...
    as_learner = plain.kubectl(
        "-n", plain.namespace, "patch", "pod", name, "--subresource=ephemeralcontainers",
        "--type=strategic", "-p", patch,
    )  # fmt: skip
    assert as_learner.returncode != 0 and "forbidden" in as_learner.stderr.lower()
    # ...and the guard refuses them whoever asks: it matches the namespace.
    as_admin = kubectl(
        "-n", plain.namespace, "patch", "pod", name, "--subresource=ephemeralcontainers",
        "--type=strategic", "-p", patch,
    )  # fmt: skip
    refused_by_guard(as_admin, "ephemeral containers are not allowed")


def test_metadata_changes_to_guarded_pods_still_pass(declaring):
    made = create(declaring, pod(container=privileged()))
    assert made.returncode == 0, made.stderr
    name = made.stdout.split()[0]
    labelled = declaring.kubectl("-n", declaring.namespace, "label", name, "colour=blue")
    assert labelled.returncode == 0, labelled.stderr


@pytest.mark.parametrize(
    "change",
    [
        ["label", "namespace", "{ns}", f"{pod_guard.GUARD_LABEL}-"],
        ["label", "namespace", "{ns}", f"{pod_guard.GUARD_LABEL}=off", "--overwrite"],
        # (The plain learner has no such annotation: removing it changes nothing.)
        ["annotate", "namespace", "{ns}", f"{pod_guard.PRIVILEGED_IMAGES_ANNOTATION}-"],
        [
            "annotate",
            "namespace",
            "{ns}",
            f"{pod_guard.PRIVILEGED_IMAGES_ANNOTATION}={OTHER_IMAGE}",
            "--overwrite",
        ],
    ],
)
def test_learners_cannot_change_the_guards_label_or_annotation(declaring, plain, change):
    removes_annotation = change[-1] == f"{pod_guard.PRIVILEGED_IMAGES_ANNOTATION}-"
    for learner in (declaring,) if removes_annotation else (declaring, plain):
        args = [word.replace("{ns}", learner.namespace) for word in change]
        result = learner.kubectl(*args)
        assert result.returncode != 0, result.stdout
        assert "learners may" in result.stderr, result.stderr


def test_learners_cannot_touch_the_guard_policies(plain):
    for kind in ("validatingadmissionpolicies", "validatingadmissionpolicybindings"):
        for name in pod_guard.POLICY_NAMES:
            deleted = plain.kubectl("delete", kind, name)
            assert deleted.returncode != 0 and "forbidden" in deleted.stderr.lower()
        for verb in ("patch", "update", "delete", "create"):
            allowed = plain.kubectl("auth", "can-i", verb, f"{kind}.admissionregistration.k8s.io")
            assert allowed.stdout.strip() == "no", (verb, kind, allowed.stdout)


def test_a_cluster_guard_applied_again_changes_nothing(local_cluster, kubectl):
    before = kubectl("get", "validatingadmissionpolicy", *pod_guard.POLICY_NAMES, "-o", "json")
    isolation.ensure_cluster_guard(local_cluster.kubeconfig_path)
    after = kubectl("get", "validatingadmissionpolicy", *pod_guard.POLICY_NAMES, "-o", "json")
    generations = [
        [item["metadata"]["generation"] for item in json.loads(shown.stdout)["items"]]
        for shown in (before, after)
    ]
    assert generations[0] == generations[1]


def test_the_guard_is_proven_live_in_each_new_namespace(local_cluster, tmp_path_factory, kubectl):
    admin = local_cluster.kubeconfig_path
    # Pod Security answers before the guard; its strictest profile must not hide it.
    strict = _learner(admin, tmp_path_factory, "pgs", ())
    try:
        relabelled = kubectl(
            "label", "namespace", strict.namespace,
            "pod-security.kubernetes.io/enforce=restricted", "--overwrite",
        )  # fmt: skip
        assert relabelled.returncode == 0, relabelled.stderr
        pod_guard.verify_pod_guard(admin, namespace=strict.namespace, timeout=5)
    finally:
        isolation.teardown(
            admin, sandbox_id=strict.sandbox_id, namespaces={"assets": strict.namespace}
        )
    unguarded = f"unguarded-{secrets.token_hex(2)}"
    assert kubectl("create", "namespace", unguarded).returncode == 0
    try:
        with pytest.raises(pod_guard.PodGuardNotEnforced, match="does not refuse a pod that"):
            pod_guard.verify_pod_guard(admin, namespace=unguarded, timeout=1)
    finally:
        kubectl("delete", "namespace", unguarded, "--wait=false")
