"""What a check found: pass, fail (expected vs found), or error (could not check)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    # The check itself could not run. Never shown as the learner's fault.
    ERROR = "error"


@dataclass(frozen=True)
class Outcome:
    status: Status
    title: str
    expected: str = ""
    found: str = ""
    detail: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def message(self) -> str:
        if self.status is Status.PASS:
            return f"ok: {self.title}"
        if self.status is Status.FAIL:
            return f"expected {self.expected}; found: {self.found}"
        return f"could not check ({self.title}): {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(**{**data, "status": Status(data["status"])})
