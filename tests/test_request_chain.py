"""Under ASGI, the middleware chain runs in one thread: Django records each place it
has to adapt a handler between sync and async (at DEBUG, on `django.request`), and the
only one left must be at the innermost, sync-only SyncRequestChain."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.asgi import ASGIHandler

ADAPTED = "handler adapted for middleware"


def adaptations(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if ADAPTED in r.getMessage()]


def test_django_adapts_the_chain_once_at_its_innermost_middleware(settings, caplog):
    settings.DEBUG = True  # Django logs adaptations only then
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        ASGIHandler()  # loads the middleware in async mode, as uvicorn's does
    assert adaptations(caplog) == [
        "Asynchronous handler adapted for middleware labapp.middleware.SyncRequestChain."
    ]


def test_without_it_django_hops_between_modes(settings, caplog):
    """The contrast that makes the test above mean something: the same chain without
    the sync-only middleware is adapted at the sync-only WhiteNoise in its middle."""
    settings.DEBUG = True
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.startswith("labapp.")]
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        ASGIHandler()
    assert any("whitenoise" in line for line in adaptations(caplog))


def asgi_get(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    async def exchange() -> tuple[int, dict[bytes, bytes], bytes]:
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": b"",
            "headers": [(b"host", b"localhost")],
            "asgi": {"version": "3.0"},
        }
        communicator = ApplicationCommunicator(ASGIHandler(), scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(timeout=10)
        body = await communicator.receive_output(timeout=10)
        return start["status"], {k.lower(): v for k, v in start["headers"]}, body["body"]

    # In a thread of its own: the browser tests' Playwright keeps an event loop
    # running in this one, where asyncio.run and async_to_sync refuse to start.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, exchange()).result(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_pages_still_pass_through_every_middleware_under_asgi():
    status, _, body = asgi_get("/healthz")
    assert (status, body) == (200, b'{"status": "ok"}')
    # The login form needs the session, CSRF and auth middleware, all now sync.
    status, headers, body = asgi_get("/accounts/login/")
    assert status == 200
    assert b"csrfmiddlewaretoken" in body
    assert b"csrftoken=" in headers[b"set-cookie"]
    assert headers[b"x-frame-options"] == b"DENY"
