"""The declarative check kinds a lab may use, and `parse_check`, which builds one
from its YAML mapping. Evaluation returns an Outcome and never raises for the
learner's state; only an unreachable API or a broken lab gives ERROR.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import celpy

from labapp.checks.base import (
    MAX_WAIT,
    Check,
    CheckContext,
    CheckSpecError,
    ObjectRef,
    RunOutput,
    _ObjectCheck,
)
from labapp.checks.outcome import Outcome
from labapp.checks.paths import MISSING, lookup, parse_path
from labapp.clusters.client import ClusterUnreachable
from labapp.clusters.objects import KubeObject, UnknownKind
from labapp.lib.placeholders import render


@dataclass(frozen=True)
class Exists(_ObjectCheck):
    kind: ClassVar[str] = "exists"

    def describe(self) -> str:
        return f"{self.object.describe()} exists"

    def judge(self, objects: list[KubeObject]) -> Outcome:
        if objects:
            return self._pass(", ".join(o.name for o in objects))
        return self._missing(f"{self.object.describe()} to exist")


@dataclass(frozen=True)
class Absent(_ObjectCheck):
    kind: ClassVar[str] = "absent"

    def describe(self) -> str:
        return f"{self.object.describe()} is absent"

    def judge(self, objects: list[KubeObject]) -> Outcome:
        if not objects:
            return self._pass()
        return self._fail(
            f"no {self.object.describe()}", ", ".join(f"{o.kind} {o.name}" for o in objects)
        )


@dataclass(frozen=True)
class Label(_ObjectCheck):
    kind: ClassVar[str] = "label"
    key: str
    equals: str
    _where: ClassVar[str] = "labels"

    def describe(self) -> str:
        noun = self._where[:-1]
        return f"{noun} {self.key}={self.equals} on {self.object.describe()}"

    def judge(self, objects: list[KubeObject]) -> Outcome:
        noun = self._where[:-1]
        expected = f"{noun} {self.key}={self.equals} on {self.object.describe()}"
        if not objects:
            return self._missing(expected)
        for obj in objects:
            values = obj.body.get("metadata", {}).get(self._where) or {}
            if self.key not in values:
                return self._fail(expected, f"no such {noun} on {obj.kind} {obj.name}")
            if str(values[self.key]) != self.equals:
                found = f"{self.key}={values[self.key]} on {obj.kind} {obj.name}"
                return self._fail(expected, found)
        return self._pass(f"{self.key}={self.equals}")


@dataclass(frozen=True)
class Annotation(Label):
    kind: ClassVar[str] = "annotation"
    _where: ClassVar[str] = "annotations"


@dataclass(frozen=True)
class FieldValue(_ObjectCheck):
    kind: ClassVar[str] = "field"
    path: str
    equals: Any = MISSING
    contains: Any = MISSING

    def __post_init__(self) -> None:
        parse_path(self.path)  # raises ValueError for the loader to report
        if (self.equals is MISSING) == (self.contains is MISSING):
            raise CheckSpecError("equals", "a field check needs exactly one of equals or contains")

    def _wanted(self) -> tuple[str, Any]:
        if self.equals is not MISSING:
            return "=", self.equals
        return " contains ", self.contains

    def describe(self) -> str:
        verb, value = self._wanted()
        return f"{self.path}{verb}{_show(value)} on {self.object.describe()}"

    def judge(self, objects: list[KubeObject]) -> Outcome:
        _, value = self._wanted()
        expected = self.describe()
        if not objects:
            return self._missing(expected)
        parts = parse_path(self.path)
        for obj in objects:
            found = lookup(obj.body, parts)
            if found is MISSING:
                return self._fail(expected, f"{self.path} is not set on {obj.kind} {obj.name}")
            ok = found == self.equals if self.equals is not MISSING else _contains(found, value)
            if not ok:
                return self._fail(expected, f"{self.path}={_show(found)} on {obj.kind} {obj.name}")
        return self._pass(_show(value))


@dataclass(frozen=True)
class Condition(_ObjectCheck):
    kind: ClassVar[str] = "condition"
    placeholder_fields: ClassVar[tuple[str, ...]] = ("message_contains",)
    type: str
    status: str = "True"
    reason: str | None = None
    message_contains: str | None = None

    def _wanted(self) -> str:
        parts = [f"{self.type}={self.status}"]
        if self.reason:
            parts.append(f"reason {self.reason}")
        if self.message_contains:
            parts.append(f"message containing {self.message_contains!r}")
        return ", ".join(parts)

    def describe(self) -> str:
        return f"condition {self._wanted()} on {self.object.describe()}"

    def judge(self, objects: list[KubeObject]) -> Outcome:
        expected = f"condition {self._wanted()} on {self.object.describe()}"
        if not objects:
            return self._missing(expected)
        for obj in objects:
            conditions = obj.body.get("status", {}).get("conditions") or []
            match = next((c for c in conditions if c.get("type") == self.type), None)
            if match is None:
                present = ", ".join(f"{c.get('type')}={c.get('status')}" for c in conditions)
                return self._fail(
                    expected,
                    f"no {self.type} condition on {obj.kind} {obj.name}"
                    f" (it has: {present or 'no conditions'})",
                )
            problems = []
            if str(match.get("status")) != self.status:
                problems.append(f"status {match.get('status')}")
            if self.reason and match.get("reason") != self.reason:
                problems.append(f"reason {match.get('reason')}")
            if self.message_contains and self.message_contains not in (match.get("message") or ""):
                problems.append(f"message {match.get('message')!r}")
            if problems:
                return self._fail(expected, f"{self.type} with " + ", ".join(problems))
        return self._pass(f"{self.type}={self.status}")


@dataclass(frozen=True)
class PodCount(Check):
    kind: ClassVar[str] = "pod_count"
    placeholder_fields: ClassVar[tuple[str, ...]] = ("namespace", "selector")
    namespace: str
    count: int
    phase: str = "Running"
    selector: str | None = None

    def reads(self) -> set[tuple[str, str]]:
        return {("v1", "Pod")}

    def _what(self) -> str:
        matching = f" matching {self.selector}" if self.selector else ""
        return f"{self.phase} pods{matching} in namespace {self.namespace}"

    def describe(self) -> str:
        return f"{self.count} {self._what()}"

    def evaluate(self, ctx: CheckContext) -> Outcome:
        try:
            pods = ctx.reader.list(
                api_version="v1",
                kind="Pod",
                namespace=self.namespace,
                label_selector=self.selector,
            )
        except (ClusterUnreachable, UnknownKind) as exc:
            return self._error(str(exc))
        # Terminating pods still report their old phase; they are on their way out.
        live = [
            p
            for p in pods
            if not p.body["metadata"].get("deletion_timestamp")
            and not p.body["metadata"].get("deletionTimestamp")
        ]
        in_phase = [p.name for p in live if p.body.get("status", {}).get("phase") == self.phase]
        if len(in_phase) == self.count:
            return self._pass(f"{len(in_phase)} {self.phase}")
        others = [
            f"{p.name} ({p.body.get('status', {}).get('phase')})"
            for p in live
            if p.name not in in_phase
        ]
        found = f"{len(in_phase)} {self.phase}" + (f": {', '.join(in_phase)}" if in_phase else "")
        if others:
            found += f"; other pods: {', '.join(others)}"
        return self._fail(f"{self.count} {self._what()}", found)


_CEL = celpy.Environment()


@functools.lru_cache(maxsize=512)
def _cel_program(expression: str) -> Any:
    # Compiled once per expression: rendering a check for a learner re-creates
    # the dataclass, and lark's parse is the costly part.
    return _CEL.program(_CEL.compile(expression))


@dataclass(frozen=True)
class Cel(_ObjectCheck):
    kind: ClassVar[str] = "cel"
    expression: str
    program: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            program = _cel_program(self.expression)
        except Exception as exc:  # celpy raises several unrelated types
            raise CheckSpecError("expression", f"CEL does not compile: {exc}") from exc
        object.__setattr__(self, "program", program)

    def describe(self) -> str:
        return f"{self.expression} holds for {self.object.describe()}"

    def judge(self, objects: list[KubeObject]) -> Outcome:
        expected = f"`{self.expression}` to hold for {self.object.describe()}"
        if not objects:
            return self._fail(expected, f"no {self.object.describe()}")
        for obj in objects:
            try:
                result = self.program.evaluate({"object": celpy.json_to_cel(obj.body)})
            except celpy.CELEvalError as exc:
                return self._error(
                    f"the CEL expression failed on {obj.kind} {obj.name}: "
                    f"{exc.args[0] if exc.args else exc}"
                )
            if not isinstance(result, celpy.celtypes.BoolType):
                return self._error(f"the CEL expression returned {result!r}, not a boolean")
            if not result:
                return self._fail(expected, f"false for {obj.kind} {obj.name}")
        return self._pass(", ".join(o.name for o in objects))


@dataclass(frozen=True)
class OutputMatches(Check):
    kind: ClassVar[str] = "output"
    # One regex, or a list of alternatives (the forms kubectl can print a fact in):
    # any one matching is a match.
    pattern: str | tuple[str, ...]
    stream: str = "any"
    negate: bool = False

    def __post_init__(self) -> None:
        if self.stream not in ("stdout", "stderr", "any"):
            raise CheckSpecError("stream", "`stream` must be stdout, stderr or any")
        if not self.patterns:
            raise CheckSpecError("pattern", "`pattern` needs at least one regex")
        for pattern in self.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise CheckSpecError(
                    "pattern", f"`pattern` {pattern!r} is not a valid regex: {exc}"
                ) from exc

    @property
    def patterns(self) -> tuple[str, ...]:
        return (self.pattern,) if isinstance(self.pattern, str) else self.pattern

    def templated(self) -> list[str]:
        return [*self.patterns, *super().templated()]

    def render(self, namespaces: Mapping[str, str]) -> Self:
        rendered = tuple(render(pattern, namespaces) for pattern in self.patterns)
        pattern = rendered[0] if isinstance(self.pattern, str) else rendered
        return dataclasses.replace(super().render(namespaces), pattern=pattern)

    def describe(self) -> str:
        where = "the output" if self.stream == "any" else self.stream
        verb = "does not match" if self.negate else "matches"
        if len(self.patterns) == 1:
            return f"{where} {verb} /{self.patterns[0]}/"
        return f"{where} {verb} one of " + ", ".join(f"/{p}/" for p in self.patterns)

    def _search(self, text: str) -> re.Match[str] | None:
        for pattern in self.patterns:
            if found := re.search(pattern, text, re.MULTILINE):
                return found
        return None

    def evaluate(self, ctx: CheckContext) -> Outcome:
        """Passes when any run counted for the step printed what is expected (or, with
        `negate`, printed something without it): a later run never takes it back."""
        if not ctx.outputs:
            return self._fail(self.describe(), "no command has run in this step yet")
        texts = [self._text(output) for output in ctx.outputs]
        matches = [self._search(text) for text in texts]
        for found in matches:
            if bool(found) != self.negate:
                return self._pass(found.group(0) if found else "")
        if self.negate:
            found = matches[-1]
            assert found is not None
            return self._fail(self.describe(), f"it contains {found.group(0)!r}")
        tail = texts[-1].strip().splitlines()[-3:]
        ending = " / ".join(tail) or "(empty)"
        return self._fail(self.describe(), f"no match; the last output ends with: {ending}")

    def _text(self, output: RunOutput) -> str:
        if self.stream == "any":
            return f"{output.stdout}\n{output.stderr}"
        return output.stdout if self.stream == "stdout" else output.stderr


CHECK_KINDS: dict[str, type[Check]] = {
    cls.kind: cls
    for cls in (
        Exists,
        Absent,
        Label,
        Annotation,
        FieldValue,
        Condition,
        PodCount,
        Cel,
        OutputMatches,
    )
}


def parse_check(raw: Any) -> Check:
    """Build a check from its YAML mapping; CheckSpecError names the bad key."""
    if not isinstance(raw, Mapping):
        raise CheckSpecError(None, "a check must be a mapping with a `kind`")
    kind = raw.get("kind")
    if kind not in CHECK_KINDS:
        raise CheckSpecError(
            "kind", f"unknown check kind {kind!r}; known kinds: {', '.join(sorted(CHECK_KINDS))}"
        )
    cls = CHECK_KINDS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "program"}
    unknown = set(raw) - set(fields) - {"kind"}
    if unknown:
        raise CheckSpecError(
            sorted(unknown)[0], f"{kind} check has unknown keys: {', '.join(sorted(unknown))}"
        )
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in raw:
            no_default = (
                spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise CheckSpecError(None, f"{kind} check needs `{name}`")
            continue
        values[name] = _coerce(kind, name, raw[name])
    try:
        return cls(**values)
    except ValueError as exc:
        if isinstance(exc, CheckSpecError):
            raise
        raise CheckSpecError(None, f"{kind} check: {exc}") from exc


_COERCE: dict[str, Callable[[Any], Any]] = {
    "object": ObjectRef.parse,
    "count": lambda v: _typed(v, int, "an integer"),
    "wait": lambda v: _bounded_wait(v),
    "negate": lambda v: _typed(v, bool, "true or false"),
    "pattern": lambda v: _patterns(v),
}


def _coerce(kind: str, name: str, value: Any) -> Any:
    if name in _COERCE:
        return _COERCE[name](value)
    if name in ("equals", "contains") and kind == "field":
        return value
    if not isinstance(value, str):
        raise CheckSpecError(name, f"`{name}` must be a string")
    return value


def _patterns(value: Any) -> str | tuple[str, ...]:
    """One regex, or a non-empty list of them."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise CheckSpecError("pattern", "`pattern` must be a regex or a list of regexes")


def _typed(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CheckSpecError(None, f"expected {what}, got {value!r}")
    return value


def _bounded_wait(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_WAIT:
        raise CheckSpecError("wait", f"`wait` must be a number of seconds from 0 to {MAX_WAIT:.0f}")
    return float(value)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _contains(found: Any, value: Any) -> bool:
    if isinstance(found, str):
        return str(value) in found
    if isinstance(found, list | dict):
        return value in found
    return False
