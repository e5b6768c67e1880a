"""Celery beat's heartbeat, so its health check can fail.

Beat runs HeartbeatScheduler (CELERY_BEAT_SCHEDULER): on every tick, at least every
CELERY_BEAT_MAX_LOOP_INTERVAL seconds, it touches BEAT_HEARTBEAT_FILE.
`manage.py beat_status` fails once that file is older than BEAT_HEARTBEAT_MAX_AGE:
a beat that hangs (on a broker that does not answer, say) is seen, not only one
whose process died.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def heartbeat_age(path: Path, now: float | None = None) -> float | None:
    """Seconds since beat's last tick; None when it never ticked (no file)."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return max(0.0, (time.time() if now is None else now) - mtime)


class HeartbeatScheduler(PersistentScheduler):
    def tick(self, *args: Any, **kwargs: Any) -> float:
        from django.conf import settings

        touch(settings.BEAT_HEARTBEAT_FILE)
        delay: float = super().tick(*args, **kwargs)
        return delay
