"""The dashboard's live channel: the tracker says a learner's record moved."""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET

from labapp.instructor.roles import user_is_instructor
from labapp.instructor.selectors import workshop_for_instructor
from labapp.live.sse import relay, sse_response
from labapp.live.streams import dashboard_key


@require_GET
async def dashboard_events(request: HttpRequest, code: str) -> StreamingHttpResponse:
    user = await request.auser()
    if not user.is_authenticated:
        raise Http404("no such workshop")
    if not await sync_to_async(user_is_instructor)(user):
        raise PermissionDenied("teaching needs the instructor role")
    workshop = await sync_to_async(workshop_for_instructor)(user=user, code=code)
    return sse_response(
        relay(
            [dashboard_key(workshop.id)],
            render=_render,
            last_event_id=request.headers.get("Last-Event-ID"),
        )
    )


def _render(kind: str, payload: dict[str, Any]) -> str:
    return json.dumps(payload)  # the board fetches its fresh matrix
