"""Placeholders in lab text, commands and checks: `{{ ns.assets }}`.

Labs name logical namespaces; each learner gets physical ones. Only this
one placeholder form exists, so a typo is an error, never silent text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"\{\{\s*(?P<expr>[^{}]*?)\s*\}\}")
NAMESPACE_REF = re.compile(r"^ns\.(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")


@dataclass(frozen=True)
class PlaceholderProblem:
    offset: int
    reason: str


def placeholder_problems(text: str, namespaces: set[str]) -> Iterator[PlaceholderProblem]:
    for match in PLACEHOLDER.finditer(text):
        expr = match.group("expr")
        ref = NAMESPACE_REF.match(expr)
        if not ref:
            yield PlaceholderProblem(
                match.start(),
                f"unknown placeholder {{{{ {expr} }}}}; the only form is {{{{ ns.NAME }}}}",
            )
        elif ref.group("name") not in namespaces:
            known = ", ".join(sorted(namespaces)) or "none"
            yield PlaceholderProblem(
                match.start(),
                f"{{{{ {expr} }}}} names an unknown namespace "
                f"{ref.group('name')!r} (declared: {known})",
            )


def render(text: str, namespaces: Mapping[str, str]) -> str:
    """Replace every `{{ ns.X }}` with the learner's physical name for X."""

    def substitute(match: re.Match[str]) -> str:
        ref = NAMESPACE_REF.match(match.group("expr"))
        if not ref or ref.group("name") not in namespaces:
            raise KeyError(f"cannot render {match.group(0)}")
        return namespaces[ref.group("name")]

    return PLACEHOLDER.sub(substitute, text)


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
