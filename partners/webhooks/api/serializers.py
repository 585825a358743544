"""Shapes of webhook endpoints, deliveries, attempts and events, in and out."""

from rest_framework import serializers

from partners import least_data
from partners.models import Event
from partners.webhooks.choices import ALL_EVENTS, EVENT_TYPES, WebhookEndpointStatus
from partners.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENT_NAME_CHOICES = [ALL_EVENTS, *EVENT_TYPES]
MAX_GRACE_SECONDS = 7 * 86400


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """An endpoint as listed: never its secret."""

    disabled_reason = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "partner",
            "url",
            "events",
            "status",
            "description",
            "disabled_reason",
            "failing_since",
            "created",
            "updated",
        ]
        read_only_fields = fields

    def get_disabled_reason(self, obj: WebhookEndpoint) -> str | None:
        """Why the endpoint is disabled (by the partner, 410 Gone, failing too long), or null."""
        return obj.disabled_reason or None


class WebhookEndpointSecretSerializer(WebhookEndpointSerializer):
    """An endpoint with its signing secret: only in the create and rotate-secret responses."""

    secret = serializers.CharField(help_text="`whsec_` + base64; keep it, it is not shown again")
    previous_secret_expires = serializers.DateTimeField(
        allow_null=True,
        help_text="Until when the previous secret also signs deliveries (after a rotation)",
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret", "previous_secret_expires"]
        read_only_fields = fields


class _EventsField(serializers.ListField):
    child = serializers.ChoiceField(choices=EVENT_NAME_CHOICES)

    def __init__(self, **kwargs):
        super().__init__(
            allow_empty=False,
            max_length=len(EVENT_NAME_CHOICES),
            help_text='Event types to receive, or ["*"] for all of them',
            **kwargs,
        )


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2048)
    events = _EventsField()
    description = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default=""
    )


class WebhookEndpointUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2048, required=False)
    events = _EventsField(required=False)
    status = serializers.ChoiceField(choices=WebhookEndpointStatus.choices, required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)


class RotateSecretSerializer(serializers.Serializer):
    grace_period_seconds = serializers.IntegerField(
        min_value=0,
        max_value=MAX_GRACE_SECONDS,
        required=False,
        help_text="How long the current secret keeps signing (default 86400: 24 h; 0: stop now)",
    )


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "id",
            "created",
            "succeeded",
            "status_code",
            "latency_ms",
            "error",
            "response_body",
        ]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    """A delivery of one event to one endpoint, with every attempt made."""

    event_type = serializers.CharField(source="event.type", read_only=True)
    attempts = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "event_type",
            "endpoint",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "created",
            "updated",
            "attempts",
        ]
        read_only_fields = fields


class EventSerializer(serializers.ModelSerializer):
    """An event exactly as a webhook carries it."""

    def get_livemode(self, obj: Event) -> bool:
        """Always true for a real event; a test send's body says false."""
        return True

    data = serializers.DictField(read_only=True, help_text="The object as it was (shape by type)")
    livemode = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = ["id", "type", "created", "sequence", "livemode", "data"]
        read_only_fields = fields

    def to_representation(self, instance):
        # A creator reads no buyer data in events either (partners/least_data.py).
        data = super().to_representation(instance)
        request = self.context.get("request")
        return least_data.view_for(request.user, data) if request is not None else data


class WebhookTestInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=list(EVENT_TYPES), help_text="The event type whose example to send"
    )


class WebhookTestResultSerializer(serializers.Serializer):
    """How the endpoint answered a test send."""

    event_id = serializers.CharField(help_text="The test event's id (`evt_test_...`)")
    type = serializers.CharField()
    succeeded = serializers.BooleanField(help_text="The endpoint answered 2xx")
    status_code = serializers.IntegerField(
        allow_null=True, help_text="null when no answer came (refused, timed out)"
    )
    response_time_ms = serializers.IntegerField()
    error = serializers.CharField(allow_blank=True)
    response_body = serializers.CharField(
        allow_blank=True, help_text="The first 1000 characters of the answer"
    )


class WebhookReplayInputSerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Events created at or after this time")
    until = serializers.DateTimeField(
        required=False, help_text="...and before this time (default: now)"
    )
    types = serializers.ListField(
        child=serializers.ChoiceField(choices=list(EVENT_TYPES)),
        required=False,
        allow_empty=False,
        max_length=len(EVENT_TYPES),
        help_text="Only these types (default: every type the endpoint subscribes to)",
    )


class WebhookReplayResultSerializer(serializers.Serializer):
    queued = serializers.IntegerField(help_text="How many events will be sent again")
