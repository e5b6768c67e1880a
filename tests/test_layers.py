"""The rooms import one way: each from itself and the rooms below it, never up.

The order is ARCHITECTURE.md's: a room may use any room listed before it.
"""

from __future__ import annotations

import ast
from pathlib import Path

LABAPP = Path(__file__).resolve().parents[1] / "labapp"
ROOMS = [
    "lib",
    "shell",
    "clusters",
    "checks",
    "catalog",
    "live",
    "sandboxes",
    "runs",
    "learning",
    "instructor",
    "ops",
]
# Django-free rooms import no Django at all.
DJANGO_FREE = {"lib", "shell"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def code_files(room: str) -> list[Path]:
    return [
        path
        for path in (LABAPP / room).rglob("*.py")
        if "tests" not in path.parts and "migrations" not in path.parts
    ]


def test_no_room_imports_a_room_above_it():
    upward = []
    for rank, room in enumerate(ROOMS):
        above = set(ROOMS[rank + 1 :])
        for path in code_files(room):
            for module in imports_of(path):
                parts = module.split(".")
                if parts[0] == "labapp" and len(parts) > 1 and parts[1] in above:
                    upward.append(f"{path.relative_to(LABAPP.parent)} imports {module}")
    assert upward == []


def test_the_django_free_rooms_import_no_django():
    found = [
        f"{path.relative_to(LABAPP.parent)} imports {module}"
        for room in DJANGO_FREE
        for path in code_files(room)
        for module in imports_of(path)
        if module.split(".")[0] in ("django", "django_htmx", "celery")
    ]
    assert found == []


def test_every_room_is_placed():
    rooms = {p.name for p in LABAPP.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms - {"tests"} == set(ROOMS)
