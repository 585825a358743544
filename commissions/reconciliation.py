"""Reconciliation: does the ledger agree with the orders (and settlements) for a period?

The ledger is written in the same transaction as the order change it records, and PostgreSQL
refuses an unbalanced entry, so a difference here means a bug or a hand-made change: finance
wants to hear of it the next morning, not at the audit. The checks, each one SQL query over the
period (UTC days, both dates inclusive) in one currency:

- ``sale_posting``: per order paid, or with ledger activity or a refund in the period: what the
  order says the buyer paid (``total`` once ``paid_at`` is set, else nothing) against the buyer
  funds debited by its ``sale`` entry. An order paid without a sale entry, or a sale entry for
  an order never paid, shows here.
- ``refund_posting``: the same orders' ``refunded_amount`` against the buyer funds credited back
  by their ``refund`` entries.
- ``refund_records``: ``refunded_amount`` against the sum of the order's refund records.
- ``attribution``: ledger lines whose copied order parties (host app, brand, creator,
  fulfillment partner, live session) or currency differ from their order's, which would put
  their money in the wrong report row.
- ``unbalanced_entry``: entries with lines in the period whose debits differ from their credits
  (the database refuses these; checked anyway, it costs one query).
- ``settlement_entry``, ``settlement_coverage``, ``settlement_payout``: per settlement created,
  paid or failed in the period, its ``net_payout`` against what its settlement entry moved into
  in payout, against the available lines it covers, and against what its payout entry took out.

- ``payee_owes``: every payee whose available balance is below zero at the end of the period
  (a refund after its money was released, settled or paid out): it owes the platform.
- ``payout_while_owed``: every settlement paid in the period whose payee's available balance
  was below zero when the payout was recorded (``mark-paid`` refuses it since the debts work;
  this finds any made before, or by hand).
- ``settlement_entry`` also lists a settlement without its ledger entry whose run completed or
  failed (a failed run's settlements are posted when the run is run again).

Amounts compare as totals over each order's whole life, so a refund posted a month after the
sale is still matched to it; the period only chooses which orders are looked at.

Every new finding is published once as a staff-only ``reconciliation.mismatch`` event: a
finding is its check, object, currency and the two amounts, so the same difference found by
tomorrow's run (or a retried task) is not published again, and a debt that grows is new.
"""

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import (
    Case,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from commissions.choices import AccountPurpose, EntryKind
from commissions.models import LedgerLine, Settlement, SettlementRunStatus, SettlementStatus
from commissions.reports import period_bounds
from livecommerce.money import to_decimal_string
from orders.models import Order, Refund
from partners.events import event_publish
from partners.models import Event

logger = logging.getLogger(__name__)

MAX_DIFFERENCES = 1000
"""At most this many differences are listed per report (``truncated`` says when more were)."""

MISMATCH_EVENT = "reconciliation.mismatch"

_ZERO = Value(0, output_field=IntegerField())
_BUYER_FUNDS = AccountPurpose.BUYER_FUNDS_CLEARING


@dataclass(frozen=True)
class Difference:
    """One thing that does not agree: which check, on which object, what each side says.

    ``expected`` is what the orders (or settlements) say, ``actual`` what the ledger says, both
    in minor units; either is ``None`` for checks that are not about an amount.
    """

    check: str
    object_id: str
    expected: int | None
    actual: int | None
    detail: str


@dataclass
class ReconciliationReport:
    currency: str
    date_from: date
    date_to: date
    orders_checked: int = 0
    entries_checked: int = 0
    settlements_checked: int = 0
    differences: list[Difference] = field(default_factory=list)
    truncated: bool = False

    @property
    def consistent(self) -> bool:
        return not self.differences

    def add(self, differences) -> None:
        for difference in differences:
            if len(self.differences) >= MAX_DIFFERENCES:
                self.truncated = True
                return
            self.differences.append(difference)


def _formatter(currency: str):
    """Amounts in a difference's text are written as the API writes them ("19.99")."""
    return lambda minor: to_decimal_string(minor, currency)


def _period_lines(*, currency: str, date_from: date, date_to: date):
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    return LedgerLine.objects.filter(currency=currency, created__gte=start, created__lt=end)


def _orders_in_scope(*, currency: str, date_from: date, date_to: date):
    """Orders paid, refunded or posted to in the period (in ``currency``)."""
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    posted = (
        _period_lines(currency=currency, date_from=date_from, date_to=date_to)
        .filter(order__isnull=False)
        .values("order_id")
    )
    refunded = Refund.objects.filter(created__gte=start, created__lt=end).values("order_id")
    return Order.objects.filter(
        Q(paid_at__gte=start, paid_at__lt=end, currency=currency)
        | Q(pk__in=posted)
        | Q(pk__in=refunded, currency=currency)
    )


def _ledger_sum(*, amount: str, kind: str):
    lines = (
        LedgerLine.objects.filter(order_id=OuterRef("pk"), kind=kind, purpose=_BUYER_FUNDS)
        .order_by()
        .values("order_id")
        .annotate(total=Sum(amount))
        .values("total")
    )
    return Coalesce(Subquery(lines, output_field=IntegerField()), _ZERO)


def _order_differences(orders, *, currency: str) -> list[Difference]:
    amount = _formatter(currency)
    refund_records = (
        Refund.objects.filter(order_id=OuterRef("pk"))
        .order_by()
        .values("order_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    rows = (
        orders.annotate(
            expected_paid=Case(When(paid_at__isnull=False, then=F("total")), default=_ZERO),
            ledger_paid=_ledger_sum(amount="debit", kind=EntryKind.SALE),
            ledger_refunded=_ledger_sum(amount="credit", kind=EntryKind.REFUND),
            refund_records=Coalesce(Subquery(refund_records, output_field=IntegerField()), _ZERO),
        )
        .filter(
            ~Q(ledger_paid=F("expected_paid"))
            | ~Q(ledger_refunded=F("refunded_amount"))
            | ~Q(refund_records=F("refunded_amount"))
        )
        .order_by("pk")
        .values(
            "pk",
            "status",
            "expected_paid",
            "ledger_paid",
            "refunded_amount",
            "ledger_refunded",
            "refund_records",
        )[:MAX_DIFFERENCES]
    )
    differences = []
    for row in rows:
        if row["ledger_paid"] != row["expected_paid"]:
            differences.append(
                Difference(
                    "sale_posting",
                    row["pk"],
                    row["expected_paid"],
                    row["ledger_paid"],
                    f"The order ({row['status']}) says the buyer paid "
                    f"{amount(row['expected_paid'])}; its sale entry debited buyer funds "
                    f"{amount(row['ledger_paid'])}.",
                )
            )
        if row["ledger_refunded"] != row["refunded_amount"]:
            differences.append(
                Difference(
                    "refund_posting",
                    row["pk"],
                    row["refunded_amount"],
                    row["ledger_refunded"],
                    f"The order says {amount(row['refunded_amount'])} was refunded; its refund "
                    f"entries credited buyer funds {amount(row['ledger_refunded'])}.",
                )
            )
        if row["refund_records"] != row["refunded_amount"]:
            differences.append(
                Difference(
                    "refund_records",
                    row["pk"],
                    row["refunded_amount"],
                    row["refund_records"],
                    f"The order says {amount(row['refunded_amount'])} was refunded; its refunds "
                    f"add up to {amount(row['refund_records'])}.",
                )
            )
    return differences


_ATTRIBUTION_SQL = """
SELECT l.order_id, COUNT(*)
  FROM {lines} l
  JOIN {orders} o ON o.id = l.order_id
 WHERE l.currency = %s AND l.created >= %s AND l.created < %s
   AND (l.host_app_id {distinct} o.host_app_id
        OR l.brand_id {distinct} o.brand_id
        OR l.creator_id {distinct} o.creator_id
        OR l.fulfillment_partner_id {distinct} o.fulfillment_partner_id
        OR l.live_session_id {distinct} o.live_session_id
        OR l.currency <> o.currency)
 GROUP BY l.order_id
 ORDER BY l.order_id
 LIMIT %s
"""


def _attribution_differences(*, currency: str, date_from: date, date_to: date):
    """Ledger lines whose copied parties are not their order's (``IS DISTINCT FROM``: nulls)."""
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    sql = _ATTRIBUTION_SQL.format(
        lines=connection.ops.quote_name(LedgerLine._meta.db_table),
        orders=connection.ops.quote_name(Order._meta.db_table),
        # SQLite's null-safe "differs" is IS NOT (IS DISTINCT FROM only from SQLite 3.39).
        distinct="IS NOT" if connection.vendor == "sqlite" else "IS DISTINCT FROM",
    )
    # As the ORM passes datetimes (SQLite compares the stored text: the same text format).
    start, end = (connection.ops.adapt_datetimefield_value(value) for value in (start, end))
    with connection.cursor() as cursor:
        cursor.execute(sql, [currency, start, end, MAX_DIFFERENCES])
        rows = cursor.fetchall()
    return [
        Difference(
            "attribution",
            order_id,
            None,
            None,
            f"{count} ledger line(s) name other parties or another currency than the order.",
        )
        for order_id, count in rows
    ]


def _unbalanced_entries(*, currency: str, date_from: date, date_to: date):
    amount = _formatter(currency)
    entry_ids = _period_lines(currency=currency, date_from=date_from, date_to=date_to).values(
        "entry_id"
    )
    rows = (
        LedgerLine.objects.filter(entry_id__in=entry_ids)
        .order_by()
        .values("entry_id")
        .annotate(debits=Sum("debit"), credits=Sum("credit"))
        .exclude(debits=F("credits"))
        .order_by("entry_id")[:MAX_DIFFERENCES]
    )
    return [
        Difference(
            "unbalanced_entry",
            row["entry_id"],
            row["debits"],
            row["credits"],
            f"Debits {amount(row['debits'])} and credits {amount(row['credits'])} differ.",
        )
        for row in rows
    ]


def _ledger_amount(lines, amount):
    return Coalesce(
        Subquery(
            lines.order_by().values("entry_id").annotate(total=Sum(amount)).values("total")[:1],
            output_field=IntegerField(),
        ),
        _ZERO,
    )


def _settlements_in_scope(*, currency: str, date_from: date, date_to: date):
    """Settlements of ``currency`` created, paid or failed in the period."""
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    return Settlement.objects.filter(
        Q(created__gte=start, created__lt=end)
        | Q(paid_at__gte=start, paid_at__lt=end)
        | Q(failed_at__gte=start, failed_at__lt=end),
        currency=currency,
    )


def _settlement_differences(settlements, *, currency: str) -> list[Difference]:
    """Each settlement's ``net_payout`` against the ledger, three ways.

    ``settlement_entry``: what its settlement entry moved into the payee's in-payout account
    (a completed or failed run's settlement must have its entry: a failed run is run again).
    ``settlement_coverage``: the lines it covers on the payee's available account, net (the
    range ``after_line_id < id <= to_line_id``, the settlement entries' own debits aside).
    ``settlement_payout``: what its payout (or failed payout) entry took out of in payout,
    once it is paid or failed.
    """
    amount = _formatter(currency)
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
            covered_amount=Coalesce(Subquery(covered, output_field=IntegerField()), _ZERO),
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


def _debt_differences(*, currency: str, date_from: date, date_to: date) -> list[Difference]:
    """``payee_owes``: payees whose available balance is negative at the end of the period
    (one aggregate over the currency's available lines)."""
    amount = _formatter(currency)
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


def _payouts_while_owed(settlements, *, currency: str) -> list[Difference]:
    """``payout_while_owed``: settlements marked paid while their payee's available balance
    was negative (the balance from every available line up to the payout's entry)."""
    amount = _formatter(currency)
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
        .annotate(available=Coalesce(Subquery(available_then, output_field=IntegerField()), _ZERO))
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


def reconciliation_report(*, currency: str, date_from: date, date_to: date) -> ReconciliationReport:
    """Compare the ledger with the orders and settlements for a period; list what differs.

    Read-only; a handful of queries whatever the period's size. The orders looked at are those
    paid, refunded or posted to in the period; each is compared over its whole life.
    """
    report = ReconciliationReport(currency=currency, date_from=date_from, date_to=date_to)
    orders = _orders_in_scope(currency=currency, date_from=date_from, date_to=date_to)
    period = {"currency": currency, "date_from": date_from, "date_to": date_to}
    report.orders_checked = orders.count()
    report.entries_checked = (
        _period_lines(**period).order_by().values("entry_id").distinct().count()
    )
    report.add(_order_differences(orders, currency=currency))
    report.add(_attribution_differences(**period))
    report.add(_unbalanced_entries(**period))
    settlements = _settlements_in_scope(**period)
    report.settlements_checked = settlements.count()
    report.add(_settlement_differences(settlements, currency=currency))
    report.add(_payouts_while_owed(settlements, currency=currency))
    report.add(_debt_differences(**period))
    return report


def _currencies_active(*, day: date) -> list[str]:
    start, end = period_bounds(date_from=day, date_to=day)
    posted = LedgerLine.objects.filter(created__gte=start, created__lt=end).values_list(
        "currency", flat=True
    )
    paid = Order.objects.filter(paid_at__gte=start, paid_at__lt=end).values_list(
        "currency", flat=True
    )
    refunded = Order.objects.filter(
        pk__in=Refund.objects.filter(created__gte=start, created__lt=end).values("order_id")
    ).values_list("currency", flat=True)
    return sorted(
        set(posted.order_by().distinct())
        | set(paid.order_by().distinct())
        | set(refunded.order_by().distinct())
    )


def mismatch_event_data(report: ReconciliationReport) -> dict:
    """What the ``reconciliation.mismatch`` event says: the period, the counts, a sample."""
    counts: dict[str, int] = {}
    for difference in report.differences:
        counts[difference.check] = counts.get(difference.check, 0) + 1
    return {
        "currency": report.currency,
        "date_from": report.date_from.isoformat(),
        "date_to": report.date_to.isoformat(),
        "differences": len(report.differences),
        "truncated": report.truncated,
        "checks": counts,
        "sample": [
            {
                "check": d.check,
                "object": d.object_id,
                "expected": d.expected,
                "actual": d.actual,
                "detail": d.detail,
            }
            for d in report.differences[:20]
        ],
    }


def reconciliation_run(*, day: date | None = None) -> dict[str, int]:
    """Reconcile one UTC day (yesterday by default) in every currency that moved; alert on any
    difference with an error log and a staff-only ``reconciliation.mismatch`` event per new
    finding.

    Safe to run twice: a finding already published is not published again. Returns the number
    of differences per currency.
    """
    day = day or (timezone.now().date() - timedelta(days=1))
    result: dict[str, int] = {}
    for currency in _currencies_active(day=day):
        report = reconciliation_report(currency=currency, date_from=day, date_to=day)
        result[currency] = len(report.differences)
        if report.consistent:
            logger.info("reconciliation %s %s: consistent", day, currency)
            continue
        data = mismatch_event_data(report)
        logger.error(
            "reconciliation %s %s: %d difference(s) %s",
            day,
            currency,
            len(report.differences),
            data["checks"],
        )
        for difference in report.differences:
            _publish_finding(report, difference)
    return result


def finding_id(*, currency: str, difference: Difference) -> str:
    """The event object of a finding: the same check, object, currency and amounts, the same
    finding."""
    identity = "|".join(
        str(part)
        for part in (
            difference.check,
            difference.object_id,
            currency,
            difference.expected,
            difference.actual,
        )
    )
    return f"rcf_{hashlib.sha256(identity.encode()).hexdigest()[:26]}"


def finding_event_data(report: ReconciliationReport, difference: Difference) -> dict:
    """What a ``reconciliation.mismatch`` event says: one finding, and the day it was found."""
    amount = _formatter(report.currency)
    return {
        "check": difference.check,
        "object": difference.object_id,
        "currency": report.currency,
        "expected": None if difference.expected is None else amount(difference.expected),
        "actual": None if difference.actual is None else amount(difference.actual),
        "detail": difference.detail,
        "date_from": report.date_from.isoformat(),
        "date_to": report.date_to.isoformat(),
    }


def _publish_finding(report: ReconciliationReport, difference: Difference) -> None:
    object_id = finding_id(currency=report.currency, difference=difference)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Two runs at once (a retried task) publish a finding once.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [object_id])
        if Event.objects.filter(object_id=object_id, type=MISMATCH_EVENT).exists():
            return
        # No recipients: staff read it on GET /events; no partner is told of the platform's books.
        event_publish(
            type=MISMATCH_EVENT,
            object_id=object_id,
            data=finding_event_data(report, difference),
            partner_ids=[],
        )
