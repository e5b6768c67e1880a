"""Which lane a command runs in: cheap reads and writes are quick; whatever parses the
OpenAPI schema, waits for the cluster or runs in a pod is slow, and so is anything the
rule does not know."""

from __future__ import annotations

import pytest

from labapp.shell.lanes import Lane, command_lane
from labapp.shell.parse import parse_command
from labapp.shell.policy import ShellPolicy

WHOAMI_LAB = ShellPolicy.for_lab(["whoami"])

QUICK = [
    "kubectl get pods",
    "kubectl -n assets get pod",
    "kubectl get deployment -n assets assets -o yaml | yq '.status'",
    "kubectl get pods -o name | head -n 1",
    "kubectl describe deployment assets",
    "kubectl kustomize assets/baseline-namespace",
    "kubectl logs deploy/assets --tail 20",
    "kubectl get events --sort-by=.lastTimestamp",
    "kubectl label namespace ns pod-security.kubernetes.io/enforce=baseline",
    "kubectl label --overwrite namespace ns a=b",
    "kubectl annotate deployment assets note=x",
    'kubectl patch deployment assets -p \'{"spec":{"replicas":2}}\'',
    "kubectl scale deployment assets --replicas 2",
    "kubectl auth can-i list pods",
    "kubectl get -f assets/base/deployment.yaml",
    "kubectl version",
]

SLOW = [
    # parse the OpenAPI schema
    "kubectl apply -k assets/baseline-namespace",
    "kubectl apply -f assets/base/deployment.yaml",
    "kubectl create -f assets/base/deployment.yaml",
    "kubectl replace -f assets/base/deployment.yaml",
    "kubectl -n assets create configmap x --from-literal=a=b",
    # wait for the cluster
    "kubectl -n assets delete pod --all",
    "kubectl rollout restart deployment assets",
    "kubectl rollout status deployment assets",
    "kubectl wait --for=condition=Available deployment/assets",
    "kubectl get pods -w",
    "kubectl get pods --watch",
    "kubectl get pods --watch-only",
    "kubectl logs -f deploy/assets",
    "kubectl logs --follow deploy/assets",
    "kubectl label namespace ns a=b --wait",
    # run in a pod
    "kubectl -n assets exec pod/x -- whoami",
    # a slow stage anywhere makes the whole line slow, substitutions included
    "kubectl get pods | kubectl apply -f -",
    "kubectl -n assets exec $(kubectl -n assets get pods -o name) -- whoami",
    "kubectl get pod $(kubectl get pods -w -o name)",
]


@pytest.mark.parametrize("line", QUICK)
def test_cheap_commands_are_quick(line: str) -> None:
    assert command_lane(parse_command(line, WHOAMI_LAB)) is Lane.QUICK


@pytest.mark.parametrize("line", SLOW)
def test_costly_or_waiting_commands_are_slow(line: str) -> None:
    assert command_lane(parse_command(line, WHOAMI_LAB)) is Lane.SLOW


def test_a_subcommand_the_rule_does_not_list_is_slow() -> None:
    # `expose` is allowed and cheap, but unlisted: the safe side is the slow lane,
    # where a mistake can delay only slow commands.
    assert command_lane(parse_command("kubectl expose deployment assets --port 80")) is Lane.SLOW


def test_programs_other_than_kubectl_only_read_a_pipe() -> None:
    assert command_lane(parse_command("kubectl get pods -o yaml | yq '.items' | wc -l")) is (
        Lane.QUICK
    )
