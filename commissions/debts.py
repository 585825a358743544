"""Money that comes back: what a payee owes, finance's adjustments, and statements.

A refund after an order's release takes each share back from the payee's ``partner_available``
account, which may go below zero: the payee then owes that much (``owed`` in its balances).
Settlement runs net it against what the payee earns next (see ``commissions.settlements``);
finance may also record, as an ``Adjustment``:

- ``write_off``: the platform absorbs the debt (at most what is owed);
- ``repayment``: the payee paid it back outside the service (at most what is owed);
- ``credit``: a goodwill credit.

Each is one balanced ledger entry (kind ``adjustment``) crediting the payee's available account
and debiting the platform account of its kind, with an audit entry carrying the reason.

A statement follows what the platform holds for a payee in one currency: ``pending +
available + in_payout`` (negative while it owes). Its lines are the ledger entries that moved
that sum, one line per entry, aggregated in SQL; moves between those three accounts (a
release, a settlement, a failed payout) change nothing and are not lines. ``opening`` + the
lines = ``closing``, and each equals the same sum of ``GET /balances?as_of=`` at its moment.
"""

from dataclasses import dataclass
from datetime import date, datetime

from django.db import transaction
from django.db.models import F, IntegerField, Min, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from audit.services import audit_record
from commissions.choices import (
    ADJUSTMENT_ACCOUNTS,
    HELD_PURPOSES,
    AccountPurpose,
    AdjustmentKind,
    EntryKind,
)
from commissions.days import period_bounds
from commissions.ledger.accounts import lock_available_account
from commissions.ledger.posting import Posting, ledger_post
from commissions.models import Adjustment, LedgerLine
from commissions.selectors import available_balance
from livecommerce import money
from livecommerce.errors import AppError, AppValidationError
from livecommerce.ids import new_id
from partners.choices import PartnerKind
from partners.models import Partner

P = AccountPurpose

# The partners the ledger pays (and who may owe it back): the only ones an adjustment names.
PAYEE_KINDS = (PartnerKind.BRAND, PartnerKind.CREATOR, PartnerKind.FULFILLMENT)

# Adjustments that pay a debt off may not make the payee's balance positive.
DEBT_KINDS = (AdjustmentKind.WRITE_OFF, AdjustmentKind.REPAYMENT)


@transaction.atomic
def adjustment_create(
    *, partner: Partner, currency: str, amount: int, kind: str, reason: str, actor
) -> Adjustment:
    """Record a write-off, a repayment or a goodwill credit for a payee.

    ``partner`` of another kind than a payee's (a host app) is ``400 invalid_reference``.

    A write-off or a repayment of more than the payee owes in ``currency`` (or when it owes
    nothing) is ``409 adjustment_exceeds_owed``. Posts the entry (the payee's available
    account credited, the platform's account of the kind debited) and the audit entry in the
    same transaction.
    """
    if amount <= 0:
        raise AppValidationError("invalid_amount", "More than zero, please.", attr="amount")
    if partner.kind not in PAYEE_KINDS:
        raise AppValidationError(
            "invalid_reference",
            f"{partner.pk} is a {partner.kind}, not a payee (a brand, a creator or a "
            "fulfillment partner).",
            attr="partner",
        )
    lock_available_account(partner_id=partner.pk, currency=currency)
    if kind in DEBT_KINDS:
        owed = max(0, -available_balance(partner_id=partner.pk, currency=currency))
        if amount > owed:
            raise AppError(
                "adjustment_exceeds_owed",
                f"The payee owes {money.to_decimal_string(owed, currency)} {currency}; a "
                f"{kind} can be at most that.",
            )
    adjustment_id = new_id("adj")
    entry = ledger_post(
        kind=EntryKind.ADJUSTMENT,
        currency=currency,
        postings=[
            Posting(ADJUSTMENT_ACCOUNTS[kind], debit=amount),
            Posting(P.PARTNER_AVAILABLE, credit=amount, partner_id=partner.pk),
        ],
        idempotency_key=f"adjustment:{adjustment_id}",
        reference=adjustment_id,
        memo=f"{AdjustmentKind(kind).label}: {reason}"[:500],
    )
    adjustment = Adjustment.objects.create(
        id=adjustment_id,
        partner=partner,
        currency=currency,
        amount=amount,
        kind=kind,
        reason=reason,
        entry=entry,
        created_by=str(actor) if actor is not None else "system",
        api_key=getattr(actor, "api_key_id", "") or "",
    )
    audit_record(
        actor=actor,
        action=f"adjustment.{kind}",
        target=adjustment,
        changes={
            "partner": (None, partner.pk),
            "currency": (None, currency),
            "amount": (None, money.to_decimal_string(amount, currency)),
            "kind": (None, kind),
            "reason": (None, reason),
            "entry": (None, entry.pk),
        },
    )
    return adjustment


def adjustment_list(*, caller) -> QuerySet[Adjustment]:
    """Adjustments (finance only: the view admits no one else)."""
    return Adjustment.objects.select_related("partner")


# --- Statements --------------------------------------------------------------------------------


@dataclass
class Statement:
    partner: str
    currency: str
    date_from: date
    date_to: date
    opening: int
    closing: int
    lines: list[dict]


def held_balance(*, partner_id: str, currency: str, before: datetime) -> int:
    """``pending + available + in_payout`` from the lines created before ``before``."""
    sums = LedgerLine.objects.filter(
        partner_id=partner_id, currency=currency, purpose__in=HELD_PURPOSES, created__lt=before
    ).aggregate(
        credit=Coalesce(Sum("credit"), Value(0, output_field=IntegerField())),
        debit=Coalesce(Sum("debit"), Value(0, output_field=IntegerField())),
    )
    return sums["credit"] - sums["debit"]


_SETTLEMENT_KINDS = (EntryKind.SETTLEMENT, EntryKind.PAYOUT, EntryKind.PAYOUT_FAILED)


def statement_build(
    *, partner: Partner, currency: str, date_from: date, date_to: date
) -> Statement:
    """A payee's statement for UTC days ``date_from`` to ``date_to`` (both inclusive).

    Two queries: the opening sum, and the period's lines on the three held accounts grouped
    by entry (in SQL), oldest first; the running balance is added as the lines are listed.
    """
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    opening = held_balance(partner_id=partner.pk, currency=currency, before=start)
    rows = (
        LedgerLine.objects.filter(
            partner_id=partner.pk,
            currency=currency,
            purpose__in=HELD_PURPOSES,
            created__gte=start,
            created__lt=end,
        )
        .values(
            "entry_id",
            "entry__kind",
            "entry__order_id",
            "entry__reference",
            "entry__memo",
        )
        .annotate(created=Min("created"), amount=Sum(F("credit") - F("debit")))
        .exclude(amount=0)
        .order_by("created", "entry_id")
    )
    balance = opening
    lines = []
    for row in rows:
        balance += row["amount"]
        kind = row["entry__kind"]
        lines.append(
            {
                "entry": row["entry_id"],
                "created": row["created"],
                "kind": kind,
                "order": row["entry__order_id"],
                "settlement": (row["entry__reference"] or None)
                if kind in _SETTLEMENT_KINDS
                else None,
                "description": row["entry__memo"],
                "amount": row["amount"],
                "balance": balance,
            }
        )
    return Statement(
        partner=partner.pk,
        currency=currency,
        date_from=date_from,
        date_to=date_to,
        opening=opening,
        closing=balance,
        lines=lines,
    )
