"""Orders: placing one, its moves through ``orders.status.ORDER_MOVES`` (who may make each and what
the docs say come from the table), and its history."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from livecommerce.api import validated_input
from livecommerce.schema import ErrorItemSerializer, ErrorSerializer
from orders import selectors, services
from orders.api.examples import HOST, NOW, ORDER_EXAMPLE, ORDER_VALUE, PRD, SESSION
from orders.api.serializers import (
    OrderCancelSerializer,
    OrderCreateSerializer,
    OrderEventSerializer,
    OrderPaySerializer,
    OrderSerializer,
    OrderShipSerializer,
)
from orders.api.views.common import (
    MONEY_400,
    READ_ALL,
    OldestFirstPagination,
    move_permission,
    post_errors,
)
from orders.api.views.refunds import OrderRefundActions
from orders.filters import OrderFilter
from orders.status import ORDER_MOVES
from partners.choices import PartnerKind
from partners.least_data import view_for
from partners.permissions import ActionPermissionsMixin, allow

HOST_APP = allow(partners=(PartnerKind.HOST_APP,))


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
        responses={200: OrderSerializer, **post_errors("invalid_transition", *codes)},
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
    OrderRefundActions,
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
        "pay": move_permission(ORDER_MOVES, "pay"),
        "cancel": move_permission(ORDER_MOVES, "cancel"),
        "accept": move_permission(ORDER_MOVES, "accept"),
        "ship": move_permission(ORDER_MOVES, "ship"),
        "deliver": move_permission(ORDER_MOVES, "deliver"),
        "refunds": READ_ALL,
        "refunds_create": move_permission(ORDER_MOVES, "refund"),
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
                post_errors(
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
