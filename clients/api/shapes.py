"""The shapes the client takes and returns: amounts, the contract's JSON objects, retry notices."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict

Amount = str | Decimal | int

JSON = dict[str, Any]


# --- Retries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryInfo:
    """What ``on_retry`` hears before the client sleeps and tries again."""

    method: str
    url: str
    attempt: int  # 1 for the first retry
    delay: float  # seconds the client is about to sleep
    status: int | None  # the response status, or None after a network error
    code: str | None  # the first error code of the response, if any
    retry_after: float | None  # what Retry-After asked for, if anything
    idempotency_key: str | None
    exception: Exception | None = None


# --- Shapes the client returns (the contract's, as JSON) -------------------------------------


class OrderLine(TypedDict):
    id: str
    product: str
    sku: str
    quantity: int
    unit_price: str
    subtotal: str
    refunded_quantity: int


class Order(TypedDict):
    id: str
    status: str
    host_app: str
    brand: str
    live_session: str | None
    creator: str | None
    currency: str
    subtotal: str
    shipping_amount: str
    tax_amount: str
    total: str
    refunded_amount: str
    created: str
    lines: list[OrderLine]


class LedgerLine(TypedDict):
    account: str
    partner: str | None
    debit: str
    credit: str


class LedgerEntry(TypedDict):
    id: str
    kind: str
    order: str | None
    created: str
    currency: str
    lines: list[LedgerLine]


class Balance(TypedDict):
    currency: str
    pending: str
    available: str
    paid_out: str


class Event(TypedDict):
    id: str
    type: str
    created: str
    sequence: int
    data: dict[str, Any]
