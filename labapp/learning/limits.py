"""Rate limits on what a learner, or an anonymous visitor, can make the server do.

django-ratelimit counts (fixed windows in the shared cache, settings.CACHES); this
module chooses the keys and says no. Each action is counted per signed-in user
(tight) and per client address (generous: a classroom may share one NAT address).
The address is counted only once the user's own limit has let the request through,
so one learner hammering a button cannot use up the whole classroom's allowance.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage  # type: ignore[import-untyped]
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# What the learner did too often, as the message names it.
ACTIONS = {
    "begin": "lab starts",
    "join": "attempts to join a workshop",
    "run": "commands",
    "reset": "resets",
    "reveal": "hint and solution requests",
    "check": "checks",
}


@dataclass(frozen=True)
class Refusal:
    action: str
    scope: str  # "user" or "ip"
    limit: int
    period_seconds: int
    retry_after: int

    @property
    def message(self) -> str:
        what = ACTIONS[self.action]
        rate = f"{self.limit} per {_period(self.period_seconds)}"
        wait = _wait(max(self.retry_after, 1))
        if self.scope == "user":
            return f"You have made too many {what} ({rate}). Please wait {wait}, then try again."
        return (
            f"Too many {what} are coming from your network ({rate} for everyone sharing "
            f"its address). Please wait {wait}, then try again."
        )


def refusal_for(request: HttpRequest, *, action: str) -> Refusal | None:
    """Count this request against `action`'s limits; a Refusal when one is exceeded."""
    rates = settings.RATELIMITS[action]
    scopes = ["user", "ip"] if request.user.is_authenticated else ["ip"]
    for scope in scopes:
        rate = rates[scope]
        try:
            usage = get_usage(
                request, group=f"{action}:{scope}", key=scope, rate=rate, increment=True
            )
        except (RedisError, OSError) as exc:
            # Fail open: a cache outage must not lock a classroom out.
            log.warning("rate limit %s not counted: %s", action, type(exc).__name__)
            return None
        if usage is not None and usage["should_limit"]:
            return Refusal(action, scope, usage["limit"], _period_seconds(rate), usage["time_left"])
    return None


def refused_response(
    request: HttpRequest, refusal: Refusal, *, htmx_target: str | None = "#notices"
) -> HttpResponse:
    """429 with the message: a fragment for htmx (swapped into `htmx_target`, or into
    the request's own target when None), a page otherwise."""
    context = {"message": refusal.message, "refusal": refusal}
    if getattr(request, "htmx", False):
        response = render(request, "learning/rate_limited.html#message", context, status=429)
        if htmx_target:
            response["HX-Retarget"] = htmx_target
            response["HX-Reswap"] = "innerHTML"
    else:
        response = render(request, "learning/rate_limited.html", context, status=429)
    response["Retry-After"] = str(max(refusal.retry_after, 1))
    return response


def limited_response(
    request: HttpRequest, *, action: str, htmx_target: str | None = "#notices"
) -> HttpResponse | None:
    """The 429 to answer with, or None when the request is within its limits."""
    refusal = refusal_for(request, action=action)
    return refused_response(request, refusal, htmx_target=htmx_target) if refusal else None


def rate_limited(
    action: str, *, htmx_target: str | None = "#notices"
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Decorate a view: its POSTs count against `action` (GETs only show forms)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if request.method == "POST":
                refused = limited_response(request, action=action, htmx_target=htmx_target)
                if refused is not None:
                    return refused
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _period_seconds(rate: str) -> int:
    """300/10m -> 600 (the settings have checked the rate's form)."""
    per = rate.split("/", 1)[1]
    return int(per[:-1] or 1) * _SECONDS[per[-1]]


def _period(seconds: int) -> str:
    """600 -> "10 minutes", 3600 -> "hour"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"


def _wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    return f"{round(seconds / 60)} minutes"
