"""Settlements: runs (finance), settlements and their lines (finance; a payee its own), payouts."""

from collections.abc import Iterator

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from commissions.settlements import payouts, scheduling, selectors
from commissions.settlements.api.serializers import (
    LINE_FIELDS,
    MarkFailedInputSerializer,
    MarkPaidInputSerializer,
    SettlementLineSerializer,
    SettlementRunInputSerializer,
    SettlementRunSerializer,
    SettlementSerializer,
)
from commissions.settlements.filters import SettlementFilter, SettlementRunFilter
from commissions.settlements.status import RUN_MOVES, SETTLEMENT_MOVES
from livecommerce import money
from livecommerce.api import validated_input
from livecommerce.csv_export import csv_response
from livecommerce.pagination import CursorPagination
from livecommerce.schema import error_responses
from livecommerce.wire import timestamp
from partners.choices import PartnerKind, StaffRole
from partners.permissions import ActionPermissionsMixin, allow

FINANCE = allow(staff=(StaffRole.FINANCE,))
# Payees: the partners the ledger owes money to. Host apps earn nothing, ops runs no money.
SETTLEMENT_READERS = allow(
    staff=(StaffRole.FINANCE,),
    partners=(PartnerKind.BRAND, PartnerKind.CREATOR, PartnerKind.FULFILLMENT),
)


def _move_permission(table, name: str):
    """Who may make a move: the status table says (``commissions.settlements.status``)."""
    move = table[name]
    return allow(staff=move.staff, partners=move.partners)


RUN_EXAMPLE = {
    "id": "run_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "period_end": "2026-11-22",
    "currency": "USD",
    "trigger": "request",
    "status": "queued",
    "settlement_count": 0,
    "line_count": 0,
    "net_payout": "0.00",
    "below_minimum_count": 0,
    "non_positive_count": 0,
    "attempts": 0,
    "error": None,
    "created": "2026-11-23T09:00:00.000000Z",
    "started": None,
    "finished": None,
}
SETTLEMENT_EXAMPLE = {
    "id": "stl_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "run": "run_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "partner": "prt_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "currency": "USD",
    "period_end": "2026-11-22",
    "status": "pending",
    "gross": "1000.00",
    "platform_commission": "80.00",
    "creator_commission": "50.00",
    "fulfillment_fees": "30.00",
    "refunds": "19.99",
    "adjustments": "0.00",
    "net_payout": "820.01",
    "line_count": 42,
    "ledger_entry": "je_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "payout_entry": None,
    "payout_reference": None,
    "failure_reason": None,
    "created": "2026-11-23T02:00:03.000000Z",
    "paid_at": None,
    "failed_at": None,
}


def _wants_csv(request) -> bool:
    return request.query_params.get("format") == "csv" or "text/csv" in request.headers.get(
        "Accept", ""
    )


class SettlementLinePagination(CursorPagination):
    ordering = ("id",)


def _csv_rows(queryset) -> Iterator[list]:
    yield LINE_FIELDS
    rows = queryset.values_list(
        "id",
        "entry_id",
        "kind",
        "share",
        "order_id",
        "order_line_id",
        "created",
        "currency",
        "debit",
        "credit",
    )
    for (
        line_id,
        entry,
        kind,
        share,
        order,
        order_line,
        created,
        cur,
        debit,
        credit,
    ) in rows.iterator(chunk_size=2000):
        yield (
            [
                line_id,
                entry,
                kind,
                share,
                order or "",
                order_line or "",
                timestamp(created),
                cur,
                money.to_decimal_string(debit, cur),
                money.to_decimal_string(credit, cur),
                money.to_decimal_string(credit - debit, cur),
            ]
        )


@extend_schema_view(
    list=extend_schema(
        summary="List settlements",
        description="Finance sees every settlement; a payee partner its own.",
        tags=["settlements"],
    ),
    retrieve=extend_schema(summary="Get a settlement", tags=["settlements"]),
)
class SettlementViewSet(ActionPermissionsMixin, viewsets.ReadOnlyModelViewSet):
    """Settlements: what each payee is paid per currency and run, and their payouts."""

    serializer_class = SettlementSerializer
    filterset_class = SettlementFilter
    action_permissions = {
        "list": SETTLEMENT_READERS,
        "retrieve": SETTLEMENT_READERS,
        "lines": SETTLEMENT_READERS,
        "run": _move_permission(RUN_MOVES, "request"),
        "mark_paid": _move_permission(SETTLEMENT_MOVES, "mark_paid"),
        "mark_failed": _move_permission(SETTLEMENT_MOVES, "mark_failed"),
    }

    def get_queryset(self):
        return selectors.settlement_list(caller=self.request.user)

    def perform_content_negotiation(self, request, force=False):
        # ``?format=csv`` is DRF's format override: without this, DRF would look for a CSV
        # renderer and answer 404. The lines action streams its CSV itself; errors stay JSON.
        if getattr(self, "action", None) == "lines" and _wants_csv(request):
            return renderers.JSONRenderer(), renderers.JSONRenderer.media_type
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        summary="Start a settlement run",
        description=(
            "Settles `currency` up to the end of `period_end` (UTC) in the background, on the "
            "`settlements` queue: every payee's available balance becomes one settlement. "
            "There is one run per period end and currency: `202` when the run was created (or "
            "a failed one started again), `200` with the same run when it already exists. Poll "
            "`GET /settlement-runs/{id}`."
        ),
        tags=["settlements"],
        request=SettlementRunInputSerializer,
        responses={
            202: SettlementRunSerializer,
            200: SettlementRunSerializer,
            **error_responses("period_end_in_future", "invalid_currency"),
        },
        examples=[
            OpenApiExample(
                "Settle USD up to yesterday",
                value={"period_end": "2026-11-22", "currency": "USD"},
                request_only=True,
            ),
            OpenApiExample("Queued", value=RUN_EXAMPLE, response_only=True, status_codes=["202"]),
        ],
    )
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def run(self, request):
        data = validated_input(SettlementRunInputSerializer, request.data)
        run, queued = scheduling.settlement_run_request(
            period_end=data["period_end"], currency=data["currency"]
        )
        return Response(
            SettlementRunSerializer(run).data,
            status=status.HTTP_202_ACCEPTED if queued else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="List the ledger lines a settlement covers",
        description=(
            "Every ledger line the settlement covers, with its order, oldest first. "
            "`?format=csv` (or `Accept: text/csv`) streams them all as CSV, header row first, "
            "same columns as the JSON fields."
        ),
        tags=["settlements"],
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=["json", "csv"],
                required=False,
                description="`csv` for a CSV download of every line (not paginated)",
            )
        ],
        responses={
            (200, "application/json"): SettlementLineSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="CSV with a header row; amounts as decimals"
            ),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=None,
        pagination_class=SettlementLinePagination,
    )
    def lines(self, request, pk=None):
        settlement = self.get_object()
        queryset = selectors.settlement_lines(settlement=settlement)
        if _wants_csv(request):
            return csv_response(_csv_rows(queryset), filename=f"{settlement.pk}-lines.csv")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(SettlementLineSerializer(page, many=True).data)

    @extend_schema(
        summary="Mark a settlement paid",
        description=(
            "The payout reached the payee: its amount moves from in payout to paid out, and "
            "`settlement.paid` is sent to the payee. Only a pending settlement, and only while "
            "its payee owes nothing in the currency: a payee whose balance went negative after "
            "the settlement was made (a refund after release) is `409 payee_owes`; mark the "
            "settlement failed instead, and the next run nets the debt off."
        ),
        tags=["settlements"],
        request=MarkPaidInputSerializer,
        responses={
            200: SettlementSerializer,
            **error_responses("settlement_not_pending", "payee_owes"),
        },
        examples=[
            OpenApiExample(
                "Paid", value={"payout_reference": "wire-2026-11-23-0042"}, request_only=True
            )
        ],
    )
    @action(detail=True, methods=["post"], url_path="mark-paid", filterset_class=None)
    def mark_paid(self, request, pk=None):
        settlement = self.get_object()
        data = validated_input(MarkPaidInputSerializer, request.data)
        settlement = payouts.settlement_mark_paid(
            settlement=settlement, payout_reference=data["payout_reference"]
        )
        return Response(SettlementSerializer(settlement).data)

    @extend_schema(
        summary="Mark a settlement's payout failed",
        description=(
            "The payout did not arrive: its amount returns from in payout to available, where "
            "the next run settles it again, and `settlement.failed` is sent to the payee. Only "
            "a pending settlement."
        ),
        tags=["settlements"],
        request=MarkFailedInputSerializer,
        responses={200: SettlementSerializer, **error_responses("settlement_not_pending")},
        examples=[
            OpenApiExample("Bounced", value={"reason": "Account closed (R02)"}, request_only=True),
            OpenApiExample(
                "A settlement",
                value={**SETTLEMENT_EXAMPLE, "status": "failed"},
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    @action(detail=True, methods=["post"], url_path="mark-failed", filterset_class=None)
    def mark_failed(self, request, pk=None):
        settlement = self.get_object()
        data = validated_input(MarkFailedInputSerializer, request.data)
        settlement = payouts.settlement_mark_failed(settlement=settlement, reason=data["reason"])
        return Response(SettlementSerializer(settlement).data)


@extend_schema_view(
    list=extend_schema(summary="List settlement runs", tags=["settlements"]),
    retrieve=extend_schema(
        summary="Get a settlement run",
        description="Poll a run started by `POST /settlements/run` or by the daily schedule.",
        tags=["settlements"],
        examples=[OpenApiExample("A run", value=RUN_EXAMPLE, response_only=True)],
    ),
)
class SettlementRunViewSet(ActionPermissionsMixin, viewsets.ReadOnlyModelViewSet):
    """Settlement runs (finance)."""

    serializer_class = SettlementRunSerializer
    filterset_class = SettlementRunFilter
    action_permissions = {"list": FINANCE, "retrieve": FINANCE}

    def get_queryset(self):
        return selectors.settlement_run_list(caller=self.request.user)
