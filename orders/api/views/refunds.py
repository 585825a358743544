"""An order's refunds: listed oldest first, and made by lines or by amount through
``services.refund_create`` (the ``refund`` move of ``orders.status.ORDER_MOVES``)."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from livecommerce.api import validated_input
from orders import selectors, services
from orders.api.examples import LINE, REFUND_VALUE
from orders.api.serializers import RefundCreateSerializer, RefundSerializer
from orders.api.views.common import MONEY_400, OldestFirstPagination, post_errors


class OrderRefundActions:
    """``GET`` and ``POST /orders/{id}/refunds``, mixed into ``OrderViewSet`` (which says who may
    call them in its ``action_permissions``)."""

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
            **post_errors(
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
