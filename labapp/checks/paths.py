"""Field paths such as `spec.template.spec.containers[0].securityContext.privileged`."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"""\.?(?P<key>[A-Za-z_$][\w$-]*)"""  # .name
    r"""|\[(?P<index>\d+)\]"""  # [0]
    r"""|\[(?P<q>['"])(?P<qkey>.*?)(?P=q)\]"""  # ["app.kubernetes.io/name"]
)
MISSING = object()


def parse_path(path: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match or match.end() == position:
            raise ValueError(f"cannot read field path {path!r} at character {position + 1}")
        if match.group("index") is not None:
            parts.append(int(match.group("index")))
        else:
            parts.append(match.group("key") or match.group("qkey"))
        position = match.end()
    if not parts:
        raise ValueError("empty field path")
    return tuple(parts)


def lookup(body: Any, parts: tuple[str | int, ...]) -> Any:
    """The value at `parts`, or MISSING when any step is absent."""
    current = body
    for part in parts:
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                return MISSING
            current = current[part]
        else:
            if not isinstance(current, dict) or part not in current:
                return MISSING
            current = current[part]
    return current
