"""Writes for webhook deliveries: one send of a due delivery, a partner's retry, the sweeper."""

import logging
import random
from datetime import timedelta

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
from partners.webhooks.services.endpoints import record_endpoint_health
from partners.webhooks.services.queueing import countdown_allowed, queue_deliveries
from partners.webhooks.url_policy import WebhookURLNotAllowed, check_webhook_url

logger = logging.getLogger(__name__)

PENDING = WebhookDeliveryStatus.PENDING
SUCCEEDED = WebhookDeliveryStatus.SUCCEEDED
FAILED = WebhookDeliveryStatus.FAILED
ENABLED = WebhookEndpointStatus.ENABLED

# A task may run a moment before ``next_attempt_at`` on a worker whose clock runs ahead.
DUE_TOLERANCE = timedelta(seconds=1)
SWEEP_BATCH = 1000
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

    Safe to run twice and concurrently: the row is locked ``SKIP LOCKED`` for the whole send
    (another worker holding it is sending it right now, so this one walks away), and a
    delivery that is not pending or not yet due is left alone. If the worker dies mid-send the
    transaction rolls back, the lock goes with the connection, and the sweeper or the
    broker's redelivery sends it again (at least once). The endpoint's URL is checked again
    here, against DNS rebinding, and the send connects to the address that was checked.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint", "endpoint__partner")
            # Only the event's stored body is sent: decoding its JSON data would be wasted.
            .defer("event__data")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return "busy_or_gone"
        now = timezone.now()
        if delivery.status != PENDING:
            return "already_" + delivery.status
        if delivery.next_attempt_at > now + DUE_TOLERANCE:
            return "not_due"
        endpoint = delivery.endpoint
        # The partner's row came with the delivery's read (not locked, like the separate
        # read it replaces): a suspension committed before this read stops the send.
        suspended = endpoint.partner.status == PartnerStatus.SUSPENDED
        if endpoint.status != ENABLED or suspended:
            # A suspended partner's payloads no longer go out, whatever queued them (a task
            # queued before the suspension, a retry, a replay, the sweeper).
            disabled = endpoint.status != ENABLED
            delivery.status = FAILED
            delivery.next_attempt_at = delivery.enqueued_at = None
            delivery.last_error = "endpoint disabled" if disabled else "partner suspended"
            delivery.save(
                update_fields=["status", "next_attempt_at", "enqueued_at", "last_error", "updated"]
            )
            return "endpoint_disabled" if disabled else "partner_suspended"

        try:
            result = _send(delivery, now=now)
        except Exception as exc:  # a bug must cost one attempt, not loop the delivery forever
            logger.exception("webhook delivery %s: sending raised", delivery.pk)
            result = sending.SendResult(None, 0, f"internal error: {type(exc).__name__}", "")

        delivery.attempt_count += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error
        WebhookAttempt.objects.create(
            delivery=delivery,
            succeeded=result.succeeded,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            response_body=result.response_body,
        )
        countdown = None
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
                    countdown = delay
                    delivery.enqueued_at = delivery.next_attempt_at
                else:
                    delivery.enqueued_at = None  # the sweeper queues it when it falls due
        delivery.save(update_fields=ATTEMPT_FIELDS)
        if countdown is not None:
            transaction.on_commit(
                lambda: queue_deliveries([delivery.pk], countdown=countdown), robust=True
            )
    record_endpoint_health(endpoint.pk, result=result, at=now)
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
            "endpoint": endpoint.pk,
            "status_code": result.status_code,
            "latency_ms": result.latency_ms,
        },
    )
    return delivery.status


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
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        if due:
            WebhookDelivery.objects.filter(pk__in=due).update(enqueued_at=now)
            transaction.on_commit(lambda: queue_deliveries(due, sweeping=True), robust=True)
    return len(due)
