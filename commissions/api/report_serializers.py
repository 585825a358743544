"""Input and output shapes of the finance reports (commissions, reconciliation)."""

import re
from datetime import date

from rest_framework import serializers

from commissions.reports.commission import DEFAULT_GROUP_BY, FIGURES, GROUP_BY_CHOICES
from livecommerce import money
from livecommerce.wire import SignedAmountField

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ISODateField(serializers.DateField):
    """A date written exactly ``YYYY-MM-DD`` (``strptime`` alone would take ``2026-3-1``)."""

    def __init__(self, **kwargs):
        super().__init__(input_formats=["%Y-%m-%d"], **kwargs)

    def to_internal_value(self, value):
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class PeriodQuerySerializer(serializers.Serializer):
    """``?date_from&date_to&currency``: ISO dates (UTC days, both inclusive), an ISO 4217 code."""

    date_from = ISODateField(help_text="First UTC day, YYYY-MM-DD")
    date_to = ISODateField(help_text="Last UTC day, YYYY-MM-DD (inclusive)")
    currency = serializers.CharField(help_text="ISO 4217, upper case (USD, JPY, KWD...)")

    def validate_currency(self, value: str) -> str:
        try:
            money.exponent(value)
        except money.MoneyError as exc:
            raise serializers.ValidationError(exc.detail, code=exc.code) from None
        return value

    def validate_date_to(self, value: date) -> date:
        if value >= date.max:
            raise serializers.ValidationError("date_to is too far in the future.", code="invalid")
        return value

    def validate(self, attrs: dict) -> dict:
        if attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError(
                {
                    "date_to": serializers.ErrorDetail(
                        "date_to is before date_from.", "invalid_period"
                    )
                }
            )
        return attrs


class CommissionReportQuerySerializer(PeriodQuerySerializer):
    group_by = serializers.ChoiceField(
        choices=GROUP_BY_CHOICES, default=DEFAULT_GROUP_BY, help_text="How rows are grouped"
    )


class FiguresSerializer(serializers.Serializer):
    """The report's figures, read from a ``commissions.reports.Figures`` (see docs/reports.md)."""

    orders = serializers.IntegerField(help_text="Orders paid in the period")
    gross_merchandise_value = SignedAmountField(
        help_text="Merchandise paid by buyers (sale entries)"
    )
    platform_commission = SignedAmountField(help_text="Platform commission, net of refunds")
    creator_commission = SignedAmountField(help_text="Creator commission, net of refunds")
    fulfillment_fees = SignedAmountField(
        help_text="Fulfillment fees (rate and fixed), net of refunds"
    )
    refunds = SignedAmountField(help_text="Merchandise refunded to buyers (refund entries)")
    net_to_brands = SignedAmountField(help_text="The brands' net, after refunds")


class ReportRowSerializer(FiguresSerializer):
    group = serializers.CharField(
        allow_null=True,
        help_text="Partner or live session id, YYYY-MM-DD (day), YYYY-MM (month); null for "
        "orders without that party (e.g. no creator)",
    )
    name = serializers.CharField(
        allow_null=True, help_text="The partner's name, the live session's title, or the date"
    )

    def to_representation(self, row) -> dict:
        data = {"group": row.group, "name": row.name}
        data.update(FiguresSerializer(row.figures, context=self.context).data)
        return data


class CommissionReportSerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=GROUP_BY_CHOICES)
    currency = serializers.CharField()
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    rows = ReportRowSerializer(many=True)
    totals = FiguresSerializer()


def report_context(report) -> dict:
    return {"currency": report.currency}


CSV_COLUMNS = ("row", "group", "name", *FIGURES)


def report_csv_rows(report):
    """The CSV of a report: a header, one line per group (``row`` = ``group``), the totals last
    (``row`` = ``total``), with the JSON's exact values."""
    context = report_context(report)
    yield CSV_COLUMNS
    for row in report.rows:
        data = ReportRowSerializer(row, context=context).data
        yield ("group", row.group or "", row.name or "", *(data[name] for name in FIGURES))
    totals = FiguresSerializer(report.totals, context=context).data
    yield ("total", "", "", *(totals[name] for name in FIGURES))


class DifferenceSerializer(serializers.Serializer):
    check = serializers.CharField(
        help_text="sale_posting, refund_posting, refund_records, attribution, unbalanced_entry, "
        "settlement_entry, settlement_coverage, settlement_payout, payee_owes, "
        "payout_while_owed"
    )
    object = serializers.CharField(
        source="object_id", help_text="The order, entry or settlement (payee_owes: the partner)"
    )
    expected = SignedAmountField(allow_null=True, help_text="What the orders/settlements say")
    actual = SignedAmountField(allow_null=True, help_text="What the ledger says")
    detail = serializers.CharField()


class ReconciliationReportSerializer(serializers.Serializer):
    currency = serializers.CharField()
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    consistent = serializers.BooleanField(help_text="True when nothing differs")
    orders_checked = serializers.IntegerField()
    entries_checked = serializers.IntegerField()
    settlements_checked = serializers.IntegerField(
        help_text="Settlements created, paid or failed in the period"
    )
    truncated = serializers.BooleanField(help_text="More differences exist than are listed")
    differences = DifferenceSerializer(many=True)
