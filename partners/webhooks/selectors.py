"""Reads for webhooks and events, scoped to the caller and joined for fixed-size queries."""

from django.db.models import Prefetch, QuerySet

from partners.models import Event
from partners.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list(*, caller) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.visible_to(caller)


def webhook_delivery_list(
    *, caller, endpoint: WebhookEndpoint | None = None
) -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.visible_to(caller)
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    return deliveries.select_related("event").prefetch_related(
        Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("created", "id"))
    )


def event_list(*, caller) -> QuerySet[Event]:
    """The events the caller may see: its own (a recipient of), or every event for staff."""
    return Event.objects.visible_to(caller).defer("body")
