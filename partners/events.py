"""Publishing events: the one function every state change calls to tell partners about it."""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Max

from partners.models import Event, EventRecipient


def event_publish(
    *, type: str, object_id: str, data: dict, partner_ids: Iterable[str | None]
) -> Event:
    """Record an event for the given partners inside the caller's transaction.

    The caller must hold a lock on the object (the order row, ...) so that two events of one
    object cannot take the same sequence number; the unique constraint refuses it anyway.
    """
    assert transaction.get_connection().in_atomic_block, "publish inside the change's transaction"
    last = Event.objects.filter(object_id=object_id).aggregate(m=Max("sequence"))["m"] or 0
    event = Event.objects.create(type=type, object_id=object_id, sequence=last + 1, data=data)
    recipients = sorted({pid for pid in partner_ids if pid})
    EventRecipient.objects.bulk_create(
        [EventRecipient(event=event, partner_id=pid) for pid in recipients]
    )
    return event
