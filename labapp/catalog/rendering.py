"""Lab text for one learner: placeholders filled, Markdown rendered, HTML sanitised."""

from __future__ import annotations

from collections.abc import Mapping

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

from labapp.lib.placeholders import render

_EXTENSIONS = ["fenced_code", "tables", "sane_lists"]
_TAGS = nh3.ALLOWED_TAGS | {"pre", "code", "table", "thead", "tbody", "tr", "th", "td"}


def render_markdown(text: str, namespaces: Mapping[str, str]) -> SafeString:
    html = markdown.markdown(render(text, namespaces), extensions=_EXTENSIONS)
    # Lab authors are trusted, but their text still passes the sanitiser.
    return mark_safe(nh3.clean(html, tags=_TAGS))
