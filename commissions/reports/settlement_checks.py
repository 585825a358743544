"""Reconciliation's checks of the settlements: each settlement against its entries and the lines
it covers, the payees who owe, and payouts made while a payee owed."""

from datetime import date

from django.db.models import (
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce

from commissions.choices import AccountPurpose, EntryKind
from commissions.days import period_bounds
from commissions.models import LedgerLine, Settlement, SettlementRunStatus, SettlementStatus
from commissions.reports.differences import (
    MAX_DIFFERENCES,
    ZERO,
    Difference,
    formatter,
)


def _ledger_amount(lines, amount):
    return Coalesce(
        Subquery(
            lines.order_by().values("entry_id").annotate(total=Sum(amount)).values("total")[:1],
            output_field=IntegerField(),
        ),
        ZERO,
    )


def settlements_in_scope(*, currency: str, date_from: date, date_to: date):
    """Settlements of ``currency`` created, paid or failed in the period."""
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    return Settlement.objects.filter(
        Q(created__gte=start, created__lt=end)
        | Q(paid_at__gte=start, paid_at__lt=end)
        | Q(failed_at__gte=start, failed_at__lt=end),
        currency=currency,
    )


def settlement_differences(settlements, *, currency: str) -> list[Difference]:
    """Each settlement's ``net_payout`` against the ledger, three ways.

    ``settlement_entry``: what its settlement entry moved into the payee's in-payout account
    (a completed or failed run's settlement must have its entry: a failed run is run again).
    ``settlement_coverage``: the lines it covers on the payee's available account, net (the
    range ``after_line_id < id <= to_line_id``, the settlement entries' own debits aside).
    ``settlement_payout``: what its payout (or failed payout) entry took out of in payout,
    once it is paid or failed.
    """
    amount = formatter(currency)
    in_payout = AccountPurpose.PARTNER_IN_PAYOUT
    covered = (
        LedgerLine.objects.filter(
            account_id=OuterRef("account_id"),
            id__gt=OuterRef("after_line_id"),
            id__lte=OuterRef("to_line_id"),
        )
        .exclude(kind=EntryKind.SETTLEMENT)
        .order_by()
        .values("account_id")
        .annotate(total=Sum(F("credit") - F("debit")))
        .values("total")
    )
    rows = (
        settlements.annotate(
            entry_amount=_ledger_amount(
                LedgerLine.objects.filter(
                    entry_id=OuterRef("entry_id"),
                    purpose=in_payout,
                    partner_id=OuterRef("partner_id"),
                ),
                "credit",
            ),
            covered_amount=Coalesce(Subquery(covered, output_field=IntegerField()), ZERO),
            payout_amount=_ledger_amount(
                LedgerLine.objects.filter(
                    entry_id=OuterRef("payout_entry_id"),
                    purpose=in_payout,
                    partner_id=OuterRef("partner_id"),
                ),
                "debit",
            ),
        )
        .filter(
            (Q(entry__isnull=False) & ~Q(entry_amount=F("net_payout")))
            | Q(
                entry__isnull=True,
                run__status__in=(SettlementRunStatus.COMPLETED, SettlementRunStatus.FAILED),
            )
            | ~Q(covered_amount=F("net_payout"))
            | (Q(payout_entry__isnull=False) & ~Q(payout_amount=F("net_payout")))
            | Q(
                payout_entry__isnull=True,
                status__in=(SettlementStatus.PAID, SettlementStatus.FAILED),
            )
        )
        .order_by("pk")
        .values(
            "pk",
            "status",
            "net_payout",
            "entry_id",
            "entry_amount",
            "covered_amount",
            "payout_entry_id",
            "payout_amount",
        )[:MAX_DIFFERENCES]
    )
    differences = []
    for row in rows:
        net = row["net_payout"]
        if row["entry_amount"] != net:
            posted = "does not exist: it moved" if row["entry_id"] is None else "moved"
            differences.append(
                Difference(
                    "settlement_entry",
                    row["pk"],
                    net,
                    row["entry_amount"],
                    f"Net payout {amount(net)}; its settlement entry {posted} "
                    f"{amount(row['entry_amount'])} into in payout.",
                )
            )
        if row["covered_amount"] != net:
            differences.append(
                Difference(
                    "settlement_coverage",
                    row["pk"],
                    net,
                    row["covered_amount"],
                    f"Net payout {amount(net)}; the available lines it covers net to "
                    f"{amount(row['covered_amount'])}.",
                )
            )
        paid_or_failed = row["status"] in (SettlementStatus.PAID, SettlementStatus.FAILED)
        if (row["payout_entry_id"] is not None or paid_or_failed) and row["payout_amount"] != net:
            differences.append(
                Difference(
                    "settlement_payout",
                    row["pk"],
                    net,
                    row["payout_amount"],
                    f"The settlement is {row['status']} for {amount(net)}; its payout entry took "
                    f"{amount(row['payout_amount'])} out of in payout.",
                )
            )
    return differences


def debt_differences(*, currency: str, date_from: date, date_to: date) -> list[Difference]:
    """``payee_owes``: payees whose available balance is negative at the end of the period
    (one aggregate over the currency's available lines)."""
    amount = formatter(currency)
    _, end = period_bounds(date_from=date_from, date_to=date_to)
    rows = (
        LedgerLine.objects.filter(
            currency=currency, purpose=AccountPurpose.PARTNER_AVAILABLE, created__lt=end
        )
        .order_by()
        .values("partner_id")
        .annotate(available=Sum(F("credit") - F("debit")))
        .filter(available__lt=0)
        .order_by("partner_id")[:MAX_DIFFERENCES]
    )
    return [
        Difference(
            "payee_owes",
            row["partner_id"],
            0,
            row["available"],
            f"The payee owes {amount(-row['available'])}: its available balance is "
            f"{amount(row['available'])} at the end of the period.",
        )
        for row in rows
    ]


def payouts_while_owed(settlements, *, currency: str) -> list[Difference]:
    """``payout_while_owed``: settlements marked paid while their payee's available balance
    was negative (the balance from every available line up to the payout's entry)."""
    amount = formatter(currency)
    available_then = (
        LedgerLine.objects.filter(
            partner_id=OuterRef("partner_id"),
            currency=currency,
            purpose=AccountPurpose.PARTNER_AVAILABLE,
            created__lte=OuterRef("payout_entry__created"),
        )
        .order_by()
        .values("partner_id")
        .annotate(total=Sum(F("credit") - F("debit")))
        .values("total")
    )
    rows = (
        settlements.filter(status=SettlementStatus.PAID, payout_entry__isnull=False)
        .annotate(available=Coalesce(Subquery(available_then, output_field=IntegerField()), ZERO))
        .filter(available__lt=0)
        .order_by("pk")
        .values("pk", "partner_id", "net_payout", "available")[:MAX_DIFFERENCES]
    )
    return [
        Difference(
            "payout_while_owed",
            row["pk"],
            0,
            row["available"],
            f"Paid out {amount(row['net_payout'])} to {row['partner_id']} while it owed "
            f"{amount(-row['available'])}.",
        )
        for row in rows
    ]
