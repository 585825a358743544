"""The postings of an order's life: the sale at payment and the release when the return window
closes (refunds: ``commissions.ledger.refunds``)."""

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Sum

from commissions.choices import AccountPurpose, EntryKind, Share
from commissions.ledger.accounts import lock_available_accounts
from commissions.ledger.posting import Posting, ledger_post
from commissions.models import CommissionApplication, LedgerEntry, LedgerLine
from commissions.plans import commission_plan_apply
from livecommerce import money
from orders.models import Order, OrderLine, Refund

P = AccountPurpose


# The shares a line's merchandise is split into, in the order ``money.split_line`` returns them.
LINE_SHARES = (
    Share.PLATFORM_COMMISSION,
    Share.CREATOR_COMMISSION,
    Share.FULFILLMENT_FEE,
    Share.BRAND_NET,
)


def sale_key(order_id: str) -> str:
    return f"sale:{order_id}"


def refund_key(refund_id: str) -> str:
    return f"refund:{refund_id}"


def release_key(order_id: str) -> str:
    return f"release:{order_id}"


def share_owner(order: Order, share: str) -> tuple[str, str | None]:
    """The account (purpose, partner) a share of ``order`` is credited to while pending.

    No fulfillment partner on the order: the brand ships it itself and takes the shipping (the
    fulfillment rate and fixed fee were applied as 0 already).
    """
    if share == Share.PLATFORM_COMMISSION:
        return P.PLATFORM_REVENUE, None
    if share == Share.TAX:
        return P.TAX_PAYABLE, None
    if share == Share.CREATOR_COMMISSION:
        return P.PARTNER_PENDING, order.creator_id
    if share in (Share.FULFILLMENT_FEE, Share.SHIPPING) and order.fulfillment_partner_id:
        return P.PARTNER_PENDING, order.fulfillment_partner_id
    return P.PARTNER_PENDING, order.brand_id


def ledger_post_sale(
    *,
    order: Order,
    application: CommissionApplication | None = None,
    lines: Sequence[OrderLine] | None = None,
) -> LedgerEntry:
    """Post what the buyer paid for ``order``, split among the parties (kind ``sale``).

    Call inside the payment's transaction with the order row locked, after
    ``commission_plan_apply`` (it is applied here if it was not). Per line: debit buyer funds
    clearing with what was paid, credit platform revenue with the platform commission, the
    creator's pending payable with its commission, the fulfillment partner's with its fee (its
    rate, plus the order's fixed fee spread over the lines) and the brand's with the rest. The
    order's shipping goes to the fulfillment partner, its tax to tax payable. All partner shares
    are pending until the return window closes (``ledger_post_release``).

    ``application`` and ``lines``: what ``commission_terms_apply`` just wrote, in the payment's
    transaction (nothing is then read again; an entry already posted under the sale's key is
    returned by ``ledger_post``).
    """
    if application is None or lines is None:
        existing = LedgerEntry.objects.filter(idempotency_key=sale_key(order.pk)).first()
        if existing is not None:
            return existing
        application = CommissionApplication.objects.filter(order=order).first()
        if application is None:
            application = commission_plan_apply(order=order)
        lines = list(order.lines.order_by("position", "id"))
    else:
        lines = sorted(lines, key=lambda line: (line.position, line.pk))
    splits = sale_splits(lines=lines, fulfillment_fee_fixed=application.fulfillment_fee_fixed)

    postings: list[Posting] = []
    for line, split in zip(lines, splits, strict=True):
        postings.append(
            Posting(
                P.BUYER_FUNDS_CLEARING,
                debit=split.paid,
                share=Share.MERCHANDISE,
                order_line_id=line.pk,
            )
        )
        for share, amount in zip(LINE_SHARES, _shares(split), strict=True):
            purpose, partner_id = share_owner(order, share)
            postings.append(
                Posting(
                    purpose,
                    credit=amount,
                    partner_id=partner_id,
                    share=share,
                    order_line_id=line.pk,
                )
            )
    for share, amount in ((Share.SHIPPING, order.shipping_amount), (Share.TAX, order.tax_amount)):
        purpose, partner_id = share_owner(order, share)
        postings.append(Posting(P.BUYER_FUNDS_CLEARING, debit=amount, share=share))
        postings.append(Posting(purpose, credit=amount, partner_id=partner_id, share=share))
    return ledger_post(
        kind=EntryKind.SALE,
        currency=order.currency,
        postings=postings,
        idempotency_key=sale_key(order.pk),
        order=order,
        memo=f"Payment of {order.pk} under plan {application.plan_id}",
    )


def sale_splits(*, lines: Sequence, fulfillment_fee_fixed: int) -> list[money.LineSplit]:
    """Each line's split at payment, with the order's fixed fulfillment fee spread over the lines.

    The rate shares come from ``money.split_line`` on the rates copied onto each line. The fixed
    fee is then taken from the brands' nets, spread in proportion to each line's brand net
    (largest remainder), so no line's brand net goes below zero; if the whole order nets the brand
    less than the fee, the fee is what the brand nets (documented in docs/ledger.md).
    """
    splits = [
        money.split_line(
            paid=line.subtotal,
            platform_rate_bps=line.platform_rate_bps or 0,
            creator_rate_bps=line.creator_rate_bps or 0,
            fulfillment_rate_bps=line.fulfillment_rate_bps or 0,
        )
        for line in lines
    ]
    nets = [s.brand_net for s in splits]
    fee = min(fulfillment_fee_fixed, sum(nets))
    if fee <= 0:
        return splits
    parts = money.spread_fixed(amount=fee, weights=nets)
    return [
        money.LineSplit(
            s.paid,
            s.platform_commission,
            s.creator_commission,
            s.fulfillment_fee + part,
            s.brand_net - part,
        )
        for s, part in zip(splits, parts, strict=True)
    ]


def _shares(split: money.LineSplit) -> tuple[int, int, int, int]:
    return (
        split.platform_commission,
        split.creator_commission,
        split.fulfillment_fee,
        split.brand_net,
    )


@transaction.atomic
def ledger_post_release(*, order: Order) -> LedgerEntry:
    """Move each partner's pending payable for ``order`` to available (kind ``release``).

    Called when the return window closes (the order completes), once per order: one entry with,
    per partner and share, a debit of pending and a credit of available for what is left after
    refunds. Refunds after this reverse from available.
    """
    existing = LedgerEntry.objects.filter(idempotency_key=release_key(order.pk)).first()
    if existing is not None:
        return existing
    rows = (
        LedgerLine.objects.filter(order=order, purpose=P.PARTNER_PENDING)
        .values("partner_id", "share")
        .annotate(credits=Sum("credit"), debits=Sum("debit"))
        .order_by("partner_id", "share")
    )
    postings: list[Posting] = []
    for row in rows:
        amount = row["credits"] - row["debits"]
        postings.append(
            Posting(
                P.PARTNER_PENDING, debit=amount, partner_id=row["partner_id"], share=row["share"]
            )
        )
        postings.append(
            Posting(
                P.PARTNER_AVAILABLE, credit=amount, partner_id=row["partner_id"], share=row["share"]
            )
        )
    # A credit of available lowers what the payee owes: a write-off never reads a debt this
    # release is paying off.
    return post_under_available_locks(
        kind=EntryKind.RELEASE,
        order=order,
        postings=postings,
        idempotency_key=release_key(order.pk),
        memo=f"Return window of {order.pk} closed",
    )


def post_under_available_locks(
    *,
    kind: str,
    order: Order,
    postings: list[Posting],
    idempotency_key: str,
    memo: str,
    refund: Refund | None = None,
) -> LedgerEntry:
    """Post an order's entry that moves payees' available balances (a release, a refund after
    it), holding their available account locks to the commit.

    A payout being marked paid (refused while the payee owes) or a write-off then decides
    before or after this entry, never on the balance it is changing. The lock order
    (``commissions.ledger.accounts``): the order row, held by the caller, then the accounts.
    """
    lock_available_accounts(
        partner_ids=[p.partner_id for p in postings if p.purpose == P.PARTNER_AVAILABLE],
        currency=order.currency,
    )
    return ledger_post(
        kind=kind,
        currency=order.currency,
        postings=postings,
        idempotency_key=idempotency_key,
        order=order,
        refund=refund,
        memo=memo,
    )
