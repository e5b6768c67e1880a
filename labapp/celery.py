"""Celery, as its Django docs lay it out: settings under the CELERY_ namespace,
tasks discovered in each app's tasks.py."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

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
