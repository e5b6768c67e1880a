"""Informers: one list-then-watch per kind, cluster-wide, kept as a local cache.

The tracker needs to know when anything a check reads changes in a learner's
namespace, whoever changed it (the learner, a controller, the scheduler). One
watch per kind for the whole cluster costs the API server the same for 1 or
500 learners; a watch per learner would not.

Only labapp's namespaces are kept: the Namespace informer selects them by
label, and the other informers drop objects outside that set. A namespace
that appears after an informer listed is back-filled with one namespaced
list, so no event that raced ahead of the namespace is lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from labapp.clusters.client import ClusterUnreachable
from labapp.clusters.objects import KubeObject, ObjectReader, resource_for
from labapp.lib.selectors import parse_selector

log = logging.getLogger(__name__)

WATCH_SECONDS = 60  # the server ends each watch after this; we resume from the last version
LIST_TIMEOUT = 30
READ_TIMEOUT = WATCH_SECONDS + 30  # a silent connection past this is dead
MAX_BACKOFF = 10.0

Key = tuple[str | None, str]  # (namespace, name)
OnChange = Callable[[str], None]  # the namespace in which something changed


@dataclass(frozen=True)
class KindRef:
    api_version: str
    kind: str


def _slim(body: dict[str, Any]) -> dict[str, Any]:
    # managedFields is most of an object's size and no check reads it.
    body.get("metadata", {}).pop("managedFields", None)
    return body


def _version(body: dict[str, Any]) -> int:
    try:
        return int(body.get("metadata", {}).get("resourceVersion", "0"))
    except ValueError:
        return 0


class Informer:
    """The cache of one kind. `run()` is a thread's body; it returns when `stop` is set."""

    def __init__(
        self,
        kubeconfig: Path,
        ref: KindRef,
        *,
        on_change: OnChange,
        wanted: Callable[[str], bool] | None = None,
        label_selector: str | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.ref = ref
        self.on_change = on_change
        self.wanted = wanted or (lambda namespace: True)
        self.label_selector = label_selector
        self.synced = threading.Event()
        self.relists = 0
        self._objects: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._watcher: watch.Watch | None = None

    # -- reading -------------------------------------------------------------

    def get(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def in_namespace(self, namespace: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [body for (ns, _), body in self._objects.items() if ns == namespace]

    def namespaces(self) -> set[str]:
        with self._lock:
            return {ns for ns, _ in self._objects if ns}

    # -- running -------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                version = self._relist()
                backoff = 0.5
                while not stop.is_set():
                    version = self._watch(version, stop)
            except ApiException as exc:
                if exc.status == 410:  # our resourceVersion is too old: list again, now
                    log.info("%s: resourceVersion expired; listing again", self.ref.kind)
                    continue
                log.warning("%s informer: %s; listing again in %.1fs", self.ref.kind, exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except (HTTPError, OSError, ClusterUnreachable) as exc:
                log.warning("%s informer: %s; listing again in %.1fs", self.ref.kind, exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def stop_watch(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            watcher.stop()

    def backfill(self, namespace: str) -> None:
        """List one namespace and merge it in: for a namespace that appeared after
        this informer last listed."""
        try:
            resource = resource_for(self.kubeconfig, self.ref.api_version, self.ref.kind)
            listing = resource.get(
                namespace=namespace,
                label_selector=self.label_selector,
                _request_timeout=LIST_TIMEOUT,
            ).to_dict()
        except (ApiException, HTTPError, OSError, ClusterUnreachable) as exc:
            log.warning("%s: back-filling %s failed: %s", self.ref.kind, namespace, exc)
            return
        with self._lock:
            for body in listing.get("items", []):
                key = (namespace, body["metadata"]["name"])
                known = self._objects.get(key)
                if known is None or _version(body) > _version(known):
                    self._objects[key] = _slim(body)
        self.on_change(namespace)

    def forget_namespace(self, namespace: str) -> None:
        with self._lock:
            for key in [key for key in self._objects if key[0] == namespace]:
                del self._objects[key]

    def _relist(self) -> str:
        resource = resource_for(self.kubeconfig, self.ref.api_version, self.ref.kind)
        listing = resource.get(
            label_selector=self.label_selector, _request_timeout=LIST_TIMEOUT
        ).to_dict()
        fresh: dict[Key, dict[str, Any]] = {}
        for body in listing.get("items", []):
            meta = body.get("metadata", {})
            namespace = meta.get("namespace")
            if namespace is None or self.wanted(namespace):
                fresh[(namespace, meta["name"])] = _slim(body)
        with self._lock:
            before, self._objects = self._objects, fresh
        self.relists += 1
        self.synced.set()
        # Whatever changed while we were not watching: tell each namespace once.
        touched = {key[0] or key[1] for key in set(before) ^ set(fresh)}
        touched |= {
            key[0] or key[1]
            for key in set(before) & set(fresh)
            if _version(before[key]) != _version(fresh[key])
        }
        for namespace in touched:
            self.on_change(namespace)
        return str(listing.get("metadata", {}).get("resourceVersion", ""))

    def _watch(self, version: str, stop: threading.Event) -> str:
        """One watch request, until the server ends it; returns the version to resume from."""
        resource = resource_for(self.kubeconfig, self.ref.api_version, self.ref.kind)
        self._watcher = watcher = watch.Watch()
        for event in watcher.stream(
            resource.get,
            serialize=False,
            label_selector=self.label_selector,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _request_timeout=(5, READ_TIMEOUT),
        ):
            if stop.is_set():
                watcher.stop()
                break
            version = self._apply(event) or version
        return version

    def _apply(self, event: dict[str, Any]) -> str | None:
        kind, body = event.get("type"), event.get("raw_object") or {}
        meta = body.get("metadata", {})
        if kind == "BOOKMARK":
            return meta.get("resourceVersion")
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return None
        namespace, name = meta.get("namespace"), meta.get("name", "")
        if namespace is not None and not self.wanted(namespace):
            return meta.get("resourceVersion")
        with self._lock:
            if kind == "DELETED":
                self._objects.pop((namespace, name), None)
            else:
                self._objects[(namespace, name)] = _slim(body)
        self.on_change(namespace or name)
        return meta.get("resourceVersion")


class CacheReader(ObjectReader):
    """Checks read the informers' caches; kinds nobody watches fall back to the API."""

    def __init__(self, informers: Iterable[Informer], fallback: ObjectReader) -> None:
        self._by_kind = {(i.ref.api_version, i.ref.kind): i for i in informers}
        self._fallback = fallback

    def get(
        self, *, api_version: str, kind: str, name: str, namespace: str | None
    ) -> KubeObject | None:
        informer = self._by_kind.get((api_version, kind))
        if informer is None:
            return self._fallback.get(
                api_version=api_version, kind=kind, name=name, namespace=namespace
            )
        body = informer.get(namespace if namespace else None, name)
        if body is None and namespace:
            body = informer.get(None, name)  # a cluster-scoped kind named with a namespace
        return KubeObject(kind, name, namespace, body) if body is not None else None

    def list(
        self, *, api_version: str, kind: str, namespace: str | None, label_selector: str | None
    ) -> list[KubeObject]:
        informer = self._by_kind.get((api_version, kind))
        if informer is None:
            return self._fallback.list(
                api_version=api_version,
                kind=kind,
                namespace=namespace,
                label_selector=label_selector,
            )
        matches = parse_selector(label_selector)
        found = [
            KubeObject(kind, body["metadata"]["name"], namespace, body)
            for body in informer.in_namespace(namespace)
            if matches(body.get("metadata", {}).get("labels") or {})
        ]
        return sorted(found, key=lambda obj: obj.name)
