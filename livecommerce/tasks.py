from celery import shared_task

from livecommerce.idempotency import purge_expired


@shared_task(name="livecommerce.tasks.purge_idempotency_records")
def purge_idempotency_records() -> int:
    """Forget idempotency records past their 24 hours."""
    return purge_expired()
