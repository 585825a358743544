"""Live sessions: scheduled, started and ended by the partner that produced them; the moves and
who may make them come from ``orders.status.LIVE_SESSION_MOVES``."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from livecommerce.api import validated_input
from livecommerce.schema import error_responses
from orders import selectors, services
from orders.api.examples import CREATOR, HOST, PRD, SESSION_VALUE
from orders.api.serializers import (
    LiveSessionCreateSerializer,
    LiveSessionSerializer,
    LiveSessionUpdateSerializer,
)
from orders.api.views.common import MONEY_400, READ_ALL, move_permission, post_errors
from orders.filters import LiveSessionFilter
from orders.status import LIVE_SESSION_MOVES
from partners.choices import PartnerKind
from partners.permissions import ActionPermissionsMixin, allow

SESSION_WRITE = allow(partners=(PartnerKind.HOST_APP, PartnerKind.FULFILLMENT))


def _session_move_schema(name: str, summary: str):
    return extend_schema(
        summary=summary,
        tags=["live sessions"],
        description="Only the partner that produced the session may do this (others: 403).",
        request=None,
        responses={200: LiveSessionSerializer, **post_errors("invalid_transition")},
        examples=[
            OpenApiExample(
                name,
                value={**SESSION_VALUE, "status": LIVE_SESSION_MOVES[name].target},
                response_only=True,
            )
        ],
    )


@extend_schema_view(
    list=extend_schema(
        summary="List live sessions",
        tags=["live sessions"],
        examples=[OpenApiExample("A session", value=SESSION_VALUE, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="Get a live session",
        tags=["live sessions"],
        examples=[OpenApiExample("A session", value=SESSION_VALUE, response_only=True)],
    ),
)
class LiveSessionViewSet(
    ActionPermissionsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Live shows: a creator, the products shown, the host apps it is broadcast on."""

    serializer_class = LiveSessionSerializer
    filterset_class = LiveSessionFilter
    action_permissions = {
        "list": READ_ALL,
        "retrieve": READ_ALL,
        "create": SESSION_WRITE,
        "partial_update": SESSION_WRITE,
        "start": move_permission(LIVE_SESSION_MOVES, "start"),
        "end": move_permission(LIVE_SESSION_MOVES, "end"),
    }

    def get_queryset(self):
        sessions = selectors.live_session_list(caller=self.request.user)
        return sessions if self.action in ("list", "retrieve") else sessions.prefetch_related(None)

    def _out(self, session) -> dict:
        sessions = selectors.live_session_list(caller=self.request.user)
        return LiveSessionSerializer(sessions.get(pk=session.pk)).data

    @extend_schema(
        summary="Schedule a live session",
        tags=["live sessions"],
        description="A host app broadcasts its own shows on itself (`host_apps` defaults to it); "
        "a fulfillment partner names the host apps. Every host app must be allowed to sell "
        "every brand shown (422 `brand_not_enrolled`). `live_prices` (product id -> price in "
        "the product's currency, for products the show features) are paid by orders naming "
        "the show while it is `live`; `hold_seconds` is how long its unpaid orders hold their "
        "units (default 900).",
        request=LiveSessionCreateSerializer,
        responses={
            201: LiveSessionSerializer,
            **post_errors("brand_not_enrolled", "invalid_reference"),
        },
        examples=[
            OpenApiExample(
                "By a fulfillment partner",
                value={
                    "creator": CREATOR,
                    "title": "Friday glow-up live",
                    "scheduled_start": "2026-11-27T18:00:00Z",
                    "products": [PRD],
                    "host_apps": [HOST],
                    "hold_seconds": 300,
                    "live_prices": {PRD: "14.99"},
                },
                request_only=True,
            ),
            OpenApiExample(
                "Scheduled", value=SESSION_VALUE, response_only=True, status_codes=["201"]
            ),
        ],
    )
    def create(self, request):
        data = validated_input(LiveSessionCreateSerializer, request.data)
        session = services.live_session_create(
            producer=request.user.partner,
            title=data["title"],
            scheduled_start=data["scheduled_start"],
            creator_id=data.get("creator"),
            product_ids=data["products"],
            host_app_ids=data.get("host_apps"),
            hold_seconds=data.get("hold_seconds"),
            live_prices=data.get("live_prices"),
        )
        return Response(self._out(session), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a show's live prices or hold",
        tags=["live sessions"],
        description="Only the partner that produced the session may do this (others: 403). "
        "`live_prices` replaces every live price (a flash price mid-show; `{}` ends them); "
        "orders already placed keep their price. `hold_seconds` applies to orders placed "
        "from now on.",
        request=LiveSessionUpdateSerializer,
        responses={
            200: LiveSessionSerializer,
            **error_responses("invalid_reference", *MONEY_400),
        },
        examples=[
            OpenApiExample("Flash price", value={"live_prices": {PRD: "9.99"}}, request_only=True),
            OpenApiExample(
                "Updated",
                value={**SESSION_VALUE, "live_prices": {PRD: "9.99"}},
                response_only=True,
            ),
        ],
    )
    def partial_update(self, request, pk=None):
        session = self.get_object()
        data = validated_input(LiveSessionUpdateSerializer, request.data)
        session = services.live_session_update(session=session, actor=request.user.partner, **data)
        return Response(self._out(session))

    @_session_move_schema("start", "Go live (scheduled -> live)")
    @action(detail=True, methods=["post"], filterset_class=None)
    def start(self, request, pk=None):
        session = services.live_session_start(session=self.get_object(), actor=request.user.partner)
        return Response(self._out(session))

    @_session_move_schema("end", "End the show (live -> ended)")
    @action(detail=True, methods=["post"], filterset_class=None)
    def end(self, request, pk=None):
        session = services.live_session_end(session=self.get_object(), actor=request.user.partner)
        return Response(self._out(session))
