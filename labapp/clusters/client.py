"""The one way the app reaches a Kubernetes API server.

Clients are built lazily from a kubeconfig path and kept per path, so tests
can point the app at their own cluster and a worker reuses its connections.
Callers get plain dataclasses back, never raw API dicts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

_lock = threading.Lock()
_clients: OrderedDict[str, k8s.ApiClient] = OrderedDict()
MAX_CLIENTS = 32


class ClusterUnreachable(RuntimeError):
    """The API server could not be reached or refused the admin identity."""


def _build_client(kubeconfig: str) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    # Fail fast: a check that hangs is worse than one that says "unreachable".
    configuration.retries = 1
    return k8s.ApiClient(configuration)


def api_client(kubeconfig: Path | str) -> k8s.ApiClient:
    path = str(kubeconfig)
    if not Path(path).is_file():
        raise ClusterUnreachable(f"kubeconfig {path} does not exist")
    with _lock:
        if path in _clients:
            _clients.move_to_end(path)
        else:
            _clients[path] = _build_client(path)
            while len(_clients) > MAX_CLIENTS:
                _clients.popitem(last=False)
        return _clients[path]


def forget_client(kubeconfig: Path | str) -> None:
    """Drop the cached client for this kubeconfig, e.g. after its cluster's port or
    certificates change."""
    with _lock:
        _clients.pop(str(kubeconfig), None)


@dataclass(frozen=True)
class ClusterSummary:
    server: str
    version: str
    namespaces: list[str]
    nodes: list[str]


def cluster_summary(kubeconfig: Path | str) -> ClusterSummary:
    api = api_client(kubeconfig)
    try:
        version = k8s.VersionApi(api).get_code(_request_timeout=5)
        core = k8s.CoreV1Api(api)
        namespaces = core.list_namespace(_request_timeout=5)
        nodes = core.list_node(_request_timeout=5)
    except (ApiException, HTTPError, OSError) as exc:
        raise ClusterUnreachable(f"{api.configuration.host}: {describe_api_error(exc)}") from exc
    return ClusterSummary(
        server=api.configuration.host,
        version=version.git_version,
        namespaces=sorted(
            ns.metadata.name for ns in namespaces.items if ns.metadata and ns.metadata.name
        ),
        nodes=sorted(n.metadata.name for n in nodes.items if n.metadata and n.metadata.name),
    )


def describe_api_error(exc: Exception) -> str:
    """One sentence for an API failure, naming the cause."""
    if isinstance(exc, ApiException):
        return f"the API server answered HTTP {exc.status} {exc.reason}"
    return f"the API server could not be reached ({type(exc).__name__}: {exc})"


def nodes_are_simulated(kubeconfig: Path | str) -> bool:
    """True when every node is a KWOK node, so no container really runs."""
    try:
        nodes = k8s.CoreV1Api(api_client(kubeconfig)).list_node(_request_timeout=5).items
    except (ApiException, HTTPError, OSError) as exc:
        raise ClusterUnreachable(describe_api_error(exc)) from exc
    return bool(nodes) and all(
        ((node.metadata and node.metadata.annotations) or {}).get("kwok.x-k8s.io/node") == "fake"
        for node in nodes
    )
