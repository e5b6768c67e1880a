"""A step's check together with the mistakes that keep it failing.

A lab's `mistakes:` name the check that stays failing and a check (`when`) that
recognises the mistake. The loader wraps the named check in `Diagnosed`, so every
evaluation (the tracker, "Check again", rehearsal) tells the learner which mistake
it sees: the failing outcome carries the mistake's message in its `detail`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from labapp.checks.base import Check, CheckContext
from labapp.checks.outcome import Outcome, Status


@dataclass(frozen=True)
class Diagnosis:
    mistake: str  # the mistake's title, for the instructor
    when: Check
    message: str  # what the learner reads


@dataclass(frozen=True)
class Diagnosed(Check):
    kind: ClassVar[str] = "diagnosed"
    inner: Check
    diagnoses: tuple[Diagnosis, ...]

    @classmethod
    def wrap(cls, inner: Check, diagnoses: tuple[Diagnosis, ...]) -> Check:
        if not diagnoses:
            return inner
        return cls(inner=inner, diagnoses=diagnoses, title=inner.title, wait=inner.wait)

    def describe(self) -> str:
        return self.inner.describe()

    def display_title(self) -> str:
        return self.inner.display_title()

    def templated(self) -> list[str]:
        return [*self.inner.templated(), *(t for d in self.diagnoses for t in d.when.templated())]

    def render(self, namespaces: Mapping[str, str]) -> Self:
        return dataclasses.replace(
            self,
            inner=self.inner.render(namespaces),
            diagnoses=tuple(
                dataclasses.replace(d, when=d.when.render(namespaces)) for d in self.diagnoses
            ),
        )

    def reads(self) -> set[tuple[str, str]]:
        kinds = set(self.inner.reads())
        for diagnosis in self.diagnoses:
            kinds |= diagnosis.when.reads()
        return kinds

    def evaluate(self, ctx: CheckContext) -> Outcome:
        outcome = self.inner.evaluate(ctx)
        if outcome.status is not Status.FAIL:
            return outcome
        for diagnosis in self.diagnoses:
            if diagnosis.when.evaluate(ctx).passed:
                return dataclasses.replace(outcome, detail=diagnosis.message)
        return outcome


def unwrap(check: Check) -> Check:
    return check.inner if isinstance(check, Diagnosed) else check
