"""Publishing events: the one function every state change calls to tell partners about it.

An event is written in the caller's transaction together with the webhook deliveries it owes
(the outbox), and the sends are queued only once that transaction commits. If the process dies
between the commit and the queueing, the sweeper finds the deliveries and queues them.
"""

import json
from collections.abc import Iterable, Sequence

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from rest_framework import serializers

from partners.choices import PartnerStatus
from partners.models import Event, EventRecipient, Partner, WebhookDelivery, WebhookEndpoint
from partners.webhooks.choices import WebhookEndpointStatus

_created_field = serializers.DateTimeField()


def event_payload(event: Event) -> dict:
    """The event as partners see it, in webhooks and on ``GET /events``."""
    return {
        "id": event.id,
        "type": event.type,
        "created": _created_field.to_representation(event.created),
        "sequence": event.sequence,
        "livemode": True,  # false only in a test send (POST /webhook-endpoints/{id}/test)
        "data": event.data,
    }


def event_body(event: Event) -> str:
    """The exact JSON text a webhook carries (stored on the event at publication)."""
    return event.body or json.dumps(event_payload(event), separators=(",", ":"))


def event_body_redacted(event: Event, hidden: frozenset[str]) -> str:
    """The JSON text of the event with the ``hidden`` fields of its data set to null."""
    from partners.least_data import redact

    payload = json.loads(event_body(event))
    payload["data"] = redact(payload["data"], hidden)
    return json.dumps(payload, separators=(",", ":"))


def _suspended(partner_ids: set[str]) -> set[str]:
    if not partner_ids:
        return set()
    return set(
        Partner.objects.filter(pk__in=partner_ids, status=PartnerStatus.SUSPENDED).values_list(
            "pk", flat=True
        )
    )


def _active(partner_ids: Iterable[str | None]) -> list[str]:
    """The recipients that are not suspended: a suspended partner is told nothing (neither on
    ``GET /events`` nor by webhook) of what happens while it is suspended."""
    wanted = {pid for pid in partner_ids if pid}
    return sorted(wanted - _suspended(wanted))


def event_publish(
    *,
    type: str,
    object_id: str,
    data: dict,
    partner_ids: Iterable[str | None],
    skip_endpoint_ids: Iterable[str] = (),
) -> Event:
    """Record an event for the given partners inside the caller's transaction.

    The caller must hold a lock on the object (the order row, ...) so that two events of one
    object cannot take the same sequence number; the unique constraint refuses it anyway.
    Every enabled webhook endpoint of a recipient that subscribes to ``type`` (or to ``*``) gets
    a pending delivery in the same transaction; the sends are queued on commit.
    ``skip_endpoint_ids``: endpoints not to send it to (an endpoint's own recovery notice goes
    to its partner's other endpoints).
    """
    assert transaction.get_connection().in_atomic_block, "publish inside the change's transaction"
    last = Event.objects.filter(object_id=object_id).aggregate(m=Max("sequence"))["m"] or 0
    event = Event.objects.create(type=type, object_id=object_id, sequence=last + 1, data=data)
    # ``created`` is set by the database insert, so the body is written just after it.
    event.body = event_body(event)
    Event.objects.filter(pk=event.pk).update(body=event.body)
    recipients = _active(partner_ids)
    EventRecipient.objects.bulk_create(
        [EventRecipient(event=event, partner_id=pid) for pid in recipients]
    )
    endpoints = (
        WebhookEndpoint.objects.filter(
            partner_id__in=recipients, status=WebhookEndpointStatus.ENABLED
        )
        .exclude(pk__in=list(skip_endpoint_ids))
        .only("id", "events")
    )
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, enqueued_at=now)
            for endpoint in endpoints
            if endpoint.subscribes_to(type)
        ]
    )
    if deliveries:
        from partners.webhooks.services import queue_deliveries

        delivery_ids = [delivery.pk for delivery in deliveries]
        # robust: a broker that is down must not turn the committed change into an error; the
        # sweeper queues these deliveries later.
        transaction.on_commit(lambda: queue_deliveries(delivery_ids), robust=True)
    return event


def event_publish_many(
    *, events: Sequence[tuple[str, str, dict, Iterable[str | None]]]
) -> list[Event]:
    """``event_publish`` for many events at once: ``(type, object_id, data, partner_ids)`` each.

    The same outcome as calling ``event_publish`` for each in turn (sequence numbers, bodies,
    recipients, deliveries queued on commit), in a handful of statements whatever their number,
    for a service that writes hundreds of events in one transaction (a settlement run). The
    caller holds the locks on the objects, as for ``event_publish``.
    """
    assert transaction.get_connection().in_atomic_block, "publish inside the change's transaction"
    if not events:
        return []
    object_ids = {object_id for _, object_id, _, _ in events}
    last = dict(
        Event.objects.filter(object_id__in=object_ids)
        .values("object_id")
        .annotate(m=Max("sequence"))
        .values_list("object_id", "m")
    )
    rows = []
    for type_, object_id, data, _ in events:
        last[object_id] = (last.get(object_id) or 0) + 1
        rows.append(Event(type=type_, object_id=object_id, sequence=last[object_id], data=data))
    created = Event.objects.bulk_create(rows)
    for event in created:
        event.body = event_body(event)
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        # One UPDATE from two arrays: bulk_update's CASE over hundreds of rows is much slower.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE partners_event AS e SET body = v.body"
                " FROM unnest(%s::text[], %s::text[]) AS v(id, body) WHERE e.id = v.id",
                [[e.pk for e in created], [e.body for e in created]],
            )
    else:
        Event.objects.bulk_update(created, ["body"])
    suspended = _suspended({pid for _, _, _, pids in events for pid in pids if pid})
    recipients = [
        (event, sorted({pid for pid in partner_ids if pid} - suspended))
        for event, (_, _, _, partner_ids) in zip(created, events, strict=True)
    ]
    EventRecipient.objects.bulk_create(
        [EventRecipient(event=event, partner_id=pid) for event, pids in recipients for pid in pids]
    )
    endpoints: dict[str, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(
        partner_id__in={pid for _, pids in recipients for pid in pids},
        status=WebhookEndpointStatus.ENABLED,
    ).only("id", "partner_id", "events"):
        endpoints.setdefault(endpoint.partner_id, []).append(endpoint)
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, enqueued_at=now)
            for event, pids in recipients
            for pid in pids
            for endpoint in endpoints.get(pid, [])
            if endpoint.subscribes_to(event.type)
        ]
    )
    if deliveries:
        from partners.webhooks.services import queue_deliveries

        delivery_ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: queue_deliveries(delivery_ids), robust=True)
    return created
