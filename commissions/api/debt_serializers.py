"""Shapes of adjustments, statements and the ``as_of`` of balances."""

from django.core.validators import MinValueValidator
from rest_framework import serializers

from commissions.api.report_serializers import PeriodQuerySerializer
from commissions.choices import AdjustmentKind, EntryKind
from commissions.models import Adjustment
from livecommerce.wire import EARLIEST_TIME, SignedAmountField


class AsOfQuerySerializer(serializers.Serializer):
    """``?as_of=<RFC 3339 time>`` (optional) and ``?partner=`` (finance)."""

    as_of = serializers.DateTimeField(
        required=False,
        validators=[MinValueValidator(EARLIEST_TIME)],
        help_text="The balances at this moment (RFC 3339), from the ledger",
    )
    partner = serializers.CharField(required=False, max_length=64)


class AdjustmentInputSerializer(serializers.Serializer):
    partner = serializers.CharField(
        max_length=64, help_text="The payee (prt_...): a brand, a creator or a fulfillment partner"
    )
    currency = serializers.CharField(max_length=3, help_text="ISO 4217, upper case")
    amount = serializers.CharField(
        max_length=40, help_text="A decimal string in the currency's places, more than zero"
    )
    kind = serializers.ChoiceField(choices=AdjustmentKind.choices)
    reason = serializers.CharField(max_length=500, help_text="Why; kept in the audit log")


class AdjustmentSerializer(serializers.ModelSerializer):
    """An adjustment as recorded; never edited."""

    partner = serializers.CharField(source="partner_id")
    amount = SignedAmountField()
    kind = serializers.ChoiceField(choices=AdjustmentKind.choices)
    ledger_entry = serializers.CharField(source="entry_id")

    class Meta:
        model = Adjustment
        fields = [
            "id",
            "partner",
            "currency",
            "amount",
            "kind",
            "reason",
            "ledger_entry",
            "created_by",
            "created",
        ]
        read_only_fields = fields


class StatementQuerySerializer(PeriodQuerySerializer):
    """``?partner&currency&date_from&date_to`` (finance names the partner; a payee itself)."""

    partner = serializers.CharField(required=False, max_length=64)


class StatementLineSerializer(serializers.Serializer):
    entry = serializers.CharField(help_text="The ledger entry (je_...)")
    created = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=EntryKind.choices)
    order = serializers.CharField(allow_null=True)
    settlement = serializers.CharField(
        allow_null=True, help_text="The settlement paid out (or failed), for payout lines"
    )
    description = serializers.CharField()
    amount = SignedAmountField(help_text="Signed: what the entry added to the balance")
    balance = SignedAmountField(help_text="The balance after this line")


class StatementSerializer(serializers.Serializer):
    """What the platform holds for a payee (pending + available + in payout) over a period."""

    partner = serializers.CharField()
    currency = serializers.CharField()
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    opening = SignedAmountField(help_text="The balance at the start of date_from (UTC)")
    lines = StatementLineSerializer(many=True)
    closing = SignedAmountField(help_text="The balance at the end of date_to (UTC)")
