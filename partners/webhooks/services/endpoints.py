"""Writes for webhook endpoints: create, change, delete, rotate the secret, disable and recover
(the endpoint's health after each attempt), test sends and replays."""

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from livecommerce.errors import AppError, AppValidationError
from partners.events import event_publish
from partners.models import Event, Partner
from partners.webhooks import conf, sending, signing
from partners.webhooks.choices import (
    ALL_EVENTS,
    ENDPOINT_DISABLED_EVENT,
    ENDPOINT_RECOVERED_EVENT,
    WebhookDeliveryStatus,
    WebhookEndpointStatus,
)
from partners.webhooks.examples import example_event
from partners.webhooks.models import WebhookDelivery, WebhookEndpoint
from partners.webhooks.queueing import queue_deliveries
from partners.webhooks.url_policy import CheckedURL, WebhookURLNotAllowed, check_webhook_url

logger = logging.getLogger(__name__)

PENDING = WebhookDeliveryStatus.PENDING
FAILED = WebhookDeliveryStatus.FAILED
ENABLED = WebhookEndpointStatus.ENABLED
DISABLED = WebhookEndpointStatus.DISABLED

_time_field = serializers.DateTimeField()  # the API's time format, in event data


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


def record_endpoint_health(endpoint_id: str, *, result: sending.SendResult, at) -> None:
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
