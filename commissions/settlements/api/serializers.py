"""Settlements and settlement runs as the API shows them; amounts are decimal strings."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from commissions.models import LedgerLine
from commissions.settlements.models import (
    Settlement,
    SettlementRun,
    SettlementRunStatus,
    SettlementRunTrigger,
    SettlementStatus,
)
from commissions.settlements.payloads import settlement_data
from livecommerce import money
from livecommerce.wire import SignedAmountField

LINE_FIELDS = (
    "id",
    "entry",
    "kind",
    "share",
    "order",
    "order_line",
    "created",
    "currency",
    "debit",
    "credit",
    "amount",
)
"""The fields of a settlement line, in the JSON and as the CSV's header row, in this order."""


class SettlementRunInputSerializer(serializers.Serializer):
    period_end = serializers.DateField(help_text="The last day (UTC) the run settles")
    currency = serializers.CharField(max_length=3, help_text="ISO 4217, upper case")


class SettlementRunSerializer(serializers.ModelSerializer):
    """A settlement run: one currency settled up to the end of ``period_end`` (UTC)."""

    status = serializers.ChoiceField(choices=SettlementRunStatus.choices, read_only=True)
    trigger = serializers.ChoiceField(choices=SettlementRunTrigger.choices, read_only=True)
    net_payout = SignedAmountField(help_text="What the run's settlements pay out in all")
    error = serializers.SerializerMethodField()

    class Meta:
        model = SettlementRun
        fields = [
            "id",
            "period_end",
            "currency",
            "trigger",
            "status",
            "settlement_count",
            "line_count",
            "net_payout",
            "below_minimum_count",
            "non_positive_count",
            "attempts",
            "error",
            "created",
            "started",
            "finished",
        ]
        read_only_fields = fields

    def get_error(self, obj: SettlementRun) -> str | None:
        """Why the last attempt failed (a failed run is finished by starting it again)."""
        return obj.error or None


class SettlementSerializer(serializers.ModelSerializer):
    """One payee's settlement in one currency: its figures and where its payout stands.

    ``gross - platform_commission - creator_commission - fulfillment_fees - refunds +
    adjustments == net_payout``.
    """

    status = serializers.ChoiceField(choices=SettlementStatus.choices, read_only=True)
    gross = SignedAmountField(help_text="Sales (a brand's merchandise) or earnings, in the period")
    platform_commission = SignedAmountField(help_text="Taken off a brand's sales by the platform")
    creator_commission = SignedAmountField(help_text="Taken off a brand's sales for the creator")
    fulfillment_fees = SignedAmountField(help_text="Taken off a brand's sales for fulfillment")
    refunds = SignedAmountField(help_text="What refunds took back")
    adjustments = SignedAmountField(help_text="Failed payouts returned, ledger adjustments")
    net_payout = SignedAmountField(help_text="What is paid to the payee")
    ledger_entry = serializers.CharField(source="entry_id", read_only=True)
    payout_entry = serializers.CharField(source="payout_entry_id", read_only=True, allow_null=True)
    payout_reference = serializers.CharField(read_only=True, allow_null=True)
    failure_reason = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = Settlement
        fields = [
            "id",
            "run",
            "partner",
            "currency",
            "period_end",
            "status",
            "gross",
            "platform_commission",
            "creator_commission",
            "fulfillment_fees",
            "refunds",
            "adjustments",
            "net_payout",
            "line_count",
            "ledger_entry",
            "payout_entry",
            "payout_reference",
            "failure_reason",
            "created",
            "paid_at",
            "failed_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Settlement) -> dict:
        # The fields above document the shape; the one builder makes it (events carry it too).
        return settlement_data(instance)


class SettlementLineSerializer(serializers.ModelSerializer):
    """A ledger line a settlement covers, with its order; ``amount`` is credit minus debit."""

    entry = serializers.CharField(source="entry_id", read_only=True)
    order = serializers.CharField(source="order_id", read_only=True, allow_null=True)
    order_line = serializers.CharField(source="order_line_id", read_only=True, allow_null=True)
    share = serializers.SerializerMethodField()
    debit = SignedAmountField()
    credit = SignedAmountField()
    amount = serializers.SerializerMethodField()

    class Meta:
        model = LedgerLine
        fields = list(LINE_FIELDS)
        read_only_fields = fields

    def get_share(self, obj: LedgerLine) -> str | None:
        return obj.share or None

    @extend_schema_field(OpenApiTypes.STR)
    def get_amount(self, obj: LedgerLine) -> str:
        return money.to_decimal_string(obj.credit - obj.debit, obj.currency)


class MarkPaidInputSerializer(serializers.Serializer):
    payout_reference = serializers.CharField(
        max_length=200, help_text="The bank transfer or payout provider's reference"
    )


class MarkFailedInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why the payout did not arrive")
