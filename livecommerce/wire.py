"""How values cross the wire: amounts and timestamps, the one home of each format.

Every serializer, event payload and CSV that shows an amount or a moment goes through here, so an
amount is always the decimal string of ``livecommerce.money`` in its currency and a moment always
RFC 3339 in UTC with microseconds (``2026-12-05T07:00:00.000000Z``, the API's ``DATETIME_FORMAT``).
"""

from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from livecommerce.money import to_decimal_string

# The earliest time any input may name (a show's start, a plan's terms, ``as_of``): nothing here
# is older, and a year below 1000 would not render as RFC 3339. Refused with ``min_value``.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)

AMOUNT_SCHEMA = {
    "type": "string",
    "pattern": r"^[0-9]+(\.[0-9]+)?$",
    "description": "Decimal string with the currency's number of decimal places.",
    "example": "19.99",
}
SIGNED_AMOUNT_SCHEMA = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": "Decimal string with the currency's number of decimal places; negative where "
    "money flows the other way (a refund's share, a balance owed).",
    "example": "19.99",
}


def timestamp(moment: datetime | None) -> str | None:
    """``moment`` as the API writes every time: RFC 3339, UTC, microseconds, ``Z``."""
    if moment is None:
        return None
    # The one format string is REST_FRAMEWORK's DATETIME_FORMAT (settings), which serializers use.
    return moment.astimezone(UTC).strftime(api_settings.DATETIME_FORMAT)


@extend_schema_field(AMOUNT_SCHEMA)
class AmountField(serializers.Field):
    """Output only: an integer of minor units shown in its currency (``1999`` USD -> ``"19.99"``).

    The currency is the serializer context's ``currency`` when there is one (a report in one
    currency), else the object's, found along ``currency_path`` (``"order.currency"``); the
    object may be a model, a dataclass or a dict. ``None`` stays ``null``.
    """

    def __init__(self, *, currency_path: str = "currency", **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)
        self.currency_path = currency_path.split(".")

    def get_attribute(self, instance):
        amount = super().get_attribute(instance)
        currency = self.context.get("currency")
        if currency is None:
            currency = instance
            for name in self.currency_path:
                currency = currency[name] if isinstance(currency, dict) else getattr(currency, name)
        return amount, currency

    def to_representation(self, value) -> str | None:
        minor, currency = value
        return None if minor is None else to_decimal_string(minor, currency)


@extend_schema_field(SIGNED_AMOUNT_SCHEMA)
class SignedAmountField(AmountField):
    """An ``AmountField`` that may be negative: ledger sides, balances, net figures."""
