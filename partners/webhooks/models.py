"""Webhook endpoints, the delivery outbox and its attempts (app label ``partners``).

Imported by ``partners.models``, which registers them with Django; they refer to its
``Partner`` and ``Event``, so this module is imported once those exist.
"""

from django.db import models
from django.db.models import Q

from livecommerce.ids import ID_MAX_LENGTH, IdFactory
from partners.models import Event, Partner, TenantQuerySet
from partners.webhooks.choices import ALL_EVENTS, WebhookDeliveryStatus, WebhookEndpointStatus


class WebhookEndpointQuerySet(TenantQuerySet):
    def partner_filter(self, partner: Partner) -> Q:
        return Q(partner=partner)


class WebhookEndpoint(models.Model):
    """Where a partner wants to hear of its events: a URL, the event types, a signing secret.

    The secret is stored readable, not hashed, because every delivery is signed with it (HMAC);
    the API shows it only at creation and on rotation. After a rotation the previous secret
    also signs until ``previous_secret_expires``, so the receiver can switch without losing a
    delivery. ``failing_since`` is the first failed attempt since the last success; an endpoint
    failing for ``WEBHOOK_DISABLE_AFTER`` is disabled.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("we"))
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=list, help_text='Event types, or ["*"] for all of them')
    status = models.CharField(
        max_length=10, choices=WebhookEndpointStatus.choices, default=WebhookEndpointStatus.ENABLED
    )
    description = models.CharField(max_length=500, blank=True, default="")
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ("-created", "-id")

    def __str__(self) -> str:
        return f"{self.url} ({self.partner_id})"

    def subscribes_to(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events

    def signing_secrets(self, now) -> list[str]:
        """The secrets that sign a delivery sent at ``now``: the current one, and the previous
        one while its grace period lasts."""
        secrets = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires
            and (self.previous_secret_expires > now)
        ):
            secrets.append(self.previous_secret)
        return secrets


class WebhookDeliveryQuerySet(TenantQuerySet):
    def partner_filter(self, partner: Partner) -> Q:
        return Q(endpoint__partner=partner)


class WebhookDelivery(models.Model):
    """One event owed to one endpoint: the outbox row.

    Written in the same transaction as the event (so a committed change always owes its
    deliveries), sent by a Celery task after commit, and re-queued by the sweeper when it is due
    and no task took it (``enqueued_at`` says when one was last queued). A worker holds the
    row's lock while it sends, so two workers never send one delivery at once; a succeeded
    delivery is never sent again unless a partner asks for a retry.
    """

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("wd"))
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="webhook_deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(
        max_length=10, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ("-created", "-id")
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once"),
            models.CheckConstraint(
                condition=~Q(status=WebhookDeliveryStatus.PENDING)
                | Q(next_attempt_at__isnull=False),
                name="webhook_delivery_pending_has_next_attempt",
            ),
        ]
        indexes = [
            # The sweeper's scan: only pending rows, by when they are due.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status=WebhookDeliveryStatus.PENDING),
                name="webhook_delivery_due",
            ),
            # A send task taking along its endpoint's other due deliveries (services.deliveries).
            models.Index(
                fields=["endpoint", "next_attempt_at"],
                condition=Q(status=WebhookDeliveryStatus.PENDING),
                name="webhook_delivery_endpoint_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP try of a delivery, kept so the partner can see what its endpoint answered."""

    id = models.CharField(primary_key=True, max_length=ID_MAX_LENGTH, default=IdFactory("wa"))
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    succeeded = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=500, blank=True, default="")
    response_body = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self) -> str:
        return f"{self.delivery_id}: {self.status_code or self.error}"
