"""Celery, as its Django docs lay it out: settings under the CELERY_ namespace,
tasks discovered in each app's tasks.py.

With JSON logs (LABAPP_LOG_FORMAT=json, the default when DJANGO_DEBUG is off) the
worker and beat log through Django's LOGGING, one JSON object per line, instead of
Celery's own format; with text logs Celery keeps its own (bench/tracking.py reads it).
"""

import logging.config
import os
import threading
from typing import Any

from celery import Celery
from celery.signals import (
    celeryd_after_setup,
    celeryd_init,
    setup_logging,
    worker_init,
    worker_ready,
    worker_shutting_down,
)

from labapp.environment import env_log_format

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labapp.settings")

app = Celery("labapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

PROVISIONING_QUEUE = "provisioning"


@worker_init.connect
def lower_priority_of_provisioning(sender: Any = None, **kwargs: Any) -> None:
    """A worker that consumes only the provisioning queue runs at a lower CPU
    priority (LABAPP_PROVISIONING_NICE, default 10) than the ones that run
    learners' clicks: its pool processes and every kubectl they start inherit it.
    Runs before the pool forks."""
    from django.conf import settings

    queues = set(sender.app.amqp.queues.consume_from or {}) if sender is not None else set()
    if queues == {PROVISIONING_QUEUE} and settings.PROVISIONING_NICE > 0:
        os.nice(settings.PROVISIONING_NICE)


def use_django_logging(**kwargs: Any) -> None:
    """Celery's setup_logging signal: with a receiver, Celery configures no logging of
    its own (nor hijacks the root logger), in the worker, its pool processes and beat;
    Django's LOGGING applies, and LABAPP_LOG_LEVEL sets the level (not `-l`)."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    # Python warnings (Celery's "running as root", ...) as log lines too, as Django does.
    logging.captureWarnings(True)


def before_worker_start(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    """Logging is set up before Celery's first warnings (running as root, ...), and the
    start-up banner, printed rather than logged, is left out: its facts are logged as
    one line once the worker is set up. Beat's banner: `celery --quiet beat`."""
    use_django_logging()
    if instance is not None:
        instance.quiet = True


def quiet_shutdown(sender: Any = None, **kwargs: Any) -> None:
    """On SIGTERM Celery prints "worker: Warm shutdown (MainProcess)": its handler is
    installed again without that line (log_shutdown logs it instead)."""
    # Not in celery-types' stubs; celery.apps.worker defines it (celery 5.7).
    from celery.apps.worker import install_worker_term_handler  # type: ignore[attr-defined]

    worker = getattr(sender, "controller", None)
    if worker is not None and threading.current_thread() is threading.main_thread():
        install_worker_term_handler(worker, verbose=False)


def log_shutdown(sender: Any = None, sig: Any = None, how: Any = None, **kwargs: Any) -> None:
    logging.getLogger("celery.apps.worker").info(
        "worker %s: %s shutdown on %s", sender, str(how).lower(), sig, extra={"node": str(sender)}
    )


def log_worker_start(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    queues = sorted(instance.app.amqp.queues.consume_from or {}) if instance is not None else []
    logging.getLogger("celery.apps.worker").info(
        "worker %s starting",
        sender,
        extra={
            "node": str(sender),
            "queues": queues,
            "concurrency": getattr(instance, "concurrency", None),
        },
    )


if env_log_format() == "json":
    setup_logging.connect(use_django_logging, weak=False)
    celeryd_init.connect(before_worker_start, weak=False)
    celeryd_after_setup.connect(log_worker_start, weak=False)
    worker_ready.connect(quiet_shutdown, weak=False)
    worker_shutting_down.connect(log_shutdown, weak=False)
