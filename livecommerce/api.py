"""Helpers every view and service shares to turn API input into validated values.

Input serializers check shape; these turn a serializer's data, an amount string or a currency
code into what a service works with, answering the contract's 400 on the offending field.
"""

import difflib

from rest_framework import exceptions, serializers
from rest_framework.exceptions import ErrorDetail

from livecommerce import money
from livecommerce.errors import AppValidationError

UNKNOWN_FIELD = "unknown_field"


def validated_input(serializer_class, data, *, partial: bool = False) -> dict:
    """The request's data through ``serializer_class``; invalid input raises a 400.

    A field the serializer does not take is a 400 ``unknown_field`` naming it (``attr``), in
    nested objects of known shape too (``lines.0.quantiy``): DRF would drop it silently, and a
    misspelt ``shiping_amount`` would create an order without its shipping charge. Free-form
    JSON fields (``JSONField``, ``DictField``) are values, not shapes, and are not looked into.
    """
    serializer = serializer_class(data=data, partial=partial)
    unknown = unknown_fields(serializer, data)
    if unknown:
        raise exceptions.ValidationError(
            {attr: [ErrorDetail(message, code=UNKNOWN_FIELD)] for attr, message in unknown}
        )
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def unknown_fields(serializer, data, prefix: str = "") -> list[tuple[str, str]]:
    """``(attr, message)`` for each key of ``data`` that ``serializer`` does not take as input."""
    if not isinstance(data, dict):
        return []
    writable = {name: f for name, f in serializer.fields.items() if not f.read_only}
    found = []
    for key, value in data.items():
        field = writable.get(key)
        attr = f"{prefix}{key}"
        if field is None:
            found.append((attr, _unknown_message(str(key), sorted(writable))))
        elif isinstance(field, serializers.ListSerializer) and isinstance(value, list):
            for index, item in enumerate(value):
                found += unknown_fields(field.child, item, f"{attr}.{index}.")
        elif isinstance(field, serializers.Serializer):
            found += unknown_fields(field, value, f"{attr}.")
    return found


def _unknown_message(key: str, known: list[str]) -> str:
    message = f"Unknown field '{key}'."
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        message += f" Did you mean '{close[0]}'?"
    if known:
        message += f" This endpoint takes: {', '.join(known)}."
    else:
        message += " This endpoint takes no fields: send an empty object."
    return message


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
