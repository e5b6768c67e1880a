from celery import shared_task
from celery.contrib.django.task import DjangoTask

from labapp.learning import attempts


# base=DjangoTask: what Celery gives a Django app's tasks anyway; said here so that
# mypy (celery-types) knows about delay_on_commit.
@shared_task(base=DjangoTask, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_attempt(self: DjangoTask[[int], None], run_id: int) -> None:
    attempts.attempt_execute(run_id=run_id, worker=self.request.hostname or "")
