"""A small Python client for the live-commerce partner API, over ``requests``.

What a partner app needs from every call, done once here:

- ``Authorization: Bearer <key>`` on every request.
- An ``Idempotency-Key`` (a uuid4) on every ``POST``; the same key goes out again on each retry
  of that POST, so a response lost on the way back never makes a second order.
- Retries with exponential backoff and jitter on network errors, on ``429`` (waiting at least
  what ``Retry-After`` says), on ``5xx`` and on ``409 idempotency_key_in_use`` (the first attempt
  with the key is still running on the server).
- Cursor iteration: ``iterate(path, **filters)`` follows ``next`` until the list ends.
- Typed errors: every error response becomes an ``ApiError`` subclass carrying the contract's
  ``type`` and ``errors`` (``[{"code", "detail", "attr"}]``).

Amounts stay decimal strings as the API sends them; on the way in a ``Decimal``, ``int`` or
``str`` is accepted and a ``float`` is refused, because a float cannot hold ``19.99``.

It imports nothing of the server, only ``requests`` and the standard library.

The package: ``client`` (the calls), ``errors``, ``shapes`` (amounts and JSON shapes),
``encoding`` (parameters and bodies), and the resources in ``resources``, ``orders`` and
``events``. Everything is importable from ``clients.api``.
"""

from clients.api.client import LiveCommerceClient
from clients.api.encoding import (
    API_PREFIX,
    USER_AGENT,
    format_amount,
)
from clients.api.errors import (
    ApiError,
    AuthenticationError,
    Conflict,
    ErrorItem,
    LiveCommerceError,
    NetworkError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    Unprocessable,
    ValidationError,
    error_from_response,
    retry_after_seconds,
)
from clients.api.events import (
    Events,
    WebhookDeliveries,
    WebhookEndpoints,
)
from clients.api.orders import (
    Ledger,
    Orders,
    Reports,
    Settlements,
)
from clients.api.resources import (
    ApiKeys,
    CommissionPlans,
    LiveSessions,
    Partners,
    Products,
)
from clients.api.shapes import (
    JSON,
    Amount,
    Balance,
    Event,
    LedgerEntry,
    LedgerLine,
    Order,
    OrderLine,
    RetryInfo,
)

__all__ = [
    "API_PREFIX",
    "JSON",
    "USER_AGENT",
    "Amount",
    "ApiError",
    "ApiKeys",
    "AuthenticationError",
    "Balance",
    "CommissionPlans",
    "Conflict",
    "ErrorItem",
    "Event",
    "Events",
    "Ledger",
    "LedgerEntry",
    "LedgerLine",
    "LiveCommerceClient",
    "LiveCommerceError",
    "LiveSessions",
    "NetworkError",
    "NotFound",
    "Order",
    "OrderLine",
    "Orders",
    "Partners",
    "PermissionDenied",
    "Products",
    "RateLimited",
    "Reports",
    "RetryInfo",
    "ServerError",
    "Settlements",
    "Unprocessable",
    "ValidationError",
    "WebhookDeliveries",
    "WebhookEndpoints",
    "error_from_response",
    "format_amount",
    "retry_after_seconds",
]
