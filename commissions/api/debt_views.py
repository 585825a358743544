"""Debts: finance's adjustments and payees' statements (JSON, or CSV with ``?format=csv``)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, status
from rest_framework.response import Response

from commissions import debts, selectors
from commissions.api.debt_serializers import (
    AdjustmentInputSerializer,
    AdjustmentSerializer,
    StatementQuerySerializer,
    StatementSerializer,
)
from commissions.api.report_views import INVALID_QUERY, ReportAPIView, csv_response
from commissions.days import day_start
from commissions.filters import AdjustmentFilter
from commissions.models import Adjustment
from livecommerce import money
from livecommerce.api import check_currency, parse_amount, validated_input
from livecommerce.errors import AppValidationError
from livecommerce.schema import error_responses
from livecommerce.wire import timestamp
from partners.choices import PartnerKind, StaffRole
from partners.models import Partner
from partners.permissions import allow

FINANCE = allow(staff=(StaffRole.FINANCE,))
# Payees: the partners the ledger owes money to (and who may owe it back).
PAYEE_READERS = allow(
    staff=(StaffRole.FINANCE,),
    partners=(PartnerKind.BRAND, PartnerKind.CREATOR, PartnerKind.FULFILLMENT),
)

ADJUSTMENT_EXAMPLE = {
    "id": "adj_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "partner": "prt_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "currency": "USD",
    "amount": "5.00",
    "kind": "write_off",
    "reason": "Creator left the platform; refund after payout not recoverable",
    "ledger_entry": "je_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "created_by": "staff:finance",
    "created": "2026-11-24T10:00:00.000000Z",
}

STATEMENT_EXAMPLE = {
    "partner": "prt_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "currency": "USD",
    "date_from": "2026-11-01",
    "date_to": "2026-11-30",
    "opening": "0.00",
    "lines": [
        {
            "entry": "je_01jd3x6q2c7h9k4m8n2p5r7t9a",
            "created": "2026-11-02T10:00:00.000000Z",
            "kind": "sale",
            "order": "ord_01jd3x6q2c7h9k4m8n2p5r7t9v",
            "settlement": None,
            "description": "Payment of ord_01jd3x6q2c7h9k4m8n2p5r7t9v under plan cpl_01jd...",
            "amount": "5.00",
            "balance": "5.00",
        },
        {
            "entry": "je_01jd3x6q2c7h9k4m8n2p5r7t9b",
            "created": "2026-11-20T02:00:03.000000Z",
            "kind": "payout",
            "order": None,
            "settlement": "stl_01jd3x6q2c7h9k4m8n2p5r7t9v",
            "description": "Payout of stl_01jd3x6q2c7h9k4m8n2p5r7t9v: wire-0042",
            "amount": "-5.00",
            "balance": "0.00",
        },
        {
            "entry": "je_01jd3x6q2c7h9k4m8n2p5r7t9c",
            "created": "2026-11-22T09:12:40.000000Z",
            "kind": "refund",
            "order": "ord_01jd3x6q2c7h9k4m8n2p5r7t9v",
            "settlement": None,
            "description": "Refund rfd_01jd3x6q2c7h9k4m8n2p5r7t9v of ord_01jd3x6q2c7h9k4m8n...",
            "amount": "-5.00",
            "balance": "-5.00",
        },
    ],
    "closing": "-5.00",
}


@extend_schema_view(
    get=extend_schema(
        summary="List adjustments (finance)",
        description="Write-offs, repayments and goodwill credits, newest first; never edited.",
        tags=["ledger"],
    ),
)
class AdjustmentListCreateView(generics.ListAPIView):
    """Finance's adjustments of payees' balances."""

    serializer_class = AdjustmentSerializer
    filterset_class = AdjustmentFilter
    permission_classes = [FINANCE]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Adjustment.objects.none()
        return debts.adjustment_list(caller=self.request.user)

    @extend_schema(
        summary="Record an adjustment: a write-off, a repayment or a goodwill credit (finance)",
        description=(
            "Posts a balanced ledger entry (kind `adjustment`) crediting the payee's available "
            "balance and debiting the platform's account of the kind; recorded in the audit "
            "log with its reason. A `write_off` (the platform absorbs a debt) or a `repayment` "
            "(the payee paid it back outside the service) is at most what the payee owes "
            "(`409 adjustment_exceeds_owed`); a `credit` is a goodwill credit. `partner` is a "
            "payee: a brand, a creator or a fulfillment partner; an unknown partner or one of "
            "another kind (a host app, which the ledger never pays) is `400 invalid_reference` "
            "(attr `partner`)."
        ),
        tags=["ledger"],
        request=AdjustmentInputSerializer,
        responses={
            201: AdjustmentSerializer,
            **error_responses(
                "adjustment_exceeds_owed",
                "invalid_reference",
                "invalid_currency",
                "invalid_amount",
                "too_many_decimal_places",
                "negative_amount",
            ),
        },
        examples=[
            OpenApiExample(
                "Write a debt off",
                value={
                    "partner": "prt_01jd3x6q2c7h9k4m8n2p5r7t9v",
                    "currency": "USD",
                    "amount": "5.00",
                    "kind": "write_off",
                    "reason": "Creator left the platform; refund after payout not recoverable",
                },
                request_only=True,
            ),
            OpenApiExample("Recorded", value=ADJUSTMENT_EXAMPLE, response_only=True),
        ],
    )
    def post(self, request):
        data = validated_input(AdjustmentInputSerializer, request.data)
        check_currency(data["currency"])
        amount = parse_amount(data["amount"], data["currency"], attr="amount")
        if amount <= 0:
            raise AppValidationError("invalid_amount", "More than zero, please.", attr="amount")
        partner = Partner.objects.filter(pk=data["partner"]).first()
        if partner is None:
            raise AppValidationError("invalid_reference", "No such partner.", attr="partner")
        adjustment = debts.adjustment_create(
            partner=partner,
            currency=data["currency"],
            amount=amount,
            kind=data["kind"],
            reason=data["reason"],
            actor=request.user,
        )
        return Response(AdjustmentSerializer(adjustment).data, status=status.HTTP_201_CREATED)


STATEMENT_CSV_COLUMNS = (
    "entry",
    "created",
    "kind",
    "order",
    "settlement",
    "description",
    "amount",
    "balance",
)


def statement_csv_rows(statement: debts.Statement):
    """The statement as CSV rows: a header, the opening, every line, the closing."""

    def amount(minor: int) -> str:
        return money.to_decimal_string(minor, statement.currency)

    yield STATEMENT_CSV_COLUMNS
    start = day_start(statement.date_from)
    opening = amount(statement.opening)
    yield ("", timestamp(start), "opening", "", "", "Opening balance", "", opening)
    for line in statement.lines:
        yield (
            line["entry"],
            timestamp(line["created"]),
            line["kind"],
            line["order"] or "",
            line["settlement"] or "",
            line["description"],
            amount(line["amount"]),
            amount(line["balance"]),
        )
    yield ("", "", "closing", "", "", "Closing balance", "", amount(statement.closing))


class StatementView(ReportAPIView):
    """A payee's statement: opening, every ledger entry that moved its balance, closing."""

    permission_classes = [PAYEE_READERS]

    @extend_schema(
        summary="A payee's statement for a period (JSON, or CSV with ?format=csv)",
        description=(
            "Follows what the platform holds for the payee in one currency: pending + "
            "available + in payout (negative while it owes). `opening` + the lines' `amount` "
            "= `closing`; each line's `balance` is the balance after it, and each equals that "
            "sum of `GET /balances?as_of=` at its moment. A payout marked paid is a line that "
            "takes the balance down; a release or a settlement moves money between the three "
            "and is no line. Finance names the partner; a payee reads its own."
        ),
        tags=["ledger"],
        parameters=[
            StatementQuerySerializer,
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=["json", "csv"],
                description="`csv` streams the statement as CSV (`text/csv`), header row first",
            ),
        ],
        responses={
            (200, "application/json"): StatementSerializer,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="CSV: entry,created,kind,order,settlement,description,amount,balance;"
                " an opening row first and a closing row last",
            ),
            400: INVALID_QUERY,
        },
        examples=[OpenApiExample("A creator's month", value=STATEMENT_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        serializer = StatementQuerySerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        query = serializer.validated_data
        partner = selectors.balance_partner(caller=request.user, partner_id=query.get("partner"))
        statement = debts.statement_build(
            partner=partner,
            currency=query["currency"],
            date_from=query["date_from"],
            date_to=query["date_to"],
        )
        if self.wants_csv():
            return csv_response(
                statement_csv_rows(statement),
                filename=(
                    f"statement_{partner.pk}_{statement.currency}_{statement.date_from}_"
                    f"{statement.date_to}.csv"
                ),
            )
        return Response(
            StatementSerializer(statement, context={"currency": statement.currency}).data
        )
