"""Lab text for one learner: placeholders filled, Markdown rendered, HTML sanitised.

Labs do not change while a process runs, so a step's text, commands, hints,
solution and checks are rendered once per lab and per namespace mapping
(`rendered_steps`), not once per page view: the lab page, its refresh after
each tick and every step action read the same cached rendering.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

from labapp.catalog.spec import LabSpec
from labapp.checks.base import Check
from labapp.lib.placeholders import render

_EXTENSIONS = ["fenced_code", "tables", "sane_lists"]
_TAGS = nh3.ALLOWED_TAGS | {"pre", "code", "table", "thead", "tbody", "tr", "th", "td"}
# Lab and namespace mappings kept per process: a classroom's learners times its labs.
RENDERED_LABS_KEPT = 1024


def render_markdown(text: str, namespaces: Mapping[str, str]) -> SafeString:
    html = markdown.markdown(render(text, namespaces), extensions=_EXTENSIONS)
    # Lab authors are trusted, but their text still passes the sanitiser.
    return mark_safe(nh3.clean(html, tags=_TAGS))


@dataclass(frozen=True)
class RenderedStep:
    """A step as one learner reads it; what they have revealed is chosen later."""

    text: SafeString
    commands: tuple[tuple[str, bool], ...]  # (command, real nodes only)
    hints: tuple[str, ...]
    solution: str
    checks: tuple[Check, ...]  # with the learner's names, for their titles


@dataclass(frozen=True)
class _RenderedLab:
    lab: LabSpec  # the spec it was rendered from: a reloaded registry has new ones
    steps: dict[str, RenderedStep]


def rendered_steps(lab: LabSpec, namespaces: Mapping[str, str]) -> dict[str, RenderedStep]:
    """Each step of `lab` (by id) rendered with these namespaces, once per process."""
    key = (lab.id, tuple(sorted(namespaces.items())))
    with _lock:
        found = _cache.get(key)
        if found is not None and found.lab is not lab:
            _cache.clear()  # the registry reloaded: everything kept is stale
            found = None
        if found is not None:
            _cache.move_to_end(key)
            return found.steps
    steps = _render_steps(lab, dict(namespaces))
    with _lock:
        _cache[key] = _RenderedLab(lab, steps)
        while len(_cache) > RENDERED_LABS_KEPT:
            _cache.popitem(last=False)
    return steps


def forget_rendered() -> None:
    with _lock:
        _cache.clear()


_lock = threading.Lock()
_cache: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], _RenderedLab] = OrderedDict()


def _render_steps(lab: LabSpec, namespaces: dict[str, str]) -> dict[str, RenderedStep]:
    return {
        step.id: RenderedStep(
            text=render_markdown(step.text, namespaces),
            commands=tuple((render(c.run, namespaces), c.real_nodes_only) for c in step.commands),
            hints=tuple(render(hint, namespaces) for hint in step.hints),
            solution=render(step.solution, namespaces),
            checks=tuple(check.render(namespaces) for check in step.checks),
        )
        for step in lab.steps
    }
