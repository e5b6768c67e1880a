from celery import shared_task

from labapp.runner import services


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def run_command(self, run_id: int) -> None:
    services.run_execute(run_id=run_id, worker=self.request.hostname or "")


@shared_task
def reap_runs() -> None:
    services.runs_reap()
