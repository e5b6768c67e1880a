"""The request chain under ASGI: one thread for every middleware, not a hop each.

Django runs a middleware in the mode of the handler below it when the middleware can
do both. Under uvicorn the view handler is async, so Django's own middleware (sessions,
CSRF, auth, messages and the rest) ran async, and each one then called its sync
`process_request` and `process_response` through `sync_to_async`: a thread hop and back
for every step, about a dozen per request. With this sync-only middleware innermost,
every middleware above it runs sync in the request's thread; the async handler below is
entered once. bench/web_cost.py measures what it saves per request.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase


class SyncRequestChain:
    """Does nothing to the request: being sync-only, innermost, is its whole job."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)
