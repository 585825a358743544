from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from commissions import plans, selectors
from commissions.api.debt_serializers import AsOfQuerySerializer
from commissions.api.serializers import (
    BalanceSerializer,
    CommissionPlanInputSerializer,
    CommissionPlanSerializer,
    LedgerEntrySerializer,
    OrderBreakdownSerializer,
)
from commissions.filters import CommissionPlanFilter, LedgerEntryFilter
from commissions.models import LedgerEntry
from livecommerce.api import validated_input
from livecommerce.schema import error_responses
from partners import least_data
from partners.choices import PartnerKind, StaffRole
from partners.permissions import ActionPermissionsMixin, allow

OPS = allow(staff=(StaffRole.OPS,))
STAFF = allow(staff=(StaffRole.OPS, StaffRole.FINANCE))
ALL_PARTNERS = tuple(PartnerKind.values)
# The ledger is money: finance reads all of it, a partner its own accounts; ops has no business.
LEDGER_READERS = allow(staff=(StaffRole.FINANCE,), partners=ALL_PARTNERS)
ORDER_READERS = allow(staff=(StaffRole.OPS, StaffRole.FINANCE), partners=ALL_PARTNERS)

PLAN_ERRORS = error_responses(
    "rates_exceed_100_percent",
    "currency_required",
    "invalid_effective_range",
    "invalid_reference",
    "invalid_currency",
    "invalid_amount",
    "too_many_decimal_places",
    "negative_amount",
)

PLAN_EXAMPLE = OpenApiExample(
    "A brand's plan in USD",
    value={
        "name": "Glow, US launch",
        "platform_rate_bps": 800,
        "creator_rate_bps": 500,
        "fulfillment_rate_bps": 300,
        "fulfillment_fee_fixed": "1.50",
        "currency": "USD",
        "brand": "prt_01jd3x6q2c7h9k4m8n2p5r7t9v",
        "effective_from": "2026-12-01T00:00:00Z",
    },
    request_only=True,
)

BREAKDOWN_EXAMPLE = OpenApiExample(
    "A USD order, one partial refund",
    response_only=True,
    value={
        "order": "ord_01jd3x6q2c7h9k4m8n2p5r7t9v",
        "currency": "USD",
        "status": "delivered",
        "plan": {
            "id": "cpl_01jd3x6q2c7h9k4m8n2p5r7t9v",
            "name": "Default",
            "fulfillment_fee_fixed": "1.50",
        },
        "lines": [
            {
                "line": "oln_01jd3x6q2c7h9k4m8n2p5r7t9v",
                "sku": "LIP-001",
                "quantity": 2,
                "paid": "39.98",
                "platform_commission": "3.20",
                "creator_commission": "2.00",
                "fulfillment_fee": "2.70",
                "brand_net": "32.08",
                "refunded": "19.99",
                "rates": {
                    "plan": "cpl_01jd3x6q2c7h9k4m8n2p5r7t9v",
                    "platform_rate_bps": 800,
                    "creator_rate_bps": 500,
                    "fulfillment_rate_bps": 300,
                },
            }
        ],
        "totals": {
            "paid": "48.98",
            "refunded": "19.99",
            "platform_commission": "1.60",
            "creator_commission": "1.00",
            "fulfillment_fees": "1.35",
            "shipping": "5.00",
            "tax": "4.00",
            "brand_net": "16.04",
        },
        "refunds": [
            {
                "refund": "rfd_01jd3x6q2c7h9k4m8n2p5r7t9v",
                "entry": "je_01jd3x6q2c7h9k4m8n2p5r7t9v",
                "created": "2026-12-02T10:00:00.000000Z",
                "amount": "19.99",
                "platform_commission": "1.60",
                "creator_commission": "1.00",
                "fulfillment_fees": "1.35",
                "shipping": "0.00",
                "tax": "0.00",
                "brand_net": "16.04",
                "lines": [
                    {
                        "line": "oln_01jd3x6q2c7h9k4m8n2p5r7t9v",
                        "amount": "19.99",
                        "platform_commission": "1.60",
                        "creator_commission": "1.00",
                        "fulfillment_fee": "1.35",
                        "brand_net": "16.04",
                    }
                ],
            }
        ],
    },
)


@extend_schema_view(
    list=extend_schema(summary="List commission plans", tags=["commissions"]),
    retrieve=extend_schema(summary="Get a commission plan", tags=["commissions"]),
)
class CommissionPlanViewSet(ActionPermissionsMixin, viewsets.ReadOnlyModelViewSet):
    """Commission plans: ops writes them, ops and finance read them."""

    serializer_class = CommissionPlanSerializer
    filterset_class = CommissionPlanFilter
    action_permissions = {"list": STAFF, "retrieve": STAFF, "create": OPS, "partial_update": OPS}

    def get_queryset(self):
        return selectors.commission_plan_list()

    @extend_schema(
        summary="Create a commission plan",
        tags=["commissions"],
        request=CommissionPlanInputSerializer,
        responses={201: CommissionPlanSerializer, **PLAN_ERRORS},
        examples=[PLAN_EXAMPLE],
    )
    def create(self, request):
        data = validated_input(CommissionPlanInputSerializer, request.data)
        plan = plans.commission_plan_create(**data, actor=request.user)
        return Response(CommissionPlanSerializer(plan).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Edit a commission plan (orders already paid keep what they were posted)",
        tags=["commissions"],
        request=CommissionPlanInputSerializer(partial=True),
        responses={200: CommissionPlanSerializer, **PLAN_ERRORS},
        examples=[
            OpenApiExample(
                "End a plan", value={"effective_to": "2027-01-01T00:00:00Z"}, request_only=True
            )
        ],
    )
    def partial_update(self, request, pk=None):
        plan = self.get_object()
        data = validated_input(CommissionPlanInputSerializer, request.data, partial=True)
        plan = plans.commission_plan_update(plan=plan, **data, actor=request.user)
        return Response(CommissionPlanSerializer(plan).data)


class OrderBreakdownView(APIView):
    """Where one order's money went: the one place a partner or finance looks."""

    permission_classes = [ORDER_READERS]

    @extend_schema(
        summary="An order's commission breakdown",
        tags=["commissions"],
        responses={200: OrderBreakdownSerializer},
        examples=[BREAKDOWN_EXAMPLE],
    )
    def get(self, request, pk: str):
        order = selectors.order_for_breakdown(caller=request.user, order_id=pk)
        breakdown = selectors.order_breakdown(order=order)
        data = OrderBreakdownSerializer(breakdown, context={"currency": order.currency}).data
        # A creator sees its own commission, not the other parties' shares (least data).
        return Response(least_data.view_for(request.user, data))


@extend_schema_view(
    get=extend_schema(
        summary="List ledger entries (finance: all; a partner: its own accounts' lines)",
        tags=["ledger"],
    )
)
class LedgerEntryListView(generics.ListAPIView):
    """Journal entries. A partner sees the entries touching its accounts, with only its lines."""

    serializer_class = LedgerEntrySerializer
    filterset_class = LedgerEntryFilter
    permission_classes = [LEDGER_READERS]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return LedgerEntry.objects.none()
        return selectors.ledger_entry_list(caller=self.request.user)


class BalanceView(APIView):
    """A partner's balances per currency, now or at a past moment."""

    permission_classes = [LEDGER_READERS]

    @extend_schema(
        summary="Balances per currency: pending, available, in payout, paid out, owed",
        description=(
            "From the ledger. `available` goes below zero when a refund after the money was "
            "released, settled or paid out takes back more than is left: the payee then owes "
            "it, and `owed` says how much (0 otherwise). `?as_of=` gives the balances at that "
            "moment (every ledger line created at or before it)."
        ),
        tags=["ledger"],
        parameters=[AsOfQuerySerializer],
        responses={
            200: BalanceSerializer(many=True),
            **error_responses("invalid_reference", "required"),
        },
        examples=[
            OpenApiExample(
                "A creator that owes",
                response_only=True,
                value=[
                    {
                        "currency": "JPY",
                        "pending": "12000",
                        "available": "0",
                        "in_payout": "0",
                        "paid_out": "0",
                        "owed": "0",
                    },
                    {
                        "currency": "USD",
                        "pending": "0.00",
                        "available": "-5.00",
                        "in_payout": "0.00",
                        "paid_out": "15.00",
                        "owed": "5.00",
                    },
                ],
            )
        ],
    )
    def get(self, request):
        query = validated_query(AsOfQuerySerializer, request.query_params)
        partner = selectors.balance_partner(caller=request.user, partner_id=query.get("partner"))
        rows = selectors.partner_balances(partner=partner, as_of=query.get("as_of"))
        return Response(BalanceSerializer(rows, many=True).data)


def validated_query(serializer_class, params) -> dict:
    serializer = serializer_class(data=params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
