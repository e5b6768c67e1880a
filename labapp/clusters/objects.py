"""Read any Kubernetes object as a plain dict, for checks (admin credentials).

Uses the dynamic client, so a lab can check any kind the server knows,
custom resources included. Discovery runs once per kubeconfig.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from kubernetes.dynamic.resource import Resource
from urllib3.exceptions import HTTPError

from labapp.clusters.client import ClusterUnreachable, api_client, describe_api_error

REQUEST_TIMEOUT = 5


class UnknownKind(LookupError):
    """The API server serves no such kind: the lab is wrong, not the learner."""


@dataclass(frozen=True)
class KubeObject:
    kind: str
    name: str
    namespace: str | None
    body: dict[str, Any]


@functools.lru_cache(maxsize=32)
def _cached_dynamic(kubeconfig: str) -> DynamicClient:
    return DynamicClient(api_client(kubeconfig))


def _dynamic(kubeconfig: Path | str) -> DynamicClient:
    """The dynamic client; building it runs discovery, so it can fail to connect."""
    try:
        return _cached_dynamic(str(kubeconfig))
    except (ApiException, HTTPError, OSError) as exc:
        raise ClusterUnreachable(describe_api_error(exc)) from exc


def resource_for(kubeconfig: Path | str, api_version: str, kind: str) -> Resource:
    try:
        return _dynamic(kubeconfig).resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError as exc:
        raise UnknownKind(f"the API server has no kind {kind} in {api_version}") from exc
    except (ApiException, HTTPError, OSError) as exc:
        _cached_dynamic.cache_clear()  # rediscover next time; the server may come back
        raise ClusterUnreachable(describe_api_error(exc)) from exc


def get_object(
    kubeconfig: Path | str, *, api_version: str, kind: str, name: str, namespace: str | None
) -> KubeObject | None:
    resource = resource_for(kubeconfig, api_version, kind)
    try:
        found = resource.get(
            name=name,
            namespace=namespace if resource.namespaced else None,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise ClusterUnreachable(describe_api_error(exc)) from exc
    except (HTTPError, OSError) as exc:
        raise ClusterUnreachable(describe_api_error(exc)) from exc
    return _wrap(found.to_dict(), kind)


def list_objects(
    kubeconfig: Path | str,
    *,
    api_version: str,
    kind: str,
    namespace: str | None,
    label_selector: str | None,
) -> list[KubeObject]:
    resource = resource_for(kubeconfig, api_version, kind)
    try:
        found = resource.get(
            namespace=namespace if resource.namespaced else None,
            label_selector=label_selector or None,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 404:  # the namespace itself is gone
            return []
        raise ClusterUnreachable(describe_api_error(exc)) from exc
    except (HTTPError, OSError) as exc:
        raise ClusterUnreachable(describe_api_error(exc)) from exc
    # Items of a list response carry no kind of their own.
    return sorted(
        (_wrap(item, kind) for item in found.to_dict().get("items", [])), key=lambda obj: obj.name
    )


def _wrap(body: dict[str, Any], kind: str) -> KubeObject:
    meta = body.get("metadata", {})
    return KubeObject(
        kind=kind, name=meta.get("name", ""), namespace=meta.get("namespace"), body=body
    )


class ObjectReader(Protocol):
    """Where checks read objects from: the API server, or the tracker's cache of it."""

    def get(
        self, *, api_version: str, kind: str, name: str, namespace: str | None
    ) -> KubeObject | None: ...

    def list(
        self, *, api_version: str, kind: str, namespace: str | None, label_selector: str | None
    ) -> list[KubeObject]: ...


@dataclass(frozen=True)
class ApiReader:
    """Reads straight from the API server with the given (admin) kubeconfig."""

    kubeconfig: Path | str

    def get(
        self, *, api_version: str, kind: str, name: str, namespace: str | None
    ) -> KubeObject | None:
        return get_object(
            self.kubeconfig, api_version=api_version, kind=kind, name=name, namespace=namespace
        )

    def list(
        self, *, api_version: str, kind: str, namespace: str | None, label_selector: str | None
    ) -> list[KubeObject]:
        return list_objects(
            self.kubeconfig,
            api_version=api_version,
            kind=kind,
            namespace=namespace,
            label_selector=label_selector,
        )


FIELD_MANAGER = "labapp"


def apply_objects(
    kubeconfig: Path | str, objects: list[dict[str, Any]], *, parallel: int = 1
) -> None:
    """Server-side apply: idempotent, so provisioning twice does no harm.

    With `parallel` > 1 the objects go out as one batch, that many requests at
    a time, in two waves: first every object that does not live in a Namespace
    of this batch (the Namespaces themselves, cluster-scoped objects, objects in
    namespaces that exist already), then the objects in the new Namespaces.
    Nothing else here needs an order: a binding may name a role that comes later."""
    if parallel <= 1:
        for body in objects:
            _apply_one(kubeconfig, body)
        return
    made_here = {body["metadata"]["name"] for body in objects if body["kind"] == "Namespace"}
    first = [b for b in objects if b["metadata"].get("namespace") not in made_here]
    second = [b for b in objects if b["metadata"].get("namespace") in made_here]
    # Discovery (the kind -> resource lookup) runs here, once, never in the threads.
    for body in objects:
        resource_for(kubeconfig, body["apiVersion"], body["kind"])
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="apply") as pool:
        for wave in (first, second):
            # list(): wait for the whole wave; the first failure is raised.
            list(pool.map(lambda body: _apply_one(kubeconfig, body), wave))


def _apply_one(kubeconfig: Path | str, body: dict[str, Any]) -> None:
    client = _dynamic(kubeconfig)
    resource = resource_for(kubeconfig, body["apiVersion"], body["kind"])
    meta = body["metadata"]
    try:
        client.server_side_apply(
            resource,
            body=body,
            name=meta["name"],
            namespace=meta.get("namespace"),
            force_conflicts=True,
            field_manager=FIELD_MANAGER,
            _request_timeout=REQUEST_TIMEOUT * 2,
        )
    except ApiException as exc:
        raise ClusterUnreachable(
            f"applying {body['kind']} {meta['name']}: "
            f"{describe_api_error(exc)}: {_api_message(exc)}"
        ) from exc
    except (HTTPError, OSError) as exc:
        raise ClusterUnreachable(describe_api_error(exc)) from exc


def delete_object(
    kubeconfig: Path | str, *, api_version: str, kind: str, name: str, namespace: str | None = None
) -> None:
    """Delete if present; absent is fine (teardown must be repeatable)."""
    resource = resource_for(kubeconfig, api_version, kind)
    try:
        resource.delete(
            name=name,
            namespace=namespace,
            _request_timeout=REQUEST_TIMEOUT,
            body={"propagationPolicy": "Background"},
        )
    except ApiException as exc:
        if exc.status != 404:
            raise ClusterUnreachable(describe_api_error(exc)) from exc
    except (HTTPError, OSError) as exc:
        raise ClusterUnreachable(describe_api_error(exc)) from exc


def _api_message(exc: ApiException) -> str:
    import json

    try:
        return json.loads(exc.body or "").get("message", "")
    except (TypeError, ValueError):
        return str(exc.body or "")[:300]
