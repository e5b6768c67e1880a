"""A workshop's broadcast channel: the instructor writes, every learner's page listens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.template.loader import render_to_string

from labapp.live.sse import relay
from labapp.live.streams import publish, workshop_events_key


def broadcast_publish(*, workshop_id: int, kind: str, payload: dict[str, Any]) -> None:
    publish(workshop_events_key(workshop_id), kind, payload, maxlen=100)


def render_broadcast(kind: str, payload: dict[str, Any]) -> str:
    return render_to_string("learning/_broadcast.html", payload)


def workshop_events(workshop_id: int, *, last_event_id: str | None) -> AsyncIterator[str]:
    """Instructor broadcasts for one workshop, for as long as the page is open."""
    return relay(
        [workshop_events_key(workshop_id)], render=render_broadcast, last_event_id=last_event_id
    )
