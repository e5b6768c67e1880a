"""Who may teach: members of the "instructors" group (made by a migration), and staff.

Grant the role with `manage.py instructor grant USERNAME` (see that command), or in
the admin site by adding the user to the group.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

INSTRUCTORS_GROUP = "instructors"


def user_is_instructor(user: Any) -> bool:
    """Remembered on the user object, so one request asks the database once."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    known = getattr(user, "_labapp_is_instructor", None)
    if known is None:
        known = user.groups.filter(name=INSTRUCTORS_GROUP).exists()
        user._labapp_is_instructor = known
    return known


def instructor_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous visitors go to sign in; signed-in non-instructors get 403."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not user_is_instructor(request.user):
            raise PermissionDenied("teaching needs the instructor role")
        return view(request, *args, **kwargs)

    return wrapped
