"""What the catalog, live session and order views share: who may read, the errors every POST may
answer, and the oldest-first pagination of an order's histories."""

from livecommerce.pagination import CursorPagination
from livecommerce.schema import error_responses
from partners.choices import PartnerKind, StaffRole
from partners.permissions import allow

STAFF = (StaffRole.OPS, StaffRole.FINANCE)
EVERY_PARTNER = tuple(PartnerKind.values)
READ_ALL = allow(staff=STAFF, partners=EVERY_PARTNER)


def move_permission(table, name: str):
    """Who may make a move, read from its status table (``orders.status``)."""
    move = table[name]
    return allow(staff=move.staff, partners=move.partners)


# The 400s a service sends for an amount it cannot take exactly in the order's currency.
MONEY_400 = ("invalid_amount", "too_many_decimal_places", "negative_amount")


def post_errors(*codes: str) -> dict:
    """A POST's domain errors plus the ones every POST may answer (Idempotency-Key, size)."""
    return error_responses(
        *codes, "idempotency_key_in_use", "idempotency_key_reused", "request_too_large"
    )


class OldestFirstPagination(CursorPagination):
    """Histories read in the order things happened."""

    ordering = ("created", "id")
