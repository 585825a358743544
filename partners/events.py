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

from livecommerce.rows import insert_sql
from partners.choices import PartnerStatus
from partners.least_data import redact
from partners.models import Event, EventRecipient, Partner
from partners.webhooks.choices import WebhookEndpointStatus
from partners.webhooks.models import WebhookDelivery, WebhookEndpoint
from partners.webhooks.queueing import queue_new_deliveries

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
    to its partner's other endpoints). A batch of one of ``event_publish_many``.
    """
    [event] = event_publish_many(
        events=[(type, object_id, data, partner_ids)], skip_endpoint_ids=skip_endpoint_ids
    )
    return event


def _recipients_and_endpoints(
    partner_ids: set[str], skip_endpoint_ids: set[str]
) -> tuple[set[str], dict[str, list[WebhookEndpoint]]]:
    """The suspended partners among ``partner_ids`` and the enabled endpoints of the others, in
    one read (a LEFT JOIN of the partners and their enabled endpoints)."""
    if not partner_ids:
        return set(), {}
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        suspended = _suspended(partner_ids)
        endpoints: dict[str, list[WebhookEndpoint]] = {}
        for endpoint in WebhookEndpoint.objects.filter(
            partner_id__in=partner_ids - suspended, status=WebhookEndpointStatus.ENABLED
        ).only("id", "partner_id", "events"):
            if endpoint.pk not in skip_endpoint_ids:
                endpoints.setdefault(endpoint.partner_id, []).append(endpoint)
        return suspended, endpoints
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.id, p.status, w.id, w.events::text FROM partners_partner AS p"
            " LEFT JOIN partners_webhookendpoint AS w ON w.partner_id = p.id AND w.status = %s"
            " WHERE p.id = ANY(%s) ORDER BY p.id, w.id",
            [WebhookEndpointStatus.ENABLED, list(partner_ids)],
        )
        rows = cursor.fetchall()
    suspended = {pid for pid, status, _, _ in rows if status == PartnerStatus.SUSPENDED}
    endpoints = {}
    for pid, _, endpoint_id, events in rows:
        if endpoint_id is None or pid in suspended or endpoint_id in skip_endpoint_ids:
            continue
        endpoint = WebhookEndpoint(id=endpoint_id, partner_id=pid, events=json.loads(events))
        endpoint._state.adding = False
        endpoint._state.db = connection.alias
        endpoints.setdefault(pid, []).append(endpoint)
    return suspended, endpoints


def _grouped(rows: Sequence) -> dict:
    groups: dict = {}
    for row in rows:
        groups.setdefault(type(row), []).append(row)
    return groups


def stamp(*objs) -> None:
    """Set the ``auto_now`` / ``auto_now_add`` times of new model instances now, as an insert
    would: for rows handed to ``event_publish_many(rows=...)``, whose representation (built
    before the write) shows those times."""
    for obj in objs:
        for field in obj._meta.concrete_fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                setattr(obj, field.attname, field.pre_save(obj, True))


def _write(
    events: list[Event],
    recipients: list[EventRecipient],
    deliveries: list[WebhookDelivery],
    connection,
    rows: Sequence = (),
) -> None:
    """Insert ``rows`` (the change's own new rows), the events with their sequence numbers and
    bodies, their recipients and their deliveries: on PostgreSQL in ONE statement (each event's
    sequence is the object's last plus its rank among this batch's events of the object, its
    body is written with it; foreign keys are checked at the end of the statement)."""
    groups = _grouped(rows)
    heads = [
        json.dumps(
            {"id": e.id, "type": e.type, "created": _created_field.to_representation(e.created)},
            separators=(",", ":"),
        )[:-1]
        + ',"sequence":'
        for e in events
    ]
    tails = [
        ',"livemode":true,"data":' + json.dumps(e.data, separators=(",", ":")) + "}" for e in events
    ]
    if connection.vendor != "postgresql":
        last = dict(
            Event.objects.filter(object_id__in={e.object_id for e in events})
            .values("object_id")
            .annotate(m=Max("sequence"))
            .values_list("object_id", "m")
        )
        for event, head, tail in zip(events, heads, tails, strict=True):
            last[event.object_id] = (last.get(event.object_id) or 0) + 1
            event.sequence = last[event.object_id]
            event.body = f"{head}{event.sequence}{tail}"
        for model, objs in groups.items():
            model.objects.bulk_create(objs)
        Event.objects.bulk_create(events)
        EventRecipient.objects.bulk_create(recipients)
        WebhookDelivery.objects.bulk_create(deliveries)
        return
    sql = (
        "WITH v AS (SELECT u.*, j.value -> 0 AS data, j.value ->> 1 AS tail"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[])"
        " WITH ORDINALITY AS u(id, type, object_id, created, head, n)"
        " JOIN jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS j(value, n) USING (n)),"
        " last AS (SELECT object_id, MAX(sequence) AS m FROM partners_event"
        " WHERE object_id = ANY(%s::text[]) GROUP BY object_id),"
        " s AS (SELECT v.*, COALESCE(last.m, 0)"
        " + row_number() OVER (PARTITION BY v.object_id ORDER BY v.n) AS seq"
        " FROM v LEFT JOIN last ON last.object_id = v.object_id),"
        " e AS (INSERT INTO partners_event (id, type, object_id, sequence, data, created, body)"
        " SELECT id, type, object_id, seq, data, created, head || seq || tail"
        " FROM s ORDER BY n RETURNING id, sequence)"
    )
    # The data and the bodies' tails (JSON text, full of quotes) travel as ONE JSON document,
    # ``[[data, tail], ...]``: a text array would have every quote of every element escaped
    # for the array literal by psycopg in Python (most of this statement's time for a batch
    # of a thousand settlement events); ``->> 1`` gives each tail back exactly.
    params: list = [
        [e.id for e in events],
        [e.type for e in events],
        [e.object_id for e in events],
        [e.created for e in events],
        heads,
        json.dumps([[e.data, tail] for e, tail in zip(events, tails, strict=True)]),
        list({e.object_id for e in events}),
    ]
    inserts = [(model, objs, True) for model, objs in groups.items()]
    inserts += [(EventRecipient, recipients, False), (WebhookDelivery, deliveries, False)]
    for number, (model, objs, raw) in enumerate(inserts):
        if objs:
            insert, insert_params = insert_sql(model, objs, connection, raw=raw)
            sql += f", w{number} AS ({insert})"
            params += insert_params
    with connection.cursor() as cursor:
        # Only Django's own INSERTs are appended to the fixed text: no value enters the SQL.
        cursor.execute(sql + " SELECT id, sequence FROM e", params)  # noqa: S608
        sequences = dict(cursor.fetchall())
    for event, head, tail in zip(events, heads, tails, strict=True):
        event.sequence = sequences[event.id]
        event.body = f"{head}{event.sequence}{tail}"
    for obj in [*events, *rows]:
        obj._state.adding = False
        obj._state.db = connection.alias


def event_publish_many(
    *,
    events: Sequence[tuple[str, str, dict, Iterable[str | None]]],
    skip_endpoint_ids: Iterable[str] = (),
    rows: Sequence = (),
) -> list[Event]:
    """Publish events: ``(type, object_id, data, partner_ids)`` each; the one writer of events.

    The same outcome as publishing each in turn (sequence numbers per object in the order
    given, bodies, recipients, deliveries queued on commit), in two statements whatever their
    number on PostgreSQL: one read of the recipients (suspended or not) and their enabled
    endpoints, and one write of the events, with their sequence numbers and bodies, their
    recipients and their deliveries. The caller holds the locks on the objects, as for
    ``event_publish``.

    ``rows``: new model instances of the change itself (an order, its lines, its history), ids
    set and times ``stamp``-ed, written in that same statement (inserted whatever ``events``).
    """
    assert transaction.get_connection().in_atomic_block, "publish inside the change's transaction"
    if not events:
        for model, objs in _grouped(rows).items():
            model.objects.bulk_create(objs)
        return []
    events = [
        (type_, object_id, data, [pid for pid in partner_ids if pid])
        for type_, object_id, data, partner_ids in events
    ]
    connection = transaction.get_connection()
    suspended, endpoints = _recipients_and_endpoints(
        {pid for _, _, _, pids in events for pid in pids}, set(skip_endpoint_ids)
    )
    created: list[Event] = []
    recipients: list[EventRecipient] = []
    deliveries: list[WebhookDelivery] = []
    for type_, object_id, data, partner_ids in events:
        # ``created`` is set here (not by the insert) so that the body is written with the row.
        event = Event(type=type_, object_id=object_id, data=data, created=timezone.now())
        created.append(event)
        for pid in sorted(set(partner_ids) - suspended):
            recipients.append(EventRecipient(event=event, partner_id=pid))
            now = timezone.now()
            deliveries.extend(
                WebhookDelivery(
                    event=event, endpoint=endpoint, next_attempt_at=now, enqueued_at=now
                )
                for endpoint in endpoints.get(pid, [])
                if endpoint.subscribes_to(type_)
            )
    _write(created, recipients, deliveries, connection, rows)
    if deliveries:
        delivery_ids = [delivery.pk for delivery in deliveries]
        endpoint_ids = [delivery.endpoint_id for delivery in deliveries]
        # robust: a broker that is down must not turn the committed change into an error; the
        # sweeper queues these deliveries later. One send task per batch of an endpoint's.
        transaction.on_commit(
            lambda: queue_new_deliveries(delivery_ids, endpoint_ids=endpoint_ids), robust=True
        )
    return created
