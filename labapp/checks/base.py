"""What every check kind shares: the context it judges, the objects it names, the
base classes, and the error a malformed check raises.

A check is a frozen dataclass: parsed and validated from the lab's YAML,
rendered with a learner's namespaces, then evaluated with admin credentials
against an `ObjectReader` (the API server, or the tracker's cache of it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from labapp.checks.outcome import Outcome, Status
from labapp.clusters.client import ClusterUnreachable
from labapp.clusters.objects import ApiReader, KubeObject, ObjectReader, UnknownKind
from labapp.lib.placeholders import render

# apiVersion for the kinds labs use most; other kinds must say theirs.
KNOWN_API_VERSIONS = {
    "Namespace": "v1",
    "Pod": "v1",
    "Service": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "ServiceAccount": "v1",
    "Event": "v1",
    "ResourceQuota": "v1",
    "LimitRange": "v1",
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
}
MAX_WAIT = 60.0


class CheckSpecError(ValueError):
    """A check in a lab file is malformed. `key` names the offending field."""

    def __init__(self, key: str | None, reason: str) -> None:
        super().__init__(reason)
        self.key, self.reason = key, reason


@dataclass(frozen=True)
class RunOutput:
    stdout: str
    stderr: str


@dataclass(frozen=True)
class CheckContext:
    """What checks judge: the cluster (through `reader`: the API, or the tracker's
    cache of it) and what the step's runs printed."""

    reader: ObjectReader
    # Every run counted for the step since it became current, oldest first.
    outputs: Sequence[RunOutput] = ()

    @classmethod
    def from_api(cls, kubeconfig: Path, outputs: Sequence[RunOutput] = ()) -> CheckContext:
        return cls(ApiReader(kubeconfig), outputs)


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    api_version: str
    name: str | None = None
    namespace: str | None = None
    selector: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> ObjectRef:
        if not isinstance(raw, Mapping):
            raise CheckSpecError("object", "`object` must be a mapping with kind and name")
        unknown = set(raw) - {"kind", "apiVersion", "name", "namespace", "selector"}
        if unknown:
            listed = ", ".join(sorted(unknown))
            raise CheckSpecError("object", f"`object` has unknown keys: {listed}")
        kind = raw.get("kind")
        if not isinstance(kind, str) or not kind:
            raise CheckSpecError("object", "`object.kind` is required")
        api_version = raw.get("apiVersion") or KNOWN_API_VERSIONS.get(kind)
        if not api_version:
            raise CheckSpecError("object", f"`object.apiVersion` is required for kind {kind}")
        if bool(raw.get("name")) == bool(raw.get("selector")):
            raise CheckSpecError("object", "`object` needs exactly one of name or selector")
        return cls(
            kind=kind,
            api_version=str(api_version),
            name=raw.get("name"),
            namespace=raw.get("namespace"),
            selector=raw.get("selector"),
        )

    def templated(self) -> list[str]:
        return [v for v in (self.name, self.namespace, self.selector) if v]

    def render(self, namespaces: Mapping[str, str]) -> ObjectRef:
        return dataclasses.replace(
            self,
            **{
                key: render(value, namespaces)
                for key in ("name", "namespace", "selector")
                if (value := getattr(self, key))
            },
        )

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        if self.name:
            return f"{self.kind} {self.name}{where}"
        return f"{self.kind}s matching {self.selector}{where}"

    def fetch(self, reader: ObjectReader) -> list[KubeObject]:
        if self.name:
            found = reader.get(
                api_version=self.api_version,
                kind=self.kind,
                name=self.name,
                namespace=self.namespace,
            )
            return [found] if found else []
        return reader.list(
            api_version=self.api_version,
            kind=self.kind,
            namespace=self.namespace,
            label_selector=self.selector,
        )


@dataclass(frozen=True)
class Check:
    """Base: every kind has an optional title and a wait (seconds to poll for a pass)."""

    kind: ClassVar[str]
    # The fields whose strings may hold `{{ ns.X }}` placeholders: declared once,
    # read by templated() (validation) and render() (per learner).
    placeholder_fields: ClassVar[tuple[str, ...]] = ()
    title: str | None = field(default=None, kw_only=True)
    wait: float = field(default=0.0, kw_only=True)

    def describe(self) -> str:
        raise NotImplementedError

    def display_title(self) -> str:
        return self.title or self.describe()

    def templated(self) -> list[str]:
        """Strings that may hold `{{ ns.X }}` placeholders."""
        return [value for name in self.placeholder_fields if (value := getattr(self, name))]

    def render(self, namespaces: Mapping[str, str]) -> Self:
        rendered: dict[str, Any] = {
            name: render(value, namespaces)
            for name in self.placeholder_fields
            if (value := getattr(self, name))
        }
        return dataclasses.replace(self, **rendered)

    def reads(self) -> set[tuple[str, str]]:
        """(apiVersion, kind) of every object this check reads: what the tracker watches."""
        return set()

    def evaluate(self, ctx: CheckContext) -> Outcome:
        raise NotImplementedError

    # helpers for subclasses
    def _pass(self, found: str = "") -> Outcome:
        return Outcome(Status.PASS, self.display_title(), found=found)

    def _fail(self, expected: str, found: str) -> Outcome:
        return Outcome(Status.FAIL, self.display_title(), expected=expected, found=found)

    def _error(self, detail: str) -> Outcome:
        return Outcome(Status.ERROR, self.display_title(), detail=detail)


@dataclass(frozen=True)
class _ObjectCheck(Check):
    object: ObjectRef

    def templated(self) -> list[str]:
        return [*self.object.templated(), *super().templated()]

    def render(self, namespaces: Mapping[str, str]) -> Self:
        return dataclasses.replace(
            super().render(namespaces), object=self.object.render(namespaces)
        )

    def reads(self) -> set[tuple[str, str]]:
        return {(self.object.api_version, self.object.kind)}

    def evaluate(self, ctx: CheckContext) -> Outcome:
        try:
            objects = self.object.fetch(ctx.reader)
        except (ClusterUnreachable, UnknownKind) as exc:
            return self._error(str(exc))
        return self.judge(objects)

    def judge(self, objects: list[KubeObject]) -> Outcome:
        raise NotImplementedError

    def _missing(self, expected: str) -> Outcome:
        return self._fail(expected, f"{self.object.describe()} does not exist")
