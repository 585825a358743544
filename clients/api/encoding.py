"""Query parameters, amounts and bodies as the API takes them; responses as it sends them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import requests

from clients.api.shapes import JSON, Amount

API_PREFIX = "/api/v1"
USER_AGENT = "livecommerce-python/1.0"


def _decode(response: requests.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    if "json" in response.headers.get("Content-Type", ""):
        return response.json()
    return response.text


def _query(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _param(value) for name, value in params.items() if value is not None}


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("pass timezone-aware datetimes (the API speaks UTC)")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_param(item) for item in value]
    if isinstance(value, Decimal | float):
        return format_amount(value)
    return value


def format_amount(value: Amount) -> str:
    """An amount as the API's decimal string. Floats are refused: they cannot hold 19.99."""
    if isinstance(value, bool | float):
        raise TypeError("amounts are Decimal, int or str, never float")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not an amount: {value}")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"not an amount: {value!r}")


def _body(**fields: Any) -> JSON:
    """A request body without the fields left as ``None``."""
    return {name: value for name, value in fields.items() if value is not None}


def _when(value: datetime | date | str | None) -> str | None:
    return None if value is None else _param(value)
