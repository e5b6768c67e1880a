from celery import shared_task

from labapp.runs import services


@shared_task
def reap_runs() -> None:
    services.runs_reap()
