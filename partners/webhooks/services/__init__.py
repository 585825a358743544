"""Writes for webhooks: endpoints, secret rotation, sending a delivery, retries and the sweeper.

Modules: ``endpoints`` (an endpoint's life, its health, test sends and replays) and
``deliveries`` (sending a batch of deliveries, a partner's retry, the sweeper). Handing
deliveries to the send task is ``partners.webhooks.queueing``, beside this package, since
publishing events (which the services do) queues through it.

Locks, in the only order they are taken: delivery rows (a batch of one endpoint's, taken in one
statement and held by the worker while it sends), then nothing else; an endpoint row (``FOR NO
KEY UPDATE``, so publishing events, which inserts deliveries referencing it, never waits), then
its pending delivery rows. A worker records the
outcome of a send and only afterwards, in a transaction of its own, updates the endpoint's
health, so the two orders never meet.
"""

from partners.webhooks.queueing import queue_deliveries
from partners.webhooks.services.deliveries import (
    next_retry_delay,
    webhook_deliveries_send,
    webhook_deliveries_sweep,
    webhook_delivery_attempt,
    webhook_delivery_retry,
)
from partners.webhooks.services.endpoints import (
    TestSend,
    webhook_endpoint_auto_disable,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_replay,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_test,
    webhook_endpoint_update,
)

__all__ = [
    "TestSend",
    "next_retry_delay",
    "queue_deliveries",
    "webhook_deliveries_send",
    "webhook_deliveries_sweep",
    "webhook_delivery_attempt",
    "webhook_delivery_retry",
    "webhook_endpoint_auto_disable",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_replay",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_test",
    "webhook_endpoint_update",
]
