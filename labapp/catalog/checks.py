"""A Django system check: the deployment's labs are valid.

`manage.py check` (and every command that runs the checks at start: `migrate`, which
the web container runs first, the tracker) fails with each problem at its file:line,
rather than a lab page failing later in front of a learner.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from labapp.catalog.loader import validate_labs

TAG = "labs"


@register(TAG)
def labs_are_valid(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    _, problems = validate_labs(settings.LAB_STEPS_DIR)
    return [
        Error(
            str(problem),
            hint="`manage.py labs validate` lists the same problems",
            id="catalog.E001",
        )
        for problem in problems
    ]
