"""The tracker: one long-running process that ticks learners' checks by itself.

It watches, cluster-wide, every kind the labs' checks read (one informer per
kind, filtered to labapp's namespaces), and it reads an inbox in Redis where
workers say "this learner's run ended". Whatever touched a learner's
namespace or history, it judges that learner's current step from its cache
and publishes the result to the learner's page and the instructor's board.

Judging happens on this process's main thread, one learner at a time;
informer threads only mark namespaces dirty. On start, and after every
re-list, it catches up on every learner whose objects it may have missed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis
from django.db import close_old_connections

from labapp.catalog.registry import LabNotFound, all_labs
from labapp.clusters.informer import CacheReader, Informer, KindRef
from labapp.clusters.isolation import SANDBOX_LABEL
from labapp.clusters.objects import ApiReader
from labapp.learning.models import LabProgress
from labapp.learning.tracking import progress_judge
from labapp.live.streams import TRACKER_HEARTBEAT, TRACKER_INBOX, XReadReply, sync_client
from labapp.sandboxes.models import Sandbox

log = logging.getLogger(__name__)

NAMESPACE = KindRef("v1", "Namespace")
DEBOUNCE_SECONDS = 0.05  # let a burst of events (a rollout) settle into one judgement
HEARTBEAT_SECONDS = 5
HEARTBEAT_TTL = 30
RETRY_SECONDS = 5.0


def watched_kinds() -> set[KindRef]:
    """Every kind a lab's step checks read, and namespaces (which say whose they are)."""
    kinds = {NAMESPACE}
    for lab in all_labs().values():
        for step in lab.steps:
            for check in step.checks:
                kinds |= {KindRef(api_version, kind) for api_version, kind in check.reads()}
    return kinds


@dataclass
class Pending:
    """What the main thread must judge next."""

    namespaces: set[str] = field(default_factory=set)
    sandboxes: dict[int, int | None] = field(default_factory=dict)  # id -> the run that asked

    def __bool__(self) -> bool:
        return bool(self.namespaces or self.sandboxes)


class Tracker:
    def __init__(self, kubeconfig: Path, kinds: Iterable[KindRef] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.stop = threading.Event()
        self._pending = Pending()
        self._wake = threading.Condition()
        self._known: set[str] = set()
        self.namespaces = Informer(
            kubeconfig, NAMESPACE, on_change=self._namespace_changed, label_selector=SANDBOX_LABEL
        )
        self.informers = [
            Informer(kubeconfig, ref, on_change=self._mark, wanted=self._is_ours)
            for ref in sorted(set(kinds or watched_kinds()) - {NAMESPACE}, key=str)
        ]
        self.reader = CacheReader([self.namespaces, *self.informers], ApiReader(kubeconfig))
        self.judged = 0
        self.started_at = time.time()

    # -- events, from the informer and inbox threads --------------------------

    def _is_ours(self, namespace: str) -> bool:
        return self.namespaces.get(None, namespace) is not None

    def _mark(self, namespace: str) -> None:
        with self._wake:
            self._pending.namespaces.add(namespace)
            self._wake.notify()

    def _ask(self, sandbox_id: int, run_id: int | None) -> None:
        with self._wake:
            self._pending.sandboxes[sandbox_id] = run_id or self._pending.sandboxes.get(sandbox_id)
            self._wake.notify()

    def _namespace_changed(self, name: str) -> None:
        present = self._is_ours(name)
        if present and name not in self._known:
            self._known.add(name)
            for informer in self.informers:
                if informer.synced.is_set():  # a later first list would include it anyway
                    informer.backfill(name)
        elif not present and name in self._known:
            self._known.discard(name)
            for informer in self.informers:
                informer.forget_namespace(name)
        self._mark(name)

    # -- threads --------------------------------------------------------------

    def start(self, *, sync_timeout: float = 60.0) -> None:
        """Start the informers (namespaces first: they say which objects are ours) and
        the inbox reader; return when every cache has listed once."""
        self._thread(self.namespaces.run, "informer-Namespace")
        self._wait_synced([self.namespaces], sync_timeout)
        for informer in self.informers:
            self._thread(informer.run, f"informer-{informer.ref.kind}")
        self._wait_synced(self.informers, sync_timeout)
        self._thread(self._read_inbox, "inbox")
        self._thread(self._beat, "heartbeat")
        self.catch_up()

    def _thread(self, target: Callable[[threading.Event], object], name: str) -> None:
        threading.Thread(target=target, args=(self.stop,), name=name, daemon=True).start()

    def _wait_synced(self, informers: list[Informer], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for informer in informers:
            if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"the {informer.ref.kind} informer did not list in {timeout}s")

    def catch_up(self) -> None:
        """Judge every learner with a ready sandbox: whatever happened while we were away."""
        for sandbox_id in Sandbox.objects.filter(
            state=Sandbox.State.READY, owner__isnull=False
        ).values_list("id", flat=True):
            self._ask(sandbox_id, None)

    def _read_inbox(self, stop: threading.Event) -> None:
        client = sync_client()
        after = "$"  # what was sent before we started, catch_up covers
        while not stop.is_set():
            try:
                found = cast(
                    XReadReply, client.xread({TRACKER_INBOX: after}, block=2000, count=500)
                )
            except (redis.RedisError, OSError) as exc:
                log.warning("tracker inbox: %s; retrying", exc)
                stop.wait(1.0)
                after = "$"
                self.catch_up()  # messages may have been lost with Redis
                continue
            for entry_id, fields in found[0][1] if found else []:
                after = entry_id.decode()
                payload = json.loads(fields[b"text"])
                self._ask(int(payload["sandbox"]), payload.get("run"))

    def _beat(self, stop: threading.Event) -> None:
        client = sync_client()
        while not stop.is_set():
            status = {
                "at": time.time(),
                "synced": all(i.synced.is_set() for i in [self.namespaces, *self.informers]),
                "kinds": [self.namespaces.ref.kind, *(i.ref.kind for i in self.informers)],
                "judged": self.judged,
            }
            try:
                client.set(TRACKER_HEARTBEAT, json.dumps(status), ex=HEARTBEAT_TTL)
            except (redis.RedisError, OSError) as exc:
                log.warning("tracker heartbeat: %s", exc)
            stop.wait(HEARTBEAT_SECONDS)

    # -- the main thread ----------------------------------------------------------

    def run_forever(self) -> None:
        while not self.stop.is_set():
            self.judge_pending(wait=1.0)

    def judge_pending(self, *, wait: float) -> int:
        """Judge what is pending (waiting up to `wait` seconds for something); returns
        how many learners were judged."""
        with self._wake:
            if not self._pending:
                self._wake.wait(wait)
            if not self._pending:
                return 0
        time.sleep(DEBOUNCE_SECONDS)
        with self._wake:
            pending, self._pending = self._pending, Pending()
        close_old_connections()
        asks = dict(pending.sandboxes)
        slugs = {self._slug_of(ns) for ns in pending.namespaces} - {None}
        for sandbox_id in Sandbox.objects.filter(slug__in=slugs).values_list("id", flat=True):
            asks.setdefault(sandbox_id, None)
        for sandbox_id, run_id in asks.items():
            try:
                self._judge(sandbox_id, run_id)
            except Exception:
                log.exception(
                    "judging sandbox %s failed; retrying in %ss", sandbox_id, RETRY_SECONDS
                )
                threading.Timer(RETRY_SECONDS, self._ask, (sandbox_id, run_id)).start()
        return len(asks)

    def _slug_of(self, namespace: str) -> str | None:
        body = self.namespaces.get(None, namespace)
        return (body or {}).get("metadata", {}).get("labels", {}).get(SANDBOX_LABEL)

    def _judge(self, sandbox_id: int, run_id: int | None) -> None:
        sandbox = Sandbox.objects.filter(id=sandbox_id, state=Sandbox.State.READY).first()
        # A pooled sandbox no learner has claimed (no owner) is nobody's to judge.
        if sandbox is None or sandbox.owner_id is None or sandbox.is_expired():
            return
        progress = LabProgress.objects.filter(
            user_id=sandbox.owner_id, lab_id=sandbox.lab_id
        ).first()
        if progress is None:
            return
        try:
            progress_judge(progress=progress, sandbox=sandbox, reader=self.reader, run_id=run_id)
        except LabNotFound:
            log.warning("sandbox %s: lab %r is not installed", sandbox_id, sandbox.lab_id)
            return
        self.judged += 1


def tracker_status() -> dict | None:
    """The tracker's last heartbeat, or None when none is fresh (for /readyz)."""
    raw = sync_client().get(TRACKER_HEARTBEAT)
    return json.loads(raw) if raw else None
