"""Shapes of the commissions API: plans, the order breakdown, ledger entries and balances.

Amounts are integers of minor units inside the service and decimal strings with the currency's
places on the wire (``livecommerce.money`` converts).
"""

from django.core.validators import MinValueValidator
from rest_framework import serializers

from commissions.choices import EntryKind
from commissions.models import CommissionPlan, LedgerEntry, LedgerLine
from livecommerce.money import to_decimal_string
from livecommerce.wire import EARLIEST_TIME, SignedAmountField

BPS = {"min_value": 0, "max_value": 10_000}


# --- Commission plans ----------------------------------------------------------------------------


class CommissionPlanSerializer(serializers.ModelSerializer):
    """A commission plan. ``fulfillment_fee_fixed`` is per order, in the plan's currency."""

    fulfillment_fee_fixed = serializers.SerializerMethodField()
    currency = serializers.SerializerMethodField()
    category = serializers.SerializerMethodField()

    class Meta:
        model = CommissionPlan
        fields = [
            "id",
            "name",
            "platform_rate_bps",
            "creator_rate_bps",
            "fulfillment_rate_bps",
            "fulfillment_fee_fixed",
            "currency",
            "host_app",
            "brand",
            "category",
            "effective_from",
            "effective_to",
            "created",
            "updated",
        ]
        read_only_fields = fields

    def get_fulfillment_fee_fixed(self, obj: CommissionPlan) -> str:
        if not obj.currency:
            return "0"
        return to_decimal_string(obj.fulfillment_fee_fixed, obj.currency)

    def get_currency(self, obj: CommissionPlan) -> str | None:
        return obj.currency or None

    def get_category(self, obj: CommissionPlan) -> str | None:
        return obj.category or None


class CommissionPlanInputSerializer(serializers.Serializer):
    """Create (all rules) or edit (``partial``) a plan; the service checks the whole."""

    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    platform_rate_bps = serializers.IntegerField(**BPS)
    creator_rate_bps = serializers.IntegerField(**BPS, required=False, default=0)
    fulfillment_rate_bps = serializers.IntegerField(**BPS, required=False, default=0)
    fulfillment_fee_fixed = serializers.CharField(
        max_length=40,
        required=False,
        help_text="Per order, a decimal string in the plan's currency (which it must name).",
    )
    currency = serializers.CharField(
        max_length=3, required=False, allow_null=True, allow_blank=True
    )
    host_app = serializers.CharField(max_length=40, required=False, allow_null=True)
    brand = serializers.CharField(max_length=40, required=False, allow_null=True)
    category = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True
    )
    effective_from = serializers.DateTimeField(
        required=False, validators=[MinValueValidator(EARLIEST_TIME)]
    )
    effective_to = serializers.DateTimeField(
        required=False, allow_null=True, validators=[MinValueValidator(EARLIEST_TIME)]
    )


# --- Order breakdown -----------------------------------------------------------------------------


class RatesSerializer(serializers.Serializer):
    plan = serializers.CharField(allow_null=True, help_text="The plan whose rates the line got")
    platform_rate_bps = serializers.IntegerField(allow_null=True)
    creator_rate_bps = serializers.IntegerField(allow_null=True)
    fulfillment_rate_bps = serializers.IntegerField(allow_null=True)


class BreakdownLineSerializer(serializers.Serializer):
    """One order line as posted at payment; the four shares add up to ``paid``."""

    line = serializers.CharField()
    sku = serializers.CharField()
    quantity = serializers.IntegerField()
    paid = SignedAmountField()
    platform_commission = SignedAmountField(allow_null=True)
    creator_commission = SignedAmountField()
    fulfillment_fee = SignedAmountField(
        allow_null=True, help_text="The fulfillment rate's share plus the fixed fee's"
    )
    brand_net = SignedAmountField(allow_null=True)
    refunded = SignedAmountField(help_text="What refunds have taken back of this line so far")
    rates = RatesSerializer()


class BreakdownTotalsSerializer(serializers.Serializer):
    """Each share net of every reversal; the six shares add up to ``paid - refunded``."""

    paid = SignedAmountField()
    refunded = SignedAmountField()
    platform_commission = SignedAmountField(allow_null=True)
    creator_commission = SignedAmountField()
    fulfillment_fees = SignedAmountField(allow_null=True)
    shipping = SignedAmountField()
    tax = SignedAmountField()
    brand_net = SignedAmountField(allow_null=True)


class RefundLineReversalSerializer(serializers.Serializer):
    line = serializers.CharField()
    amount = SignedAmountField()
    platform_commission = SignedAmountField(allow_null=True)
    creator_commission = SignedAmountField()
    fulfillment_fee = SignedAmountField(allow_null=True)
    brand_net = SignedAmountField(allow_null=True)


class RefundReversalSerializer(serializers.Serializer):
    """One refund and what it reversed of each share."""

    refund = serializers.CharField(allow_null=True)
    entry = serializers.CharField(help_text="The ledger entry that posted the reversal")
    created = serializers.DateTimeField()
    amount = SignedAmountField()
    platform_commission = SignedAmountField(allow_null=True)
    creator_commission = SignedAmountField()
    fulfillment_fees = SignedAmountField(allow_null=True)
    shipping = SignedAmountField()
    tax = SignedAmountField()
    brand_net = SignedAmountField(allow_null=True)
    lines = RefundLineReversalSerializer(many=True)


class AppliedPlanSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    fulfillment_fee_fixed = SignedAmountField(
        allow_null=True, help_text="Per order, as applied at payment"
    )


class OrderBreakdownSerializer(serializers.Serializer):
    """Where an order's money went, computed from the ledger."""

    order = serializers.CharField()
    currency = serializers.CharField()
    status = serializers.CharField()
    plan = AppliedPlanSerializer(allow_null=True, help_text="Null until the order is paid")
    lines = BreakdownLineSerializer(many=True)
    totals = BreakdownTotalsSerializer()
    refunds = RefundReversalSerializer(many=True)


# --- Ledger entries and balances -----------------------------------------------------------------


class LedgerLineSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account_id")
    partner = serializers.CharField(source="partner_id", allow_null=True)
    debit = SignedAmountField()
    credit = SignedAmountField()

    class Meta:
        model = LedgerLine
        fields = ["account", "partner", "debit", "credit"]


class LedgerEntrySerializer(serializers.ModelSerializer):
    """A journal entry; per entry (all its lines) debits equal credits."""

    kind = serializers.ChoiceField(choices=EntryKind.choices)
    order = serializers.CharField(source="order_id", allow_null=True)
    lines = LedgerLineSerializer(many=True)

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "order", "created", "currency", "lines"]
        read_only_fields = fields


class BalanceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    pending = SignedAmountField(help_text="Earned on orders still in their return window")
    available = SignedAmountField(help_text="Ready to settle")
    in_payout = SignedAmountField(help_text="In a settlement that is not yet marked paid")
    paid_out = SignedAmountField(help_text="Paid out so far")
    owed = SignedAmountField(
        help_text="What the payee owes the platform: -available while available is negative, "
        "else 0 (refunds after release took back more than was left)"
    )
