"""Writes for webhook deliveries: one send of a due delivery, a partner's retry, the sweeper."""

import logging
import random
from datetime import datetime, timedelta
from time import monotonic

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from livecommerce.errors import AppError
from partners import least_data
from partners.choices import PartnerStatus
from partners.events import event_body, event_body_redacted
from partners.models import Partner
from partners.webhooks import conf, sending, signing
from partners.webhooks.choices import WebhookDeliveryStatus, WebhookEndpointStatus
from partners.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from partners.webhooks.queueing import BATCH_SIZE, countdown_allowed, queue_deliveries
from partners.webhooks.services.endpoints import record_endpoint_health
from partners.webhooks.url_policy import WebhookURLNotAllowed, check_webhook_url

logger = logging.getLogger(__name__)

PENDING = WebhookDeliveryStatus.PENDING
SUCCEEDED = WebhookDeliveryStatus.SUCCEEDED
FAILED = WebhookDeliveryStatus.FAILED
ENABLED = WebhookEndpointStatus.ENABLED

# A task may run a moment before ``next_attempt_at`` on a worker whose clock runs ahead.
DUE_TOLERANCE = timedelta(seconds=1)
SWEEP_BATCH = 1000
# A batch stops sending after this many seconds (the rest is queued again): it holds its rows'
# locks, which a suspension or an endpoint's disabling waits for, and must end well within the
# task's time limit whatever its endpoints answer.
BATCH_SECONDS = 10.0
# What an attempt changes on its delivery (one narrow UPDATE, not every column).
ATTEMPT_FIELDS = [
    "status",
    "attempt_count",
    "last_attempt_at",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "enqueued_at",
    "updated",
]


def next_retry_delay(*, attempt_count: int, result: sending.SendResult) -> float | None:
    """Seconds until the next attempt after ``attempt_count`` attempts, or None to give up.

    The schedule's delays, spread by the jitter so that endpoints coming back up are not hit
    by every retry at once; a ``Retry-After`` on 429/503 is used instead, capped.
    """
    schedule = conf.retry_schedule()
    if result.status_code == 410 or attempt_count > len(schedule):
        return None
    if result.retry_after is not None:
        return min(max(result.retry_after, 1.0), conf.retry_after_max())
    delay = schedule[attempt_count - 1]
    jitter = conf.retry_jitter()
    return max(delay * random.uniform(1 - jitter, 1 + jitter), 0.0)


def webhook_delivery_attempt(*, delivery_id: str) -> str:
    """Send a due delivery once and record the outcome; what happened, as a word.

    A batch of one of ``webhook_deliveries_send``: "busy_or_gone" when another worker holds
    the row (it is sending it right now) or it no longer exists.
    """
    return webhook_deliveries_send(delivery_ids=[delivery_id]).get(delivery_id, "busy_or_gone")


def webhook_deliveries_send(*, delivery_ids: list[str]) -> dict[str, str]:
    """Send each due delivery of ``delivery_ids`` once, in order, and record the outcomes; what
    happened to each (rows another worker holds, or gone, are left out). A short batch of one
    endpoint's also sends that endpoint's other due deliveries after them (``_taken_along``).

    Safe to run twice and concurrently: the rows are locked ``SKIP LOCKED`` for the whole batch
    (another worker holding one is sending it right now, so this one leaves it), and a
    delivery that is not pending or not yet due is left alone. If the worker dies mid-batch the
    transaction rolls back, the locks go with the connection, and the sweeper or the broker's
    redelivery sends the batch again (at least once). The endpoint's URL is checked again
    before each send, against DNS rebinding, and the send connects to the address that was
    checked. Whatever the batch's size it costs one locked read, one INSERT of the attempts,
    one UPDATE of the deliveries and then one health check per endpoint.

    While the rows are locked, suspending their partner or disabling their endpoint waits
    (both fail the pending rows), so neither can commit between the read and a send. Sends stop
    after ``BATCH_SECONDS``; the deliveries not sent yet are queued again after the commit.
    """
    with transaction.atomic():
        locked = {delivery.pk: delivery for delivery in _locked(pk__in=delivery_ids).order_by()}
        delivery_ids = list(dict.fromkeys(delivery_ids))  # sent in the order given
        for delivery in _taken_along(locked):
            locked[delivery.pk] = delivery
            delivery_ids.append(delivery.pk)
        outcomes: dict[str, str] = {}
        changed: list[WebhookDelivery] = []
        attempts: list[WebhookAttempt] = []
        sent: list[tuple[WebhookDelivery, sending.SendResult, datetime]] = []
        cut_off: list[WebhookDelivery] = []
        retries: list[tuple[str, float]] = []
        gone: set[str] = set()  # endpoints that answered 410 (disabled after the commit)
        started = monotonic()
        for delivery in (locked[pk] for pk in delivery_ids if pk in locked):
            now = timezone.now()
            if delivery.status != PENDING:
                outcomes[delivery.pk] = "already_" + delivery.status
                continue
            if delivery.next_attempt_at > now + DUE_TOLERANCE:
                outcomes[delivery.pk] = "not_due"
                continue
            if sent and monotonic() - started > BATCH_SECONDS:
                outcomes[delivery.pk] = "queued_again"
                continue
            if delivery.endpoint_id in gone:
                # left pending: disabling the endpoint after the commit fails it
                outcomes[delivery.pk] = "endpoint_disabled"
                continue
            reason = _cut_off(delivery.endpoint)
            if reason:
                # A suspended partner's payloads no longer go out, whatever queued them (a task
                # queued before the suspension, a retry, a replay, the sweeper).
                delivery.status = FAILED
                delivery.next_attempt_at = delivery.enqueued_at = None
                delivery.last_error = reason
                delivery.updated = now
                cut_off.append(delivery)
                outcomes[delivery.pk] = reason.replace(" ", "_")
                continue
            result = _attempt(delivery, now=now, attempts=attempts, retries=retries)
            changed.append(delivery)
            sent.append((delivery, result, now))
            if result.status_code == 410:
                gone.add(delivery.endpoint_id)
            outcomes[delivery.pk] = delivery.status
        if attempts:
            WebhookAttempt.objects.bulk_create(attempts)
        if changed or cut_off:
            _update_deliveries(changed + cut_off)
        for pk, countdown in retries:
            transaction.on_commit(
                lambda pk=pk, countdown=countdown: queue_deliveries([pk], countdown=countdown),
                robust=True,
            )
        again = [pk for pk, outcome in outcomes.items() if outcome == "queued_again"]
        if again:
            transaction.on_commit(lambda: queue_deliveries(again), robust=True)
    _record_health(sent)
    return outcomes


def _locked(**lookup):
    """Deliveries locked for sending (``SKIP LOCKED``: another worker is sending those it holds),
    with what a send needs."""
    return (
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("event", "endpoint", "endpoint__partner")
        # Only the event's stored body is sent: decoding its JSON data would be wasted.
        .defer("event__data")
        .filter(**lookup)
    )


def _taken_along(locked: dict[str, WebhookDelivery]) -> list[WebhookDelivery]:
    """A short batch of one endpoint's takes along the endpoint's other due deliveries, oldest
    due first, up to ``BATCH_SIZE`` in all.

    Changes that publish one event each (an order moving through its statuses) queue a task of
    one delivery each; at a few hundred a second the workers fell behind at one send, one
    transaction and one task per delivery (commit-to-delivery p99 of seconds in
    bench/bench_webhooks.py's paced phase). A task that finds a backlog sends it as one batch,
    and the tasks queued for what it sent find them sent and do nothing but one read.
    """
    endpoint_ids = {delivery.endpoint_id for delivery in locked.values()}
    room = BATCH_SIZE - len(locked)
    if len(endpoint_ids) != 1 or room <= 0:
        return []
    if not any(delivery.status == PENDING for delivery in locked.values()):
        return []  # a task run again, or whose deliveries another task took along: no send
    return list(
        _locked(
            endpoint_id=endpoint_ids.pop(),
            status=PENDING,
            next_attempt_at__lte=timezone.now() + DUE_TOLERANCE,
        )
        .exclude(pk__in=list(locked))
        .order_by("next_attempt_at")[:room]
    )


def _update_deliveries(deliveries: list[WebhookDelivery]) -> None:
    """Write the ``ATTEMPT_FIELDS`` of the deliveries in one UPDATE: on PostgreSQL from arrays
    of the new values (``bulk_update``'s ``CASE`` per field and row cost more CPU to build than
    the sends of the batch)."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        WebhookDelivery.objects.bulk_update(deliveries, ATTEMPT_FIELDS)
        return
    meta = WebhookDelivery._meta
    fields = [meta.pk] + [meta.get_field(name) for name in ATTEMPT_FIELDS]
    columns = [connection.ops.quote_name(field.column) for field in fields]
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in fields)
    assignments = ", ".join(f"{column} = v.{column}" for column in columns[1:])
    sql = (
        f"UPDATE {connection.ops.quote_name(meta.db_table)} AS d SET {assignments}"  # noqa: S608
        f" FROM unnest({arrays}) AS v({', '.join(columns)}) WHERE d.{columns[0]} = v.{columns[0]}"
    )
    params = [
        [field.get_db_prep_save(getattr(d, field.attname), connection) for d in deliveries]
        for field in fields
    ]
    with connection.cursor() as cursor:
        # Only the model's own table, columns and types enter the SQL text; values are bound.
        cursor.execute(sql, params)


def _cut_off(endpoint: WebhookEndpoint) -> str:
    """Why nothing may go to the endpoint now ("" if it may): disabled, or its partner
    suspended. The partner's row came with the delivery's read (not locked): a suspension
    committed before that read stops the send, and one started after it waits for the
    batch's locks on the pending rows it fails."""
    if endpoint.status != ENABLED:
        return "endpoint disabled"
    if endpoint.partner.status == PartnerStatus.SUSPENDED:
        return "partner suspended"
    return ""


def _attempt(
    delivery: WebhookDelivery, *, now, attempts: list, retries: list
) -> sending.SendResult:
    """One send of the delivery; its outcome set on the instance (saved by the caller), its
    attempt appended to ``attempts`` and a retry soon enough for a countdown to ``retries``."""
    try:
        result = _send(delivery, now=now)
    except Exception as exc:  # a bug must cost one attempt, not loop the delivery forever
        logger.exception("webhook delivery %s: sending raised", delivery.pk)
        result = sending.SendResult(None, 0, f"internal error: {type(exc).__name__}", "")
    delivery.attempt_count += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    delivery.updated = timezone.now()
    attempts.append(
        WebhookAttempt(
            delivery=delivery,
            succeeded=result.succeeded,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            response_body=result.response_body,
        )
    )
    if result.succeeded:
        delivery.status = SUCCEEDED
        delivery.next_attempt_at = delivery.enqueued_at = None
    else:
        delay = next_retry_delay(attempt_count=delivery.attempt_count, result=result)
        if delay is None:
            delivery.status = FAILED
            delivery.next_attempt_at = delivery.enqueued_at = None
        else:
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            if countdown_allowed(delay):
                retries.append((delivery.pk, delay))
                delivery.enqueued_at = delivery.next_attempt_at
            else:
                delivery.enqueued_at = None  # the sweeper queues it when it falls due
    # One line per attempt for operators; in a worker it carries the request id of the request
    # that published the event (livecommerce/logs.py).
    logger.info(
        "webhook delivery %s attempt %s: %s",
        delivery.pk,
        delivery.attempt_count,
        delivery.status,
        extra={
            "delivery": delivery.pk,
            "event": delivery.event_id,
            "endpoint": delivery.endpoint_id,
            "status_code": result.status_code,
            "latency_ms": result.latency_ms,
        },
    )
    return result


def _record_health(sent: list[tuple[WebhookDelivery, sending.SendResult, datetime]]) -> None:
    """The endpoints' health after a batch's attempts, once per run of like outcomes of an
    endpoint (a success, or a failure: the run's 410 if there is one, at the run's first
    failure), in the order they happened: what recording each attempt in turn would leave."""
    runs: dict[str, list[tuple[sending.SendResult, datetime]]] = {}
    for delivery, result, at in sent:
        endpoint_runs = runs.setdefault(delivery.endpoint_id, [])
        if endpoint_runs and endpoint_runs[-1][0].succeeded == result.succeeded:
            if result.status_code == 410 and endpoint_runs[-1][0].status_code != 410:
                endpoint_runs[-1] = (result, endpoint_runs[-1][1])
            continue
        endpoint_runs.append((result, at))
    for endpoint_id, endpoint_runs in runs.items():
        for result, at in endpoint_runs:
            record_endpoint_health(endpoint_id, result=result, at=at)


def _partner_suspended(endpoint: WebhookEndpoint) -> bool:
    return Partner.objects.filter(pk=endpoint.partner_id, status=PartnerStatus.SUSPENDED).exists()


def _send(delivery: WebhookDelivery, *, now) -> sending.SendResult:
    endpoint, event = delivery.endpoint, delivery.event
    try:
        target = check_webhook_url(endpoint.url, allow_private=conf.allow_private_urls())
    except WebhookURLNotAllowed as exc:
        return sending.SendResult(None, 0, f"URL not allowed: {exc}"[:500], "")
    # A creator's endpoint gets the event as a creator may read it (partners/least_data.py);
    # every other endpoint the body stored at publication.
    hidden = least_data.hidden_fields(endpoint.partner.kind)
    body = event_body(event) if not hidden else event_body_redacted(event, hidden)
    headers = {
        "webhook-id": event.pk,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signing.signature_header(
            secrets=endpoint.signing_secrets(now), msg_id=event.pk, timestamp=now, body=body
        ),
    }
    return sending.post(target=target, body=body, headers=headers, timeout=conf.timeout())


@transaction.atomic
def webhook_delivery_retry(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now, whatever its status (a partner replaying one event).

    A failed delivery gets one more attempt (more if retries remain on its schedule); a
    succeeded one is sent once more. The endpoint must be enabled.
    """
    delivery = (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("endpoint", "event")
        .get(pk=delivery.pk)
    )
    if delivery.endpoint.status != ENABLED:
        raise AppError("webhook_endpoint_disabled")
    if _partner_suspended(delivery.endpoint):
        raise AppError("partner_suspended")
    now = timezone.now()
    delivery.status = PENDING
    delivery.next_attempt_at = now
    delivery.enqueued_at = now
    delivery.save(update_fields=["status", "next_attempt_at", "enqueued_at", "updated"])
    transaction.on_commit(lambda: queue_deliveries([delivery.pk]), robust=True)
    return delivery


def webhook_deliveries_sweep(*, now=None) -> int:
    """Queue every delivery that is due and that no task has taken; how many were queued.

    Covers a process that died between commit and queueing, a task lost with its worker, and
    retries too far off for a countdown. Rows a worker is sending right now are locked and
    skipped; one queued less than ``WEBHOOK_REQUEUE_AFTER`` ago is left to its task.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=PENDING, next_attempt_at__lte=now)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=now - conf.requeue_after()))
            .exclude(endpoint__partner__status=PartnerStatus.SUSPENDED)
            .order_by("next_attempt_at")
            .values_list("pk", "endpoint_id")[:SWEEP_BATCH]
        )
        if due:
            ids = [pk for pk, _ in due]
            endpoint_ids = [endpoint_id for _, endpoint_id in due]
            WebhookDelivery.objects.filter(pk__in=ids).update(enqueued_at=now)
            transaction.on_commit(
                lambda: queue_deliveries(ids, endpoint_ids=endpoint_ids, sweeping=True),
                robust=True,
            )
    return len(due)
