"""`manage.py beat_status`: beat's health check. Exit 1 when its heartbeat is stale."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from labapp.ops.beat import heartbeat_age


class Command(BaseCommand):
    help = "Say how long ago celery beat last ticked; fail when it is too long or never."
    # A health check, run every few seconds: no system checks (labs validation).
    requires_system_checks = ()

    def handle(self, *args: object, **options: object) -> None:
        age = heartbeat_age(settings.BEAT_HEARTBEAT_FILE)
        limit = settings.BEAT_HEARTBEAT_MAX_AGE
        if age is None:
            raise CommandError(
                f"beat has not ticked: no heartbeat at {settings.BEAT_HEARTBEAT_FILE}"
            )
        if age > limit:
            raise CommandError(f"beat last ticked {age:.0f}s ago (more than {limit}s)")
        self.stdout.write(f"beat ticked {age:.0f}s ago")
