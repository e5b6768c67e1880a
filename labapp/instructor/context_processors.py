from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest

from labapp.instructor.roles import user_is_instructor


def roles(request: HttpRequest) -> dict[str, Callable[[], bool]]:
    """`is_instructor` for templates (the navigation's Teach link). A callable: the
    template asks only when it renders the navigation."""
    user = getattr(request, "user", None)
    if user is None:
        return {"is_instructor": lambda: False}
    return {"is_instructor": functools.partial(user_is_instructor, user)}
