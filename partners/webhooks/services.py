"""Writes for webhooks: endpoints, secret rotation, sending a delivery, retries and the sweeper.

Locks, in the only order they are taken: a delivery row (held by the worker while it sends),
then nothing else; an endpoint row (``FOR NO KEY UPDATE``, so publishing events, which inserts
deliveries referencing it, never waits), then its pending delivery rows. A worker records the
outcome of a send and only afterwards, in a transaction of its own, updates the endpoint's
health, so the two orders never meet.
"""

import json
import logging
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from time import monotonic

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework import serializers

from livecommerce.errors import AppError, AppValidationError
from partners import least_data
from partners.choices import PartnerStatus
from partners.events import event_body, event_body_redacted, event_publish
from partners.models import Event, Partner, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from partners.webhooks import conf, sending, signing
from partners.webhooks.choices import (
    ALL_EVENTS,
    ENDPOINT_DISABLED_EVENT,
    ENDPOINT_RECOVERED_EVENT,
    WebhookDeliveryStatus,
    WebhookEndpointStatus,
)
from partners.webhooks.url_policy import CheckedURL, WebhookURLNotAllowed, check_webhook_url

logger = logging.getLogger(__name__)

PENDING = WebhookDeliveryStatus.PENDING
SUCCEEDED = WebhookDeliveryStatus.SUCCEEDED
FAILED = WebhookDeliveryStatus.FAILED
ENABLED = WebhookEndpointStatus.ENABLED
DISABLED = WebhookEndpointStatus.DISABLED

# A task may run a moment before ``next_attempt_at`` on a worker whose clock runs ahead.
DUE_TOLERANCE = timedelta(seconds=1)
SWEEP_BATCH = 1000
_time_field = serializers.DateTimeField()  # the API's time format, in event data


# --- Queueing ---------------------------------------------------------------------------------


# When the broker refuses a message, this process leaves queueing to the sweeper for a while:
# a broker that is down or hung then costs one request a timeout, not every request, and the
# deliveries, released to the sweeper, go out on its first round once the broker is back.
BROKER_PAUSE = 30.0  # seconds
_broker_failed_at: float | None = None


def queue_deliveries(
    delivery_ids: list[str], *, countdown: float | None = None, sweeping: bool = False
) -> None:
    """Queue the send task for each delivery (called after commit).

    If the broker cannot take them (or failed moments ago), the deliveries are left to the
    sweeper (``enqueued_at`` cleared) and, for a failure now, the error is raised to the
    caller's robust on-commit hook, which logs it. The sweeper itself always tries.
    """
    from partners.tasks import deliver_webhook

    global _broker_failed_at
    paused = _broker_failed_at is not None and monotonic() - _broker_failed_at < BROKER_PAUSE
    if paused and not sweeping:
        _leave_to_sweeper(delivery_ids)
        return
    for done, delivery_id in enumerate(delivery_ids):
        try:
            deliver_webhook.apply_async(args=[delivery_id], countdown=countdown)
        except Exception:
            _broker_failed_at = monotonic()
            _leave_to_sweeper(delivery_ids[done:])
            raise
    _broker_failed_at = None


def _leave_to_sweeper(delivery_ids: list[str]) -> None:
    WebhookDelivery.objects.filter(pk__in=delivery_ids, status=PENDING).update(enqueued_at=None)


def _countdown_allowed(delay: float) -> bool:
    # Eager mode (no broker) would run a "retry in 5 minutes" at once; leave it to the sweeper.
    return not current_app.conf.task_always_eager and delay <= conf.countdown_max()


# --- Endpoints --------------------------------------------------------------------------------


def _checked_url(url: str) -> CheckedURL:
    try:
        return check_webhook_url(url, allow_private=conf.allow_private_urls())
    except WebhookURLNotAllowed as exc:
        raise AppValidationError("webhook_url_not_allowed", str(exc), attr="url") from None


def _normalise_events(events: list[str]) -> list[str]:
    if ALL_EVENTS in events:
        return [ALL_EVENTS]
    return sorted(set(events))


def webhook_endpoint_create(
    *, partner: Partner, url: str, events: list[str], description: str = ""
) -> WebhookEndpoint:
    """Register a partner's endpoint with a new signing secret.

    The URL must pass the URL policy (public https) now; it is checked again at every send.
    """
    _checked_url(url)
    return WebhookEndpoint.objects.create(
        partner=partner,
        url=url,
        events=_normalise_events(events),
        description=description,
        secret=signing.new_secret(),
    )


def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    events: list[str] | None = None,
    status: str | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    """Change an endpoint's URL, events, description or status.

    Disabling fails its pending deliveries (the partner catches up with ``GET /events``);
    enabling starts its failure clock afresh.
    """
    if url is not None:
        _checked_url(url)  # DNS before taking any lock
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).get(pk=endpoint.pk)
        if url is not None:
            endpoint.url = url
        if events is not None:
            endpoint.events = _normalise_events(events)
        if description is not None:
            endpoint.description = description
        if status is not None and status != endpoint.status:
            endpoint.status = status
            if status == ENABLED:
                endpoint.failing_since = None
                endpoint.disabled_reason = ""
            else:
                endpoint.disabled_reason = "Disabled by the partner."
                _fail_pending_deliveries(endpoint, "endpoint disabled")
        endpoint.save()
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint with its deliveries and their attempts; nothing more is sent to it."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


@transaction.atomic
def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, grace_period: timedelta | None = None
) -> WebhookEndpoint:
    """Give the endpoint a new secret; the current one keeps signing for ``grace_period``.

    Deliveries carry one signature per live secret, so the receiver may switch to the new
    secret at any time within the grace period. A rotation during a grace period ends the
    older secret at once (two secrets at most).
    """
    grace = conf.secret_grace() if grace_period is None else grace_period
    endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).get(pk=endpoint.pk)
    if grace > timedelta(0):
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires = timezone.now() + grace
    else:
        endpoint.previous_secret = ""
        endpoint.previous_secret_expires = None
    endpoint.secret = signing.new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires", "updated"])
    return endpoint


def _fail_pending_deliveries(endpoint: WebhookEndpoint, reason: str) -> int:
    return WebhookDelivery.objects.filter(endpoint=endpoint, status=PENDING).update(
        status=FAILED, next_attempt_at=None, enqueued_at=None, last_error=reason
    )


def webhook_endpoint_auto_disable(
    *, endpoint_id: str, reason: str, failing_before=None
) -> WebhookEndpoint | None:
    """Disable an endpoint the service gave up on, and tell the partner's other endpoints.

    With ``failing_before`` it re-checks, under the lock, that the endpoint has been failing
    since before then (a success in the meantime clears ``failing_since``). Publishes
    ``webhook_endpoint.disabled`` to the partner. Returns the endpoint if it was disabled now.
    """
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=endpoint_id).first()
        )
        if endpoint is None or endpoint.status != ENABLED:
            return None
        if failing_before is not None and (
            endpoint.failing_since is None or endpoint.failing_since > failing_before
        ):
            return None
        endpoint.status = DISABLED
        endpoint.disabled_reason = reason
        endpoint.save(update_fields=["status", "disabled_reason", "updated"])
        _fail_pending_deliveries(endpoint, "endpoint disabled")
        event_publish(
            type=ENDPOINT_DISABLED_EVENT,
            object_id=endpoint.pk,
            data={
                "id": endpoint.pk,
                "url": endpoint.url,
                "reason": reason,
                "failing_since": (
                    _time_field.to_representation(endpoint.failing_since)
                    if endpoint.failing_since
                    else None
                ),
            },
            partner_ids=[endpoint.partner_id],
        )
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)
    return endpoint


def _record_endpoint_health(endpoint_id: str, *, result: sending.SendResult, at) -> None:
    """After an attempt: clear or start the failure clock; disable on 410 or long failure."""
    endpoints = WebhookEndpoint.objects.filter(pk=endpoint_id)
    if result.succeeded:
        if endpoints.filter(failing_since__isnull=False).exists():
            _endpoint_recovered(endpoint_id, at=at)
        return
    endpoints.filter(failing_since__isnull=True).update(failing_since=at)
    if result.status_code == 410:
        webhook_endpoint_auto_disable(
            endpoint_id=endpoint_id, reason="The endpoint answered 410 Gone."
        )
        return
    limit = conf.disable_after()
    if endpoints.filter(status=ENABLED, failing_since__lte=at - limit).exists():
        webhook_endpoint_auto_disable(
            endpoint_id=endpoint_id,
            reason=f"The endpoint failed every attempt for {limit}.",
            failing_before=at - limit,
        )


def _endpoint_recovered(endpoint_id: str, *, at) -> None:
    """A failing endpoint answered 2xx: clear its failure clock and tell the partner's other
    endpoints (``webhook_endpoint.recovered``), once per recovery (under the endpoint's lock)."""
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=endpoint_id).first()
        )
        if endpoint is None or endpoint.failing_since is None:
            return
        failing_since = endpoint.failing_since
        endpoint.failing_since = None
        endpoint.save(update_fields=["failing_since", "updated"])
        event_publish(
            type=ENDPOINT_RECOVERED_EVENT,
            object_id=endpoint.pk,
            data={
                "id": endpoint.pk,
                "url": endpoint.url,
                "failing_since": _time_field.to_representation(failing_since),
                "recovered_at": _time_field.to_representation(at),
            },
            partner_ids=[endpoint.partner_id],
            skip_endpoint_ids=[endpoint.pk],
        )


# --- Test sends and replays -------------------------------------------------------------------


@dataclass(frozen=True)
class TestSend:
    """What one test send of an example event got back from the endpoint."""

    event_id: str
    type: str
    result: sending.SendResult


def webhook_endpoint_test(*, endpoint: WebhookEndpoint, event_type: str) -> TestSend:
    """Send a signed example of ``event_type`` to the endpoint now, and say how it answered.

    The body is the type's example (``partners.webhooks.examples``) with ``"livemode": false``
    and an id of its own (``evt_test_...``); nothing is stored and the endpoint's health is not
    touched, so a partner may test a disabled endpoint before enabling it again. The URL
    policy applies as for every send.
    """
    from partners.webhooks.examples import example_event

    now = timezone.now()
    event = example_event(event_type)
    event.update(
        id=f"evt_test_{secrets.token_hex(12)}",
        created=_time_field.to_representation(now),
        livemode=False,
    )
    try:
        target = check_webhook_url(endpoint.url, allow_private=conf.allow_private_urls())
    except WebhookURLNotAllowed as exc:
        result = sending.SendResult(None, 0, f"URL not allowed: {exc}"[:500], "")
        return TestSend(event["id"], event_type, result)
    body = json.dumps(event, separators=(",", ":"))
    headers = {
        "webhook-id": event["id"],
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signing.signature_header(
            secrets=endpoint.signing_secrets(now), msg_id=event["id"], timestamp=now, body=body
        ),
    }
    result = sending.post(target=target, body=body, headers=headers, timeout=conf.timeout())
    return TestSend(event["id"], event_type, result)


REPLAY_MAX_EVENTS = 10_000


def webhook_endpoint_replay(
    *, endpoint: WebhookEndpoint, since, until, types: list[str] | None = None
) -> int:
    """Send again every event of ``[since, until)`` the endpoint subscribes to; how many.

    Only events its partner may see (it was a recipient), only types the endpoint subscribes
    to (and among ``types`` when given). Each goes out as a delivery of the same event (same
    id, same body), signed with the endpoint's current secret when sent: a delivery already
    made is reset to pending, a missing one (the endpoint was registered later) is created.
    The endpoint must be enabled; at most ``REPLAY_MAX_EVENTS`` events per replay.
    """
    if until <= since:
        raise AppValidationError("invalid_period", "until must be after since.", attr="until")
    events = Event.objects.filter(
        recipients__partner_id=endpoint.partner_id, created__gte=since, created__lt=until
    )
    if types:
        events = events.filter(type__in=types)
    if ALL_EVENTS not in endpoint.events:
        events = events.filter(type__in=endpoint.events)
    # The endpoint's own disabled/recovered notices were never its to receive (skipped at
    # publication: see ``skip_endpoint_ids``); a replay does not send them either.
    events = events.exclude(
        type__in=[ENDPOINT_DISABLED_EVENT, ENDPOINT_RECOVERED_EVENT], data__id=endpoint.pk
    )
    # One more than the cap is enough to know the window is too large.
    event_ids = list(
        events.order_by("created", "id")
        .values_list("pk", flat=True)
        .distinct()[: REPLAY_MAX_EVENTS + 1]
    )
    if len(event_ids) > REPLAY_MAX_EVENTS:
        raise AppValidationError(
            "replay_too_large",
            f"The window holds more than {REPLAY_MAX_EVENTS} events; replay at most "
            f"{REPLAY_MAX_EVENTS} at a time (narrow since/until).",
            attr="since",
        )
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).get(pk=endpoint.pk)
        if endpoint.status != ENABLED:
            raise AppError("webhook_endpoint_disabled")
        now = timezone.now()
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    event_id=event_id,
                    endpoint=endpoint,
                    status=PENDING,
                    next_attempt_at=now,
                    enqueued_at=now,
                )
                for event_id in event_ids
            ],
            update_conflicts=True,
            unique_fields=["event", "endpoint"],
            update_fields=["status", "next_attempt_at", "enqueued_at", "updated"],
        )
        # Read back: a delivery reset on conflict keeps its own id, not the one made here.
        delivery_ids = list(
            WebhookDelivery.objects.filter(
                endpoint=endpoint, event_id__in=event_ids, status=PENDING
            ).values_list("pk", flat=True)
        )
        if delivery_ids:
            transaction.on_commit(lambda: queue_deliveries(delivery_ids), robust=True)
    return len(event_ids)


# --- Deliveries -------------------------------------------------------------------------------


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
        if endpoint.status != ENABLED or _partner_suspended(endpoint):
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
                if _countdown_allowed(delay):
                    countdown = delay
                    delivery.enqueued_at = delivery.next_attempt_at
                else:
                    delivery.enqueued_at = None  # the sweeper queues it when it falls due
        delivery.save()
        if countdown is not None:
            transaction.on_commit(
                lambda: queue_deliveries([delivery.pk], countdown=countdown), robust=True
            )
    _record_endpoint_health(endpoint.pk, result=result, at=now)
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
