"""Helpers every view and service shares to turn API input into validated values.

Input serializers check shape; these turn a serializer's data, an amount string or a currency
code into what a service works with, answering the contract's 400 on the offending field.
"""

from livecommerce import money
from livecommerce.errors import AppValidationError


def validated_input(serializer_class, data, *, partial: bool = False) -> dict:
    """The request's data through ``serializer_class``; invalid input raises a 400."""
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def parse_amount(value: str, currency: str, *, attr: str) -> int:
    """Parse an API amount in ``currency`` into minor units; bad input is a 400 on ``attr``."""
    try:
        return money.to_minor(value, currency)
    except money.MoneyError as exc:
        raise AppValidationError(exc.code, exc.detail, attr=attr) from None


def check_currency(currency: str, *, attr: str = "currency") -> None:
    """A 400 on ``attr`` unless ``currency`` is an ISO 4217 code the service knows."""
    try:
        money.exponent(currency)
    except money.MoneyError as exc:
        raise AppValidationError(exc.code, exc.detail, attr=attr) from None
