"""Typed request classes for views (DESIGN.md, "Typed code").

Annotate a view's `request` with these instead of `HttpRequest`, so mypy knows
what the middleware adds. They are annotations only: Django still passes its own
request object.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """Every request: HtmxMiddleware sets `request.htmx`."""

    htmx: HtmxDetails


class AuthenticatedHttpRequest(HtmxHttpRequest):
    """Behind `@login_required` (or `staff_required`): `request.user` is a real user."""

    user: User
