from celery import shared_task

from labapp.sandboxes import services


@shared_task(acks_late=True)
def provision_sandbox(sandbox_id: int) -> None:
    services.sandbox_provision(sandbox_id=sandbox_id)


@shared_task
def redo_stalled_sandboxes() -> None:
    services.sandboxes_redo_stalled()


@shared_task
def expire_sandboxes() -> None:
    services.sandboxes_expire()


@shared_task
def retry_sandbox_teardowns() -> None:
    services.sandboxes_retry_teardown()
