"""The postings of a refund: each share of each line, and shipping and tax, reversed as the order
services split the refund (``orders.services.refunds``)."""

from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Sum

from commissions.choices import AccountPurpose, EntryKind, Share
from commissions.ledger.orders import (
    LINE_SHARES,
    post_under_available_locks,
    refund_key,
    release_key,
    share_owner,
)
from commissions.ledger.posting import Posting
from commissions.models import LedgerEntry, LedgerLine
from livecommerce import money
from livecommerce.errors import AppError
from orders.models import Order, Refund

P = AccountPurpose


@dataclass
class _Remaining:
    """What is still un-reversed of an order's postings, per (line, share) and for shipping/tax.

    ``owners`` remembers which partner each (line, share) was credited to at the sale.
    """

    lines: dict[str, dict[str, int]]
    extras: dict[str, int]  # shipping, tax
    owners: dict[tuple[str | None, str], str | None]


def _remaining(order: Order) -> _Remaining:
    rows = (
        LedgerLine.objects.filter(order=order, kind__in=(EntryKind.SALE, EntryKind.REFUND))
        .exclude(purpose=P.BUYER_FUNDS_CLEARING)
        .values("order_line_id", "share", "partner_id")
        .annotate(credits=Sum("credit"), debits=Sum("debit"))
    )
    lines: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(LINE_SHARES, 0))
    extras = {Share.SHIPPING: 0, Share.TAX: 0}
    owners: dict[tuple[str | None, str], str | None] = {}
    for row in rows:
        net = row["credits"] - row["debits"]
        owners[(row["order_line_id"], row["share"])] = row["partner_id"]
        if row["order_line_id"] is None:
            extras[row["share"]] += net
        else:
            lines[row["order_line_id"]][row["share"]] += net
    return _Remaining(lines=dict(lines), extras=extras, owners=owners)


def refund_reversals(
    *, order: Order, refund: Refund
) -> tuple[dict[str, dict[str, int]], dict[str, int], _Remaining]:
    """How much of each share of each line, and of shipping and tax, ``refund`` reverses.

    - A refund line's amount reverses that line's shares in proportion to what is left of each
      (largest remainder): a line refunded in several parts reverses exactly what it posted.
    - The refund's ``shipping_amount`` and ``tax_amount`` (the order services name them) reverse
      the fulfillment partner's shipping and the tax payable.
    - ``refund.amount`` is the sum of those parts: the order services split a refund over
      merchandise, shipping and tax (``orders.services.refunds``); a refund that does not add
      up is a bug in its writer (``ValueError``, nothing posted).
    Raises ``AppError("refund_exceeds_paid")`` when the refund is more than is left to reverse.
    """
    remaining = _remaining(order)
    explicit: dict[str, int] = defaultdict(int)
    for refund_line in refund.lines.all():
        explicit[refund_line.line_id] += refund_line.amount
    extra_amounts = {Share.SHIPPING: refund.shipping_amount, Share.TAX: refund.tax_amount}
    parts = sum(explicit.values()) + sum(extra_amounts.values())
    if refund.amount != parts:
        raise ValueError(f"refund {refund.pk} of {refund.amount} is not its parts' sum {parts}")

    for line_id, amount in explicit.items():
        left = sum(remaining.lines.get(line_id, {}).values())
        if amount > left:
            raise AppError("refund_exceeds_paid", f"Line {line_id} has {left} left to refund.")
    extras_left = {
        share: remaining.extras[share] - extra_amounts[share] for share in remaining.extras
    }
    if any(left < 0 for left in extras_left.values()):
        raise AppError("refund_exceeds_paid", "The refund returns more shipping or tax than paid.")

    per_line = {
        line_id: money.reverse_in_proportion(remaining=remaining.lines[line_id], amount=amount)
        for line_id, amount in explicit.items()
        if amount
    }
    return per_line, extra_amounts, remaining


@transaction.atomic
def ledger_post_refund(*, refund: Refund) -> LedgerEntry:
    """Reverse, for one refund, the shares it takes back (kind ``refund``).

    Call inside the refund's transaction with the order row locked (a paid order's cancel is a
    full refund). Debits each party's account with its reversal (the pending payable, or the
    available one once the order was released: it may then go below zero until a settlement nets
    it off) and credits buyer funds clearing with what goes back to the buyer.
    """
    existing = LedgerEntry.objects.filter(idempotency_key=refund_key(refund.pk)).first()
    if existing is not None:
        return existing
    order = refund.order
    per_line, extras, remaining = refund_reversals(order=order, refund=refund)
    released = LedgerEntry.objects.filter(idempotency_key=release_key(order.pk)).exists()

    def party(line_id: str | None, share: str) -> tuple[str, str | None]:
        purpose, partner_id = share_owner(order, share)
        partner_id = remaining.owners.get((line_id, share), partner_id)
        if purpose == P.PARTNER_PENDING and released:
            purpose = P.PARTNER_AVAILABLE
        return purpose, partner_id

    postings: list[Posting] = []
    for line_id, reversal in per_line.items():
        postings.append(
            Posting(
                P.BUYER_FUNDS_CLEARING,
                credit=sum(reversal.values()),
                share=Share.MERCHANDISE,
                order_line_id=line_id,
            )
        )
        for share, amount in reversal.items():
            purpose, partner_id = party(line_id, share)
            postings.append(
                Posting(
                    purpose, debit=amount, partner_id=partner_id, share=share, order_line_id=line_id
                )
            )
    for share, amount in extras.items():
        purpose, partner_id = party(None, share)
        postings.append(Posting(purpose, debit=amount, partner_id=partner_id, share=share))
        postings.append(Posting(P.BUYER_FUNDS_CLEARING, credit=amount, share=share))
    # A debit of available (a refund after the release) changes what the payee owes.
    return post_under_available_locks(
        kind=EntryKind.REFUND,
        order=order,
        postings=postings,
        idempotency_key=refund_key(refund.pk),
        refund=refund,
        memo=f"Refund {refund.pk} of {order.pk}",
    )
