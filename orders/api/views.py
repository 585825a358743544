"""Catalog, live session and order endpoints.

Each view reads its input with a shape-only serializer, calls one service, and answers with the
output serializer. Who may call each action comes from ``allow(...)``; for order moves it comes
from the status table itself (``orders.status.ORDER_MOVES``), so the table is the one place that
says both what an action does and who may do it.
"""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from livecommerce.api import validated_input
from livecommerce.errors import AppValidationError
from livecommerce.pagination import CursorPagination
from livecommerce.schema import ErrorItemSerializer, ErrorSerializer, error_responses
from orders import selectors, services
from orders.api.examples import (
    BRAND,
    CREATOR,
    HOST,
    LINE,
    NOW,
    ORDER_EXAMPLE,
    ORDER_VALUE,
    PRD,
    PRODUCT_VALUE,
    REFUND_VALUE,
    SESSION,
    SESSION_VALUE,
)
from orders.api.serializers import (
    LiveSessionCreateSerializer,
    LiveSessionSerializer,
    LiveSessionUpdateSerializer,
    OrderCancelSerializer,
    OrderCreateSerializer,
    OrderEventSerializer,
    OrderPaySerializer,
    OrderSerializer,
    OrderShipSerializer,
    ProductCreateSerializer,
    ProductSerializer,
    ProductUpdateSerializer,
    RefundCreateSerializer,
    RefundSerializer,
)
from orders.filters import LiveSessionFilter, OrderFilter, ProductFilter
from orders.status import LIVE_SESSION_MOVES, ORDER_MOVES
from partners.choices import PartnerKind, StaffRole
from partners.least_data import view_for
from partners.permissions import ActionPermissionsMixin, allow

STAFF = (StaffRole.OPS, StaffRole.FINANCE)
EVERY_PARTNER = tuple(PartnerKind.values)
READ_ALL = allow(staff=STAFF, partners=EVERY_PARTNER)
CATALOG_READ = allow(
    staff=STAFF, partners=(PartnerKind.HOST_APP, PartnerKind.FULFILLMENT, PartnerKind.BRAND)
)
CATALOG_WRITE = allow(partners=(PartnerKind.FULFILLMENT, PartnerKind.BRAND))
SESSION_WRITE = allow(partners=(PartnerKind.HOST_APP, PartnerKind.FULFILLMENT))
HOST_APP = allow(partners=(PartnerKind.HOST_APP,))


def _move_permission(table, name: str):
    move = table[name]
    return allow(staff=move.staff, partners=move.partners)


# The 400s a service sends for an amount it cannot take exactly in the order's currency.
MONEY_400 = ("invalid_amount", "too_many_decimal_places", "negative_amount")


def _post_errors(*codes: str) -> dict:
    """A POST's domain errors plus the ones every POST may answer (Idempotency-Key, size)."""
    return error_responses(
        *codes, "idempotency_key_in_use", "idempotency_key_reused", "request_too_large"
    )


class InventoryErrorItemSerializer(ErrorItemSerializer):
    available = serializers.IntegerField(
        required=False,
        help_text="With `insufficient_inventory`: the units of the line's product left.",
    )


class InventoryErrorSerializer(ErrorSerializer):
    """A 409 of placing an order: `insufficient_inventory` carries `available`."""

    errors = InventoryErrorItemSerializer(many=True)


SOLD_OUT_EXAMPLE = OpenApiExample(
    "insufficient_inventory (sold out)",
    value={
        "type": "client_error",
        "errors": [
            {
                "code": "insufficient_inventory",
                "detail": f"Only 0 of product {PRD} left; 1 asked.",
                "attr": "lines.0.quantity",
                "available": 0,
            }
        ],
    },
    response_only=True,
    status_codes=["409"],
)


def _with_available(responses: dict) -> dict:
    """The order's 409 documented with ``available`` beside ``code``, and a sold-out example."""
    conflict = responses[409]
    responses[409] = OpenApiResponse(
        InventoryErrorSerializer,
        description=conflict.description,
        examples=[SOLD_OUT_EXAMPLE, *conflict.examples],
    )
    return responses


class OldestFirstPagination(CursorPagination):
    """Histories read in the order things happened."""

    ordering = ("created", "id")


# --- Catalog ---------------------------------------------------------------------------------


EXPANDABLE = ("brand",)
EXPAND_PARAMETER = OpenApiParameter(
    "expand",
    {"type": "string", "enum": list(EXPANDABLE)},
    description='`brand` embeds the brand as `{"id", "name"}` instead of its id.',
)


@extend_validation_errors(["invalid_expand"], field_name="expand", actions=["list", "retrieve"])
@extend_schema_view(
    list=extend_schema(
        summary="List products",
        tags=["catalog"],
        description="A host app sees the products it may sell (an invite-only host app: its "
        "enrolled brands'); a brand its own; a fulfillment partner its brands'; staff all.",
        parameters=[EXPAND_PARAMETER],
        examples=[OpenApiExample("A product", value=PRODUCT_VALUE, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="Get a product",
        tags=["catalog"],
        parameters=[EXPAND_PARAMETER],
        examples=[OpenApiExample("A product", value=PRODUCT_VALUE, response_only=True)],
    ),
)
class ProductViewSet(
    ActionPermissionsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """A brand's catalog, kept by the brand or its fulfillment partner."""

    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    action_permissions = {
        "list": CATALOG_READ,
        "retrieve": CATALOG_READ,
        "create": CATALOG_WRITE,
        "partial_update": CATALOG_WRITE,
    }

    def get_queryset(self):
        products = selectors.product_list(caller=self.request.user)
        if "brand" in self._expand():
            products = products.select_related("brand")
        return products

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "expand": self._expand()}

    def _expand(self) -> set[str]:
        """``?expand=brand``: what to embed; anything else is a 400 naming what may be."""
        request = getattr(self, "request", None)
        raw = request.query_params.get("expand") if request is not None else None
        if raw is None or self.action not in ("list", "retrieve"):
            return set()
        asked = {part.strip() for part in raw.split(",")}
        if not asked <= set(EXPANDABLE):
            raise AppValidationError(
                "invalid_expand", f"expand takes: {', '.join(EXPANDABLE)}.", attr="expand"
            )
        return asked

    @extend_schema(
        summary="Add a product",
        tags=["catalog"],
        description="A brand adds to its own catalog (`brand` may be omitted); a fulfillment "
        "partner names one of the brands it fulfils. `price` is exact in `currency`: more "
        "decimal places than the currency has is a 400 (`too_many_decimal_places`).",
        request=ProductCreateSerializer,
        responses={
            201: ProductSerializer,
            **_post_errors("duplicate_sku", "invalid_reference", "invalid_currency", *MONEY_400),
        },
        examples=[
            OpenApiExample(
                "By a fulfillment partner",
                value={
                    "brand": BRAND,
                    "sku": "LIP-RED-01",
                    "title": "Velvet lipstick, red",
                    "category": "beauty",
                    "price": "19.99",
                    "currency": "USD",
                    "inventory": 120,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Created", value=PRODUCT_VALUE, response_only=True, status_codes=["201"]
            ),
        ],
    )
    def create(self, request):
        data = validated_input(ProductCreateSerializer, request.data)
        product = services.product_create(
            writer=request.user.partner, brand_id=data.pop("brand", None), **data
        )
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Update a product (price, inventory, ...)",
        tags=["catalog"],
        description="`inventory` sets the units on hand. A new `currency` needs a `price`.",
        request=ProductUpdateSerializer,
        responses={
            200: ProductSerializer,
            **error_responses("duplicate_sku", "invalid_currency", *MONEY_400),
        },
        examples=[
            OpenApiExample("Restock", value={"inventory": 300}, request_only=True),
            OpenApiExample("Updated", value=PRODUCT_VALUE, response_only=True),
        ],
    )
    def partial_update(self, request, pk=None):
        product = self.get_object()
        data = validated_input(ProductUpdateSerializer, request.data)
        product = services.product_update(product=product, **data)
        return Response(ProductSerializer(product).data)


# --- Live sessions ---------------------------------------------------------------------------


def _session_move_schema(name: str, summary: str):
    return extend_schema(
        summary=summary,
        tags=["live sessions"],
        description="Only the partner that produced the session may do this (others: 403).",
        request=None,
        responses={200: LiveSessionSerializer, **_post_errors("invalid_transition")},
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
        "start": _move_permission(LIVE_SESSION_MOVES, "start"),
        "end": _move_permission(LIVE_SESSION_MOVES, "end"),
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
            **_post_errors("brand_not_enrolled", "invalid_reference"),
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


# --- Orders ----------------------------------------------------------------------------------


def _order_move_schema(name: str, summary: str, *, request=None, codes=(), example=None):
    examples = [
        OpenApiExample(
            name, value={**ORDER_VALUE, "status": ORDER_MOVES[name].target}, response_only=True
        )
    ]
    if example is not None:
        examples.insert(0, OpenApiExample(f"{name} request", value=example, request_only=True))
    move = ORDER_MOVES[name]
    return extend_schema(
        summary=summary,
        tags=["orders"],
        description=f"From `{'`, `'.join(sorted(move.sources))}` to `{move.target}`. "
        f"Any other status: 409 `invalid_transition`.",
        request=request,
        responses={200: OrderSerializer, **_post_errors("invalid_transition", *codes)},
        examples=examples,
    )


@extend_schema_view(
    list=extend_schema(
        summary="List orders",
        tags=["orders"],
        description="A host app sees its orders, a fulfillment partner the orders it fulfils, "
        "a brand its orders, a creator the orders it earned on; staff all.",
        examples=[ORDER_EXAMPLE],
    ),
    retrieve=extend_schema(summary="Get an order", tags=["orders"], examples=[ORDER_EXAMPLE]),
)
class OrderViewSet(
    ActionPermissionsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Orders and their status table: pay, cancel, accept, ship, deliver, refunds, history."""

    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    action_permissions = {
        "list": READ_ALL,
        "retrieve": READ_ALL,
        "create": HOST_APP,
        "pay": _move_permission(ORDER_MOVES, "pay"),
        "cancel": _move_permission(ORDER_MOVES, "cancel"),
        "accept": _move_permission(ORDER_MOVES, "accept"),
        "ship": _move_permission(ORDER_MOVES, "ship"),
        "deliver": _move_permission(ORDER_MOVES, "deliver"),
        "refunds": READ_ALL,
        "refunds_create": _move_permission(ORDER_MOVES, "refund"),
        "events": READ_ALL,
    }

    def get_queryset(self):
        orders = selectors.order_list(caller=self.request.user)
        # Only the order's representation needs its lines; moves and sub-lists need the row.
        return orders if self.action in ("list", "retrieve") else orders.prefetch_related(None)

    def _out(self, order) -> dict:
        representation = getattr(order, "representation", None)
        if representation is not None:
            # What the service published in the order's event, as this caller may read it: one
            # representation per request, no second read or serialisation.
            return view_for(self.request.user, representation)
        order = selectors.order_list(caller=self.request.user).get(pk=order.pk)
        return OrderSerializer(order, context=self.get_serializer_context()).data

    @extend_schema(
        summary="Place an order",
        tags=["orders"],
        description="Prices come from the catalog, or from the live session's `live_prices` "
        "while it is `live` (each line shows `unit_price`, what is paid, beside `list_price`, "
        "the catalog's). Inventory is reserved now and held until `expires_at` (the session's "
        "`hold_seconds` after creation, else 900 s); an order not paid by then moves to "
        "`expired` and its units go back on sale. 409 `insufficient_inventory` if it would "
        'oversell, with `"available": N` (units left) beside `code` and `attr` naming the '
        "line (e.g. `lines.0.quantity`). One brand and one currency per order "
        "(422 `mixed_order`). A product the host app may not sell answers like an unknown one "
        "(400 `invalid_reference`); lines naming the same product are merged. A "
        "`live_session` must be broadcast on this host app; the order's creator is the "
        "session's creator. A suspended brand's products cannot be ordered (409 "
        "`brand_suspended`). A creator reads an order without the buyer, the shipping address "
        "and the payment reference (null).",
        request=OrderCreateSerializer,
        responses={
            201: OrderSerializer,
            **_with_available(
                _post_errors(
                    "insufficient_inventory",
                    "brand_suspended",
                    "mixed_order",
                    "invalid_reference",
                    *MONEY_400,
                )
            ),
        },
        examples=[
            OpenApiExample(
                "From a live show",
                value={
                    "lines": [{"product": PRD, "quantity": 2}],
                    "live_session": SESSION,
                    "buyer": {"reference": "viewer-8812", "email": "ana@example.com"},
                    "shipping_address": {"line1": "1 Main St", "city": "Austin", "country": "US"},
                    "shipping_amount": "4.99",
                    "tax_amount": "3.20",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Placed",
                value={**ORDER_VALUE, "status": "pending_payment", "paid_at": None},
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def create(self, request):
        data = validated_input(OrderCreateSerializer, request.data)
        buyer = data.get("buyer") or {}
        order = services.order_create(
            host_app=request.user.partner,
            lines=data["lines"],
            live_session_id=data.get("live_session"),
            buyer_reference=buyer.get("reference", ""),
            buyer_email=buyer.get("email", ""),
            shipping_address=data.get("shipping_address"),
            shipping_amount=data["shipping_amount"],
            tax_amount=data["tax_amount"],
            actor=str(request.user),
        )
        return Response(self._out(order), status=status.HTTP_201_CREATED)

    @_order_move_schema(
        "pay",
        "Pay an order",
        request=OrderPaySerializer,
        codes=("order_expired", "amount_mismatch", "no_commission_plan", *MONEY_400),
        example={"amount": "48.17", "payment_reference": "pi_3Q9x"},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def pay(self, request, pk=None):
        order = self.get_object()
        data = validated_input(OrderPaySerializer, request.data)
        order = services.order_pay(order=order, actor=str(request.user), **data)
        return Response(self._out(order))

    @_order_move_schema(
        "cancel",
        "Cancel an order (a paid one is refunded in full)",
        request=OrderCancelSerializer,
        example={"reason": "Buyer changed their mind"},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def cancel(self, request, pk=None):
        order = self.get_object()
        data = validated_input(OrderCancelSerializer, request.data)
        order = services.order_cancel(order=order, actor=str(request.user), **data)
        return Response(self._out(order))

    @_order_move_schema("accept", "Accept a paid order")
    @action(detail=True, methods=["post"], filterset_class=None)
    def accept(self, request, pk=None):
        order = services.order_accept(order=self.get_object(), actor=str(request.user))
        return Response(self._out(order))

    @_order_move_schema(
        "ship",
        "Ship an order",
        request=OrderShipSerializer,
        example={"carrier": "UPS", "tracking_number": "1Z999AA10123456784"},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def ship(self, request, pk=None):
        order = self.get_object()
        data = validated_input(OrderShipSerializer, request.data)
        order = services.order_ship(order=order, actor=str(request.user), **data)
        return Response(self._out(order))

    @_order_move_schema("deliver", "Mark an order delivered (the return window starts)")
    @action(detail=True, methods=["post"], filterset_class=None)
    def deliver(self, request, pk=None):
        order = services.order_deliver(order=self.get_object(), actor=str(request.user))
        return Response(self._out(order))

    @extend_schema(
        summary="List an order's refunds",
        tags=["orders"],
        responses={200: RefundSerializer(many=True)},
        examples=[OpenApiExample("A refund", value=REFUND_VALUE, response_only=True)],
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=None,
        pagination_class=OldestFirstPagination,
    )
    def refunds(self, request, pk=None):
        order = self.get_object()
        page = self.paginate_queryset(selectors.order_refund_list(order=order))
        return self.get_paginated_response(RefundSerializer(page, many=True).data)

    @extend_schema(
        summary="Refund an order, by lines or by amount",
        tags=["orders"],
        description="Send `lines` (each unit returns its unit price, optionally restocked) or "
        "`amount` (spread over merchandise first, then shipping, then tax). Allowed while the "
        "order is paid, accepted, shipped, delivered or completed. Refunds never exceed what "
        "was paid (409 `refund_exceeds_paid`); refunding everything moves the order to "
        "`refunded`.",
        request=RefundCreateSerializer,
        responses={
            201: RefundSerializer,
            **_post_errors(
                "invalid_transition", "refund_exceeds_paid", "invalid_reference", *MONEY_400
            ),
        },
        examples=[
            OpenApiExample(
                "Return one unit",
                value={
                    "lines": [{"line": LINE, "quantity": 1}],
                    "reason": "Wrong shade",
                    "restock": True,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Goodwill amount",
                value={"amount": "5.00", "reason": "Late delivery"},
                request_only=True,
            ),
            OpenApiExample(
                "Refunded", value=REFUND_VALUE, response_only=True, status_codes=["201"]
            ),
        ],
    )
    @refunds.mapping.post
    def refunds_create(self, request, pk=None):
        order = self.get_object()
        data = validated_input(RefundCreateSerializer, request.data)
        refund = services.refund_create(order=order, actor=str(request.user), **data)
        refund = selectors.order_refund_list(order=order).get(pk=refund.pk)
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="An order's history",
        tags=["orders"],
        description="Every step of the order, oldest first: who did what, from which status.",
        responses={200: OrderEventSerializer(many=True)},
        examples=[
            OpenApiExample(
                "Paid",
                value={
                    "id": "oev_01jd3x6q2c7h9k4m8n2p5r7t9v",
                    "type": "paid",
                    "from_status": "pending_payment",
                    "to_status": "paid",
                    "actor": f"partner:{HOST}",
                    "data": {"amount": "48.17", "payment_reference": "pi_3Q9x"},
                    "created": NOW,
                },
                response_only=True,
            )
        ],
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=None,
        pagination_class=OldestFirstPagination,
    )
    def events(self, request, pk=None):
        order = self.get_object()
        page = self.paginate_queryset(selectors.order_event_list(order=order))
        return self.get_paginated_response(
            OrderEventSerializer(page, many=True, context={"request": request}).data
        )
