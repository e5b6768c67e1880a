"""Template helpers for lab modules: `{% load catalog_tags %}{% lab_modules as modules %}`."""

from __future__ import annotations

import re

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from labapp.catalog.modules import all_modules
from labapp.catalog.spec import ModuleSpec

register = template.Library()


@register.simple_tag
def lab_modules() -> tuple[ModuleSpec, ...]:
    """The deployment's modules, in the order modules.yaml lists them."""
    return all_modules()


@register.filter
def in_any_module(lab_id: str, modules: tuple[ModuleSpec, ...]) -> bool:
    return any(lab_id in module.lab_ids for module in modules)


@register.filter
def inline_code(text: str) -> SafeString:
    """Lab-authored plain text (a mistake's message or title): escaped, with `code`
    shown as code."""
    escaped = str(conditional_escape(text))
    return mark_safe(_BACKTICKS.sub(r"<code>\1</code>", escaped))


_BACKTICKS = re.compile(r"`([^`]+)`")
