"""Reads of plans and the ledger, scoped to the caller and computed from the ledger lines.

Amounts come back as integers of minor units; the API serializers format them.
"""

from dataclasses import dataclass, field

from django.db.models import IntegerField, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from rest_framework.exceptions import NotFound

from commissions.choices import AccountPurpose, EntryKind, Share
from commissions.ledger.orders import LINE_SHARES
from commissions.models import CommissionApplication, CommissionPlan, LedgerEntry, LedgerLine
from livecommerce.errors import AppValidationError
from orders.models import Order
from partners.models import Partner

P = AccountPurpose
TOTAL_SHARES = (*LINE_SHARES, Share.SHIPPING, Share.TAX)


def commission_plan_list() -> QuerySet[CommissionPlan]:
    return CommissionPlan.objects.all()


# --- Order breakdown ---------------------------------------------------------------------------


@dataclass
class RefundReversal:
    refund: str | None
    entry: str
    created: object
    amount: int = 0
    shares: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOTAL_SHARES, 0))
    lines: dict[str, dict[str, int]] = field(default_factory=dict)


def order_for_breakdown(*, caller, order_id: str) -> Order:
    """The order, if the caller may see it (same tenancy as the orders API), else 404."""
    return get_object_or_404(Order.objects.visible_to(caller), pk=order_id)


def order_breakdown(*, order: Order) -> dict:
    """Where an order's money went, from its ledger lines (three queries whatever its size).

    Per line: what the buyer paid and each share as posted at the sale, with what refunds took
    back of it and the rates applied. Totals: each share net of every reversal, so that
    platform + creator + fulfillment + shipping + tax + brand net == paid - refunded exactly.
    And every refund with what it reversed of each share.
    """
    order_lines = list(order.lines.order_by("position", "id"))
    application = CommissionApplication.objects.filter(order=order).select_related("plan").first()
    ledger_lines = (
        LedgerLine.objects.filter(order=order, kind__in=(EntryKind.SALE, EntryKind.REFUND))
        .select_related("entry")
        .order_by("created", "entry_id", "id")
    )

    posted = {line.pk: dict.fromkeys(("paid", *LINE_SHARES, "refunded"), 0) for line in order_lines}
    totals = dict.fromkeys(("paid", "refunded", *TOTAL_SHARES), 0)
    refunds: dict[str, RefundReversal] = {}
    for row in ledger_lines:
        clearing = row.purpose == P.BUYER_FUNDS_CLEARING
        if row.kind == EntryKind.SALE:
            if clearing:
                totals["paid"] += row.debit
                if row.order_line_id in posted:
                    posted[row.order_line_id]["paid"] += row.debit
            else:
                totals[row.share] += row.credit
                if row.order_line_id in posted:
                    posted[row.order_line_id][row.share] += row.credit
            continue
        reversal = refunds.get(row.entry_id)
        if reversal is None:
            reversal = refunds[row.entry_id] = RefundReversal(
                refund=row.entry.refund_id, entry=row.entry_id, created=row.entry.created
            )
        if clearing:
            totals["refunded"] += row.credit
            reversal.amount += row.credit
            if row.order_line_id in posted:
                posted[row.order_line_id]["refunded"] += row.credit
        else:
            totals[row.share] -= row.debit
            reversal.shares[row.share] += row.debit
            if row.order_line_id is not None:
                per_line = reversal.lines.setdefault(
                    row.order_line_id, dict.fromkeys(("amount", *LINE_SHARES), 0)
                )
                per_line[row.share] += row.debit
                per_line["amount"] += row.debit

    line_plans = application.line_plans if application else {}
    return {
        "order": order.pk,
        "currency": order.currency,
        "status": order.status,
        "plan": (
            {
                "id": application.plan_id,
                "name": application.plan.name,
                "fulfillment_fee_fixed": application.fulfillment_fee_fixed,
            }
            if application
            else None
        ),
        "lines": [
            {
                "line": line.pk,
                "sku": line.sku,
                "quantity": line.quantity,
                **posted[line.pk],
                "rates": {
                    "plan": line_plans.get(line.pk),
                    "platform_rate_bps": line.platform_rate_bps,
                    "creator_rate_bps": line.creator_rate_bps,
                    "fulfillment_rate_bps": line.fulfillment_rate_bps,
                },
            }
            for line in order_lines
        ],
        "totals": {
            "paid": totals["paid"],
            "refunded": totals["refunded"],
            "platform_commission": totals[Share.PLATFORM_COMMISSION],
            "creator_commission": totals[Share.CREATOR_COMMISSION],
            "fulfillment_fees": totals[Share.FULFILLMENT_FEE],
            "shipping": totals[Share.SHIPPING],
            "tax": totals[Share.TAX],
            "brand_net": totals[Share.BRAND_NET],
        },
        "refunds": [
            {
                "refund": r.refund,
                "entry": r.entry,
                "created": r.created,
                "amount": r.amount,
                "platform_commission": r.shares[Share.PLATFORM_COMMISSION],
                "creator_commission": r.shares[Share.CREATOR_COMMISSION],
                "fulfillment_fees": r.shares[Share.FULFILLMENT_FEE],
                "shipping": r.shares[Share.SHIPPING],
                "tax": r.shares[Share.TAX],
                "brand_net": r.shares[Share.BRAND_NET],
                "lines": [{"line": line_id, **shares} for line_id, shares in r.lines.items()],
            }
            for r in refunds.values()
        ],
    }


# --- Ledger entries and balances ---------------------------------------------------------------


def ledger_entry_list(*, caller) -> QuerySet[LedgerEntry]:
    """Entries the caller may read, with their lines prefetched (two queries per page).

    Finance sees every entry with all its lines. A partner sees the entries that touch its own
    accounts, and of each only the lines of its own accounts: the other parties' shares stay
    private, so a partner's view of an entry does not balance on its own.
    """
    lines = (
        LedgerLine.objects.visible_to(caller)
        .only("id", "entry_id", "account_id", "partner_id", "currency", "debit", "credit")
        .order_by("id")
    )
    return LedgerEntry.objects.visible_to(caller).prefetch_related(
        Prefetch("lines", queryset=lines)
    )


def balance_partner(*, caller, partner_id: str | None) -> Partner:
    """Whose balances: a partner its own (another's id is 404); staff must name the partner."""
    if caller.is_staff:
        if not partner_id:
            raise AppValidationError(
                "required", "Staff name the partner: ?partner=prt_...", attr="partner"
            )
        partner = Partner.objects.filter(pk=partner_id).first()
        if partner is None:
            raise AppValidationError("invalid_reference", "No such partner.", attr="partner")
        return partner
    if partner_id and partner_id != caller.partner_id:
        raise NotFound("No such partner.")
    return caller.partner


def partner_balances(*, partner: Partner, as_of=None) -> list[dict]:
    """Per currency: pending, available, in payout, paid out and owed, in SQL (one query).

    Balances are credit minus debit of the partner's accounts (all credit-normal); ``pending``
    is what is still in a return window, ``available`` what a settlement may pay (negative when
    refunds took back more than is left: the payee owes it), ``in_payout`` what sits in a
    settlement not yet marked paid, ``paid_out`` what has been paid, and ``owed`` what the payee
    owes the platform (``-available`` while that is negative, else 0). ``as_of`` (a datetime)
    gives them from the lines created at or before that moment.
    """

    def balance(purpose: str):
        only = Q(purpose=purpose)
        zero = Value(0, output_field=IntegerField())
        return Coalesce(Sum("credit", filter=only), zero) - Coalesce(
            Sum("debit", filter=only), zero
        )

    lines = LedgerLine.objects.filter(partner=partner)
    if as_of is not None:
        lines = lines.filter(created__lte=as_of)
    rows = (
        lines.values("currency")
        .annotate(
            pending=balance(P.PARTNER_PENDING),
            available=balance(P.PARTNER_AVAILABLE),
            in_payout=balance(P.PARTNER_IN_PAYOUT),
            paid_out=balance(P.PARTNER_PAID_OUT),
        )
        .order_by("currency")
    )
    return [{**row, "owed": max(0, -row["available"])} for row in rows]


def available_balance(*, partner_id: str, currency: str) -> int:
    """The payee's ``partner_available`` balance in ``currency`` now (minor units, may be < 0)."""
    sums = LedgerLine.objects.filter(
        partner_id=partner_id, currency=currency, purpose=P.PARTNER_AVAILABLE
    ).aggregate(credit=Coalesce(Sum("credit"), 0), debit=Coalesce(Sum("debit"), 0))
    return sums["credit"] - sums["debit"]
