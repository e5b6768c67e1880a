"""Every check kind against the real API server: pass, fail (expected vs
found), and error when the check itself cannot run."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from labapp.checks.base import Check, CheckContext, CheckSpecError, RunOutput
from labapp.checks.evaluate import evaluate_checks
from labapp.checks.kinds import parse_check
from labapp.checks.outcome import Status
from tests.fixtures.cluster import write_unreachable_kubeconfig
from tests.fixtures.waiting import wait_for

# Tests that use the cluster (`ns`, `ctx`, `kubectl`) are marked `cluster` by
# conftest.py; parsing and output checks need no cluster and run in the fast lane.

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example/web:1
          securityContext: {runAsUser: 1000}
"""


@pytest.fixture(scope="module")
def ns(kubectl) -> Iterator[str]:
    name = f"checks-{secrets.token_hex(3)}"
    for args in (
        ["create", "namespace", name],
        ["label", "namespace", name, "team=blue"],
        ["annotate", "namespace", name, "owner=ops"],
        ["-n", name, "create", "configmap", "settings", "--from-literal=PORT=8080"],
        ["-n", name, "apply", "-f", "-"],
    ):
        done = kubectl(*args, stdin=DEPLOYMENT if args[-1] == "-" else None)
        assert done.returncode == 0, done.stderr

    def web_available():
        shown = kubectl("-n", name, "get", "deployment", "web", "-o", "json")
        conditions = json.loads(shown.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)

    wait_for(web_available, what="deployment web to be available")
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def ctx(local_cluster) -> CheckContext:
    return CheckContext.from_api(local_cluster.kubeconfig_path)


@pytest.fixture
def dead_ctx(tmp_path, unused_tcp_port) -> CheckContext:
    return CheckContext.from_api(write_unreachable_kubeconfig(tmp_path / "kc", unused_tcp_port))


# A check as a lab's YAML spells it; "NS" stands for the test's namespace.
Spec = dict[str, object]


def check(raw: Spec, ns: str) -> Check:
    text = json.dumps(raw).replace("NS", ns)
    return parse_check(json.loads(text))


CASES: dict[str, tuple[Spec, Spec, str, str]] = {
    # kind: (passing spec, failing spec, fragment of expected, fragment of found)
    "exists": (
        {"kind": "exists", "object": {"kind": "ConfigMap", "name": "settings", "namespace": "NS"}},
        {"kind": "exists", "object": {"kind": "ConfigMap", "name": "nope", "namespace": "NS"}},
        "ConfigMap nope in namespace NS to exist",
        "ConfigMap nope in namespace NS does not exist",
    ),
    "absent": (
        {"kind": "absent", "object": {"kind": "Secret", "name": "nope", "namespace": "NS"}},
        {"kind": "absent", "object": {"kind": "ConfigMap", "name": "settings", "namespace": "NS"}},
        "no ConfigMap settings",
        "ConfigMap settings",
    ),
    "label": (
        {
            "kind": "label",
            "object": {"kind": "Namespace", "name": "NS"},
            "key": "team",
            "equals": "blue",
        },
        {
            "kind": "label",
            "object": {"kind": "Namespace", "name": "NS"},
            "key": "pod-security.kubernetes.io/enforce",
            "equals": "baseline",
        },
        "label pod-security.kubernetes.io/enforce=baseline on Namespace NS",
        "no such label on Namespace NS",
    ),
    "annotation": (
        {
            "kind": "annotation",
            "object": {"kind": "Namespace", "name": "NS"},
            "key": "owner",
            "equals": "ops",
        },
        {
            "kind": "annotation",
            "object": {"kind": "Namespace", "name": "NS"},
            "key": "owner",
            "equals": "dev",
        },
        "annotation owner=dev",
        "owner=ops on Namespace NS",
    ),
    "field": (
        {
            "kind": "field",
            "object": {"kind": "ConfigMap", "name": "settings", "namespace": "NS"},
            "path": "data.PORT",
            "equals": "8080",
        },
        {
            "kind": "field",
            "object": {"kind": "Deployment", "name": "web", "namespace": "NS"},
            "path": "spec.replicas",
            "equals": 3,
        },
        "spec.replicas=3",
        "spec.replicas=1 on Deployment web",
    ),
    "field-contains": (
        {
            "kind": "field",
            "object": {"kind": "Deployment", "name": "web", "namespace": "NS"},
            "path": "spec.template.spec.containers[0].image",
            "contains": "web:1",
        },
        {
            "kind": "field",
            "object": {"kind": "Deployment", "name": "web", "namespace": "NS"},
            "path": "spec.template.spec.containers[0].securityContext.privileged",
            "equals": True,
        },
        "securityContext.privileged=true",
        "is not set on Deployment web",
    ),
    "condition": (
        {
            "kind": "condition",
            "object": {"kind": "Deployment", "name": "web", "namespace": "NS"},
            "type": "Available",
            "status": "True",
            "reason": "MinimumReplicasAvailable",
        },
        {
            "kind": "condition",
            "object": {"kind": "Deployment", "name": "web", "namespace": "NS"},
            "type": "ReplicaFailure",
            "reason": "FailedCreate",
        },
        "condition ReplicaFailure=True, reason FailedCreate",
        "no ReplicaFailure condition on Deployment web (it has: ",
    ),
    "pod_count": (
        {
            "kind": "pod_count",
            "namespace": "NS",
            "selector": "app=web",
            "phase": "Running",
            "count": 1,
        },
        {
            "kind": "pod_count",
            "namespace": "NS",
            "selector": "app=web",
            "phase": "Running",
            "count": 0,
        },
        "0 Running pods matching app=web in namespace NS",
        "1 Running: web-",
    ),
    "cel": (
        {
            "kind": "cel",
            "object": {"kind": "Pod", "namespace": "NS", "selector": "app=web"},
            "expression": "object.spec.containers.all(c, c.securityContext.runAsUser != 0)",
        },
        {
            "kind": "cel",
            "object": {"kind": "Pod", "namespace": "NS", "selector": "app=web"},
            "expression": "object.spec.containers.all(c, c.securityContext.runAsUser == 0)",
        },
        "`object.spec.containers.all(c, c.securityContext.runAsUser == 0)` to hold",
        "false for Pod web-",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_kind_passes_fails_with_expected_and_found_and_errors(name, ns, ctx, dead_ctx):
    passing, failing, expected, found = CASES[name]

    [ok] = evaluate_checks([check(passing, ns)], ctx)
    assert ok.status is Status.PASS, ok

    [bad] = evaluate_checks([check(failing, ns)], ctx)
    assert bad.status is Status.FAIL, bad
    assert expected.replace("NS", ns) in bad.expected
    assert found.replace("NS", ns) in bad.found
    assert bad.message().startswith("expected ")

    # The API is down: that is never the learner's fault.
    [broken] = evaluate_checks([check(passing, ns)], dead_ctx)
    assert broken.status is Status.ERROR
    assert "could not be reached" in broken.detail
    assert broken.message().startswith("could not check")


def history(*outputs: tuple[str, str]) -> CheckContext:
    # Output checks never read the cluster: a reader that would fail loudly if they did.
    return CheckContext(reader=None, outputs=[RunOutput(out, err) for out, err in outputs])


WARNING = (
    'Warning: existing pods in namespace "assets" violate the new '
    'PodSecurity enforce level "baseline:latest"\n'
)


def test_output_check_reads_what_the_steps_runs_printed():
    warn = parse_check(
        {
            "kind": "output",
            "stream": "stderr",
            "pattern": 'violate the new PodSecurity enforce level "baseline:latest"',
        }
    )
    said = history(("namespace/assets configured\n", WARNING))
    assert warn.evaluate(said).status is Status.PASS
    wrong_stream = parse_check({"kind": "output", "stream": "stdout", "pattern": "violate"})
    outcome = wrong_stream.evaluate(said)
    assert outcome.status is Status.FAIL
    assert "ends with: namespace/assets configured" in outcome.found
    not_run = warn.evaluate(history())
    assert (not_run.status, not_run.found) == (Status.FAIL, "no command has run in this step yet")
    no_warning = parse_check({"kind": "output", "pattern": "Warning", "negate": True})
    assert no_warning.evaluate(said).status is Status.FAIL
    assert no_warning.evaluate(history(("ok", ""))).passed


def test_an_output_check_passes_on_any_run_of_the_step_and_a_later_run_never_undoes_it():
    warn = parse_check({"kind": "output", "stream": "stderr", "pattern": "violate the new"})
    # The warning came from the first of two label commands; the second printed none.
    split = history(("namespace/assets labeled\n", WARNING), ("namespace/assets labeled\n", ""))
    assert warn.evaluate(split).passed
    # An exec error after it does not take it back.
    later = history(("", WARNING), ("", "error: unable to upgrade connection\n"))
    assert warn.evaluate(later).passed
    # But nothing in the history that says it: not yet, naming the last output.
    neither = history(("", "x\n"), ("", "error: unable to upgrade connection\n"))
    outcome = warn.evaluate(neither)
    assert outcome.status is Status.FAIL
    assert "unable to upgrade connection" in outcome.found


def test_an_unknown_kind_on_the_server_is_an_error_not_a_failure(ctx, ns):
    widget = parse_check(
        {
            "kind": "exists",
            "object": {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w"},
        }
    )
    outcome = widget.evaluate(ctx)
    assert outcome.status is Status.ERROR
    assert "no kind Widget in example.com/v1" in outcome.detail


def test_a_cel_expression_that_cannot_evaluate_is_an_error(ctx, ns):
    broken = parse_check(
        {
            "kind": "cel",
            "object": {"kind": "Namespace", "name": ns},
            "expression": "object.spec.nothing.here == 1",
        }
    )
    outcome = broken.evaluate(ctx)
    assert outcome.status is Status.ERROR
    assert f"failed on Namespace {ns}" in outcome.detail


def test_wait_polls_until_the_cluster_catches_up(kubectl, ns, ctx):
    scaled = kubectl("-n", ns, "scale", "deployment", "web", "--replicas=2")
    assert scaled.returncode == 0, scaled.stderr
    two = parse_check(
        {"kind": "pod_count", "namespace": ns, "selector": "app=web", "count": 2, "wait": 30}
    )
    [outcome] = evaluate_checks([two], ctx)
    assert outcome.status is Status.PASS, outcome
    [no_wait] = evaluate_checks(
        [parse_check({"kind": "pod_count", "namespace": ns, "selector": "app=web", "count": 3})],
        ctx,
        wait=False,
    )
    assert no_wait.status is Status.FAIL


@pytest.mark.parametrize(
    "raw, key, reason",
    [
        ({"kind": "colour"}, "kind", "unknown check kind 'colour'"),
        (
            {"kind": "label", "object": {"kind": "Namespace", "name": "a"}, "key": "k"},
            None,
            "label check needs `equals`",
        ),
        (
            {
                "kind": "label",
                "object": {"kind": "Namespace", "name": "a"},
                "key": "k",
                "equals": "v",
                "colour": 1,
            },
            "colour",
            "unknown keys: colour",
        ),
        (
            {"kind": "exists", "object": {"kind": "Widget", "name": "a"}},
            "object",
            "`object.apiVersion` is required for kind Widget",
        ),
        (
            {"kind": "exists", "object": {"kind": "Pod"}},
            "object",
            "exactly one of name or selector",
        ),
        (
            {"kind": "cel", "object": {"kind": "Pod", "name": "a"}, "expression": "object.("},
            "expression",
            "CEL does not compile",
        ),
        ({"kind": "output", "pattern": "("}, "pattern", "not a valid regex"),
        ({"kind": "pod_count", "namespace": "a", "count": "one"}, None, "expected an integer"),
        ({"kind": "pod_count", "namespace": "a", "count": 1, "wait": 600}, "wait", "from 0 to 60"),
        (
            {
                "kind": "field",
                "object": {"kind": "Pod", "name": "a"},
                "path": "spec..x",
                "equals": 1,
            },
            None,
            "cannot read field path",
        ),
    ],
)
def test_malformed_checks_are_refused_naming_the_field(raw, key, reason):
    with pytest.raises(CheckSpecError) as refused:
        parse_check(raw)
    assert reason in refused.value.reason
    assert refused.value.key == key
