from celery import shared_task

from labapp.learning import attempts


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def run_attempt(self, run_id: int) -> None:
    attempts.attempt_execute(run_id=run_id, worker=self.request.hostname or "")
