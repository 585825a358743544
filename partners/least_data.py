"""Least data: which fields of an object a partner of each kind may read, in one place.

Tenancy decides which objects a partner sees; this decides which of their fields. A creator
earns a commission on the orders of its live sessions: it sees each order's id, status, lines
and amounts, and its own commission, but not the buyer's contact (``buyer``), address
(``shipping_address``) or payment (``payment_reference``), nor the other parties' shares of the
money (the platform's commission, the fulfillment partner's fee, the brand's net, and the rates
behind them), which its ledger view never showed either.

The same rule serves every way an object leaves the service: the order API, an order's
history, its breakdown, ``GET /events`` and webhook bodies. A hidden field keeps its key with
the value ``null`` (so a response keeps the shape the schema documents).
"""

from partners.choices import PartnerKind

BUYER_FIELDS = frozenset({"buyer", "buyer_email", "shipping_address", "payment_reference"})
OTHER_PARTIES_SHARES = frozenset(
    {
        "platform_commission",
        "fulfillment_fee",
        "fulfillment_fees",
        "brand_net",
        "platform_rate_bps",
        "fulfillment_rate_bps",
        "fulfillment_fee_fixed",
    }
)
HIDDEN_FROM: dict[str, frozenset[str]] = {
    PartnerKind.CREATOR: BUYER_FIELDS | OTHER_PARTIES_SHARES,
}


def hidden_fields(kind: str | None) -> frozenset[str]:
    """The fields a partner of ``kind`` may not read (none for staff, ``kind`` empty)."""
    return HIDDEN_FROM.get(kind or "", frozenset())


def redact(data, hidden: frozenset[str]):
    """A copy of ``data`` with every key in ``hidden``, at any depth, set to ``None``."""
    if not hidden:
        return data
    if isinstance(data, dict):
        return {
            key: None if key in hidden else redact(value, hidden) for key, value in data.items()
        }
    if isinstance(data, list):
        return [redact(item, hidden) for item in data]
    return data


def view_for(caller, data):
    """``data`` as ``caller`` (an API caller, or a partner) may read it."""
    kind = getattr(caller, "kind", None)
    return redact(data, hidden_fields(kind))
