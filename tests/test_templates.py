"""Django's `{# … #}` comments end at the line's end: a multi-line one is printed on the
page as text. Every template must use `{% comment %}` for those."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def test_no_template_has_a_comment_that_would_print():
    printed = []
    for path in TEMPLATES.rglob("*.html"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for opened in re.finditer(r"\{#", line):
                if "#}" not in line[opened.end() :]:
                    printed.append(f"{path.relative_to(TEMPLATES)}:{number}")
    assert printed == []
