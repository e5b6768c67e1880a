"""Template helpers for lab modules: `{% load catalog_tags %}{% lab_modules as modules %}`."""

from __future__ import annotations

from django import template

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
