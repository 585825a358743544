"""Webhook endpoints, their deliveries, and the event feed partners catch up from.

A partner manages its own endpoints; ops staff may read every endpoint and delivery (support)
and ask for a delivery to be sent again; staff read every event. Another partner's endpoint,
delivery or event answers 404.
"""

from datetime import timedelta

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import filters, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from livecommerce.api import validated_input
from livecommerce.schema import error_responses
from partners.choices import PartnerKind, StaffRole
from partners.permissions import ActionPermissionsMixin, allow
from partners.webhooks import selectors, services
from partners.webhooks.api.serializers import (
    EventSerializer,
    RotateSecretSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointSecretSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateSerializer,
    WebhookReplayInputSerializer,
    WebhookReplayResultSerializer,
    WebhookTestInputSerializer,
    WebhookTestResultSerializer,
)
from partners.webhooks.filters import EventFilter, WebhookDeliveryFilter, WebhookEndpointFilter

ALL_PARTNERS = tuple(PartnerKind.values)
PARTNERS = allow(partners=ALL_PARTNERS)
PARTNERS_AND_OPS = allow(staff=(StaffRole.OPS,), partners=ALL_PARTNERS)
EVENT_READERS = allow(staff=(StaffRole.OPS, StaffRole.FINANCE), partners=ALL_PARTNERS)

TAGS = ["webhooks"]

ENDPOINT_EXAMPLE = {
    "id": "we_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "partner": "prt_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "url": "https://hooks.glow.example/livecommerce",
    "events": ["order.paid", "order.refunded"],
    "status": "enabled",
    "description": "Order sync",
    "disabled_reason": None,
    "failing_since": None,
    "created": "2026-11-23T12:00:00.000000Z",
    "updated": "2026-11-23T12:00:00.000000Z",
}
SECRET_EXAMPLE = {
    **ENDPOINT_EXAMPLE,
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwy4sdJ6wlMjJs",
    "previous_secret_expires": None,
}
EVENT_EXAMPLE = {
    "id": "evt_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "type": "order.paid",
    "created": "2026-11-23T12:00:00.000000Z",
    "sequence": 2,
    "livemode": True,
    "data": {"id": "ord_01jd3x6q2c7h9k4m8n2p5r7t9v", "status": "paid", "total": "19.99"},
}


@extend_schema_view(
    list=extend_schema(summary="List webhook endpoints", tags=TAGS),
    retrieve=extend_schema(summary="Get a webhook endpoint", tags=TAGS),
)
class WebhookEndpointViewSet(
    ActionPermissionsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """A partner's webhook endpoints: URL, events, status; the secret only on create/rotate."""

    serializer_class = WebhookEndpointSerializer
    filterset_class = WebhookEndpointFilter
    action_permissions = {
        "list": PARTNERS_AND_OPS,
        "retrieve": PARTNERS_AND_OPS,
        "deliveries": PARTNERS_AND_OPS,
        "create": PARTNERS,
        "partial_update": PARTNERS,
        "destroy": PARTNERS,
        "rotate_secret": PARTNERS,
        "send_test": PARTNERS,
        "replay": PARTNERS,
    }

    def get_queryset(self):
        if self.action == "deliveries":
            return selectors.webhook_delivery_list(caller=self.request.user)
        return selectors.webhook_endpoint_list(caller=self.request.user)

    @extend_schema(
        summary="Register a webhook endpoint (returns its secret once)",
        tags=TAGS,
        request=WebhookEndpointCreateSerializer,
        responses={
            201: WebhookEndpointSecretSerializer,
            **error_responses("webhook_url_not_allowed"),
        },
        examples=[
            OpenApiExample(
                "Order events",
                value={
                    "url": "https://hooks.glow.example/livecommerce",
                    "events": ["order.paid", "order.refunded"],
                    "description": "Order sync",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Created", value=SECRET_EXAMPLE, response_only=True, status_codes=["201"]
            ),
        ],
    )
    def create(self, request):
        data = validated_input(WebhookEndpointCreateSerializer, request.data)
        endpoint = services.webhook_endpoint_create(partner=request.user.partner, **data)
        return Response(
            WebhookEndpointSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Change a webhook endpoint's URL, events, description or status",
        tags=TAGS,
        request=WebhookEndpointUpdateSerializer,
        responses={200: WebhookEndpointSerializer, **error_responses("webhook_url_not_allowed")},
        examples=[
            OpenApiExample("Re-enable", value={"status": "enabled"}, request_only=True),
            OpenApiExample("Everything", value={"events": ["*"]}, request_only=True),
        ],
    )
    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        data = validated_input(WebhookEndpointUpdateSerializer, request.data)
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, **data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(summary="Delete a webhook endpoint", tags=TAGS, responses={204: None})
    def destroy(self, request, pk=None):
        services.webhook_endpoint_delete(endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate an endpoint's signing secret (returns the new one once)",
        description=(
            "The previous secret keeps signing deliveries, next to the new one, for "
            "`grace_period_seconds` (default 24 h), so the receiver can switch without a gap."
        ),
        tags=TAGS,
        request=RotateSecretSerializer,
        responses={200: WebhookEndpointSecretSerializer},
        examples=[
            OpenApiExample("One hour", value={"grace_period_seconds": 3600}, request_only=True),
            OpenApiExample(
                "Rotated",
                value={**SECRET_EXAMPLE, "previous_secret_expires": "2026-11-24T12:00:00.000000Z"},
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = self.get_object()
        data = validated_input(RotateSecretSerializer, request.data or {})
        grace = data.get("grace_period_seconds")
        endpoint = services.webhook_endpoint_rotate_secret(
            endpoint=endpoint,
            grace_period=None if grace is None else timedelta(seconds=grace),
        )
        return Response(WebhookEndpointSecretSerializer(endpoint).data)

    @extend_schema(
        summary="Send a signed example event to the endpoint now",
        description=(
            "Sends the example of `type` (the same example the schema documents), signed like "
            'every delivery, with `"livemode": false` and an id of its own (`evt_test_...`), '
            "and answers how the endpoint responded. Nothing is stored or retried; a disabled "
            "endpoint may be tested before it is enabled again."
        ),
        tags=TAGS,
        request=WebhookTestInputSerializer,
        responses={200: WebhookTestResultSerializer},
        examples=[
            OpenApiExample("Paid", value={"type": "order.paid"}, request_only=True),
            OpenApiExample(
                "Answered",
                value={
                    "event_id": "evt_test_5f1c2a9b0e7d4c3a8b6f1e2d",
                    "type": "order.paid",
                    "succeeded": True,
                    "status_code": 200,
                    "response_time_ms": 84,
                    "error": "",
                    "response_body": "ok",
                },
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request, pk=None):
        endpoint = self.get_object()
        data = validated_input(WebhookTestInputSerializer, request.data)
        sent = services.webhook_endpoint_test(endpoint=endpoint, event_type=data["type"])
        return Response(
            WebhookTestResultSerializer(
                {
                    "event_id": sent.event_id,
                    "type": sent.type,
                    "succeeded": sent.result.succeeded,
                    "status_code": sent.result.status_code,
                    "response_time_ms": sent.result.latency_ms,
                    "error": sent.result.error,
                    "response_body": sent.result.response_body,
                }
            ).data
        )

    @extend_schema(
        summary="Send again every event of a time window",
        description=(
            "Queues every event created in `[since, until)` that you may see and this endpoint "
            "subscribes to (only `types`, when given): same event ids and bodies, signed with "
            "the endpoint's current secret. Answers `202` with how many were queued; their "
            "deliveries show the outcome. At most 10,000 events per replay."
        ),
        tags=TAGS,
        request=WebhookReplayInputSerializer,
        responses={
            202: WebhookReplayResultSerializer,
            **error_responses("invalid_period", "replay_too_large", "webhook_endpoint_disabled"),
        },
        examples=[
            OpenApiExample(
                "An outage",
                value={
                    "since": "2026-11-23T10:00:00Z",
                    "until": "2026-11-23T14:00:00Z",
                    "types": ["order.paid", "order.refunded"],
                },
                request_only=True,
            ),
            OpenApiExample(
                "Queued", value={"queued": 42}, response_only=True, status_codes=["202"]
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        endpoint = self.get_object()
        data = validated_input(WebhookReplayInputSerializer, request.data)
        queued = services.webhook_endpoint_replay(
            endpoint=endpoint,
            since=data["since"],
            until=data.get("until") or timezone.now(),
            types=data.get("types"),
        )
        return Response(
            WebhookReplayResultSerializer({"queued": queued}).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        summary="List an endpoint's deliveries, each with its attempts",
        tags=TAGS,
        responses={200: WebhookDeliverySerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=WebhookDeliveryFilter,
        serializer_class=WebhookDeliverySerializer,
    )
    def deliveries(self, request, pk=None):
        # The endpoint first (404 if it is not the caller's); the queryset and filters of this
        # action are the deliveries'.
        endpoint = get_object_or_404(selectors.webhook_endpoint_list(caller=request.user), pk=pk)
        self.check_object_permissions(request, endpoint)
        deliveries = self.filter_queryset(self.get_queryset().filter(endpoint=endpoint))
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


@extend_schema_view(
    retrieve=extend_schema(summary="Get a webhook delivery with its attempts", tags=TAGS),
)
class WebhookDeliveryViewSet(
    ActionPermissionsMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """One event owed to one endpoint; a partner may have it sent again."""

    serializer_class = WebhookDeliverySerializer
    action_permissions = {"retrieve": PARTNERS_AND_OPS, "retry": PARTNERS_AND_OPS}

    def get_queryset(self):
        return selectors.webhook_delivery_list(caller=self.request.user)

    @extend_schema(
        summary="Send a delivery again now",
        description=(
            "Queues one more attempt right away, whatever the delivery's status; the answer is "
            "`202` with the delivery, whose attempts show the outcome shortly after."
        ),
        tags=TAGS,
        request=None,
        responses={202: WebhookDeliverySerializer, **error_responses("webhook_endpoint_disabled")},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        delivery = services.webhook_delivery_retry(delivery=self.get_object())
        delivery = selectors.webhook_delivery_list(caller=request.user).get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        summary="List the events you may see (catch up after an outage)",
        description=(
            "Newest first; `?ordering=created` for oldest first. `sequence` numbers the events "
            "of one object 1, 2, 3, ... so they can be put in order."
        ),
        tags=["events"],
        examples=[
            OpenApiExample(
                "A page",
                value=EVENT_EXAMPLE,
                response_only=True,
                status_codes=["200"],
            )
        ],
    ),
    retrieve=extend_schema(summary="Get an event", tags=["events"]),
)
class EventViewSet(ActionPermissionsMixin, viewsets.ReadOnlyModelViewSet):
    """Events as webhooks carry them: ``{"id", "type", "created", "sequence", "data"}``."""

    serializer_class = EventSerializer
    filterset_class = EventFilter
    filter_backends = [*viewsets.ReadOnlyModelViewSet.filter_backends, filters.OrderingFilter]
    ordering_fields = ["created"]
    ordering = ["-created"]
    action_permissions = {"list": EVENT_READERS, "retrieve": EVENT_READERS}

    def get_queryset(self):
        return selectors.event_list(caller=self.request.user)
