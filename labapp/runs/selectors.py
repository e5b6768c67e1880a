from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db import connections
from django.http import Http404

from labapp.runs.models import CommandRun


def run_for_user(*, run_id: int, user: User | AnonymousUser) -> CommandRun:
    """The run, if it belongs to this user; 404 otherwise (never 403: no hint it exists)."""
    if not user.is_authenticated:
        raise Http404
    try:
        return CommandRun.objects.select_related("sandbox").get(id=run_id, sandbox__owner=user)
    except CommandRun.DoesNotExist:
        raise Http404 from None


def run_snapshot(*, run_id: int) -> CommandRun:
    """For the SSE view: read once, then let go of the connection, so a
    long-lived stream holds no database connection."""
    try:
        return CommandRun.objects.get(id=run_id)
    finally:
        connections.close_all()
