"""Statuses of webhook endpoints and deliveries, and the event names endpoints subscribe to."""

from django.db import models


class WebhookEndpointStatus(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (sending or waiting for the next retry)"
    SUCCEEDED = "succeeded", "Succeeded (the endpoint answered 2xx)"
    FAILED = "failed", "Failed (retries exhausted, endpoint gone or disabled)"


ALL_EVENTS = "*"

ENDPOINT_DISABLED_EVENT = "webhook_endpoint.disabled"
ENDPOINT_RECOVERED_EVENT = "webhook_endpoint.recovered"

# The contract's event types, plus the service's own notices that an endpoint was disabled
# (failing for days, or 410 Gone) and that a failing endpoint answers again.
EVENT_TYPES: tuple[str, ...] = (
    "order.created",
    "order.paid",
    "order.accepted",
    "order.shipped",
    "order.delivered",
    "order.completed",
    "order.canceled",
    "order.refunded",
    "order.expired",
    "product.sold_out",
    "product.back_in_stock",
    "live_session.started",
    "live_session.ended",
    "settlement.created",
    "settlement.paid",
    "settlement.failed",
    ENDPOINT_DISABLED_EVENT,
    ENDPOINT_RECOVERED_EVENT,
)
