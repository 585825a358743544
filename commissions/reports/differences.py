"""What reconciliation finds: a ``Difference``, and the helpers every check shares."""

from dataclasses import dataclass
from datetime import date

from django.db.models import (
    IntegerField,
    Value,
)

from commissions.choices import AccountPurpose
from commissions.days import period_bounds
from commissions.models import LedgerLine
from livecommerce.money import to_decimal_string

MAX_DIFFERENCES = 1000
"""At most this many differences are listed per report (``truncated`` says when more were)."""

ZERO = Value(0, output_field=IntegerField())
BUYER_FUNDS = AccountPurpose.BUYER_FUNDS_CLEARING


@dataclass(frozen=True)
class Difference:
    """One thing that does not agree: which check, on which object, what each side says.

    ``expected`` is what the orders (or settlements) say, ``actual`` what the ledger says, both
    in minor units; either is ``None`` for checks that are not about an amount.
    """

    check: str
    object_id: str
    expected: int | None
    actual: int | None
    detail: str


def formatter(currency: str):
    """Amounts in a difference's text are written as the API writes them ("19.99")."""
    return lambda minor: to_decimal_string(minor, currency)


def period_lines(*, currency: str, date_from: date, date_to: date):
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    return LedgerLine.objects.filter(currency=currency, created__gte=start, created__lt=end)
