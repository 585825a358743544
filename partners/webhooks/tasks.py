"""Celery tasks of webhooks, all on the ``webhooks`` queue (see CELERY_TASK_ROUTES).

Their names (``partners.tasks.*``) are those beat and queued messages use, kept from when the
tasks lived in ``partners/tasks.py``. They take ids or nothing, re-read the database and are
safe to run twice.
"""

from celery import shared_task

from livecommerce.rows import prepared_statements
from partners.webhooks import queueing, services


# Time limits (enforced by the prefork pool) well above one send's own timeouts, so a worker
# stuck in a send is replaced; its row lock goes with its connection and the sweeper resends.
@shared_task(
    name="partners.tasks.deliver_webhook",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def deliver_webhook(delivery_id: str) -> str:
    """Send one webhook delivery if it is pending and due (a no-op otherwise).

    No longer queued (``deliver_webhooks`` is); kept for the messages already in the queue."""
    return services.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(
    name="partners.tasks.deliver_webhooks",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def deliver_webhooks(delivery_ids: list[str]) -> dict[str, str]:
    """Send a batch of one endpoint's deliveries, each if it is pending and due, in order (the
    same few statements every time: prepared, see ``livecommerce.rows``)."""
    with prepared_statements():
        return services.webhook_deliveries_send(delivery_ids=delivery_ids)


# Acknowledged when it starts (a lost drain loses nothing: the deliveries are rows, the sweeper
# queues them), so no message of it is outstanding while it waits for the batch to fill.
@shared_task(name="partners.tasks.drain_webhook_queue", acks_late=False, ignore_result=True)
def drain_webhook_queue() -> int:
    """Queue the send task for the deliveries commits left in the Redis list (see
    ``queueing``), in batches of an endpoint's; how many it took."""
    return queueing.drain_pending()


@shared_task(name="partners.tasks.sweep_webhook_deliveries", acks_late=True, ignore_result=True)
def sweep_webhook_deliveries() -> int:
    """Queue deliveries that are due and that no task has taken (beat runs it every 30 s)."""
    return services.webhook_deliveries_sweep()
