from celery import shared_task
from celery.contrib.django.task import DjangoTask

from labapp.sandboxes import pools, services


# base=DjangoTask: what Celery gives a Django app's tasks anyway; said here so that
# mypy (celery-types) knows about delay_on_commit.
@shared_task(base=DjangoTask, acks_late=True)
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


# Warm pools (labapp/sandboxes/pools.py), on the provisioning queue like the rest.
@shared_task(base=DjangoTask, acks_late=True)
def provision_pooled_sandbox(sandbox_id: int) -> None:
    pools.pooled_sandbox_provision(sandbox_id=sandbox_id)


@shared_task(base=DjangoTask)
def fill_pools() -> None:
    pools.pools_fill()


@shared_task
def tend_pools() -> None:
    pools.pools_tend()
