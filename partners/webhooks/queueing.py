"""Handing deliveries to the send task after commit, or to the sweeper when the broker is away.

Publishing an event (``partners.events``) queues its deliveries here, and the send task
(``partners.webhooks.tasks``) sends them through ``services``, which publish events in turn; so
this module names the task instead of importing it, and the import graph has no cycle. The
partners app imports the tasks module when it is ready, so the task is registered in every
process, the web processes included (where, without a broker, it runs in-process).
"""

from time import monotonic

from celery import current_app

from partners.webhooks import conf
from partners.webhooks.choices import WebhookDeliveryStatus
from partners.webhooks.models import WebhookDelivery

# When the broker refuses a message, this process leaves queueing to the sweeper for a while:
# a broker that is down or hung then costs one request a timeout, not every request, and the
# deliveries, released to the sweeper, go out on its first round once the broker is back.
BROKER_PAUSE = 30.0  # seconds
_broker_failed_at: float | None = None
# Deliveries of one endpoint sent by one task: one transaction, one locked read, one INSERT of
# the attempts and one UPDATE of the deliveries for them all, over one kept connection.
BATCH_SIZE = 50
# The send task, by its registered name (``partners.webhooks.tasks.deliver_webhooks``).
DELIVER_WEBHOOKS = "partners.tasks.deliver_webhooks"


def queue_deliveries(
    delivery_ids: list[str],
    *,
    endpoint_ids: list[str] | None = None,
    countdown: float | None = None,
    sweeping: bool = False,
) -> None:
    """Queue the send task for the deliveries (called after commit): one task per batch of up
    to ``BATCH_SIZE`` deliveries of one endpoint (``endpoint_ids``: each delivery's endpoint,
    in the same order; without it the deliveries are taken as one endpoint's), in order.

    If the broker cannot take them (or failed moments ago), the deliveries are left to the
    sweeper (``enqueued_at`` cleared) and, for a failure now, the error is raised to the
    caller's robust on-commit hook, which logs it. The sweeper itself always tries.
    """
    global _broker_failed_at
    paused = _broker_failed_at is not None and monotonic() - _broker_failed_at < BROKER_PAUSE
    if paused and not sweeping:
        _leave_to_sweeper(delivery_ids)
        return
    batches = _batches(delivery_ids, endpoint_ids)
    send = current_app.tasks[DELIVER_WEBHOOKS]
    for done, batch in enumerate(batches):
        try:
            send.apply_async(args=[batch], countdown=countdown)
        except Exception:
            _broker_failed_at = monotonic()
            _leave_to_sweeper([pk for rest in batches[done:] for pk in rest])
            raise
    _broker_failed_at = None


def _batches(delivery_ids: list[str], endpoint_ids: list[str] | None) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for delivery_id, endpoint_id in zip(
        delivery_ids, endpoint_ids or [""] * len(delivery_ids), strict=True
    ):
        groups.setdefault(endpoint_id, []).append(delivery_id)
    return [
        ids[start : start + BATCH_SIZE]
        for ids in groups.values()
        for start in range(0, len(ids), BATCH_SIZE)
    ]


def _leave_to_sweeper(delivery_ids: list[str]) -> None:
    WebhookDelivery.objects.filter(
        pk__in=delivery_ids, status=WebhookDeliveryStatus.PENDING
    ).update(enqueued_at=None)


def countdown_allowed(delay: float) -> bool:
    # Eager mode (no broker) would run a "retry in 5 minutes" at once; leave it to the sweeper.
    return not current_app.conf.task_always_eager and delay <= conf.countdown_max()
