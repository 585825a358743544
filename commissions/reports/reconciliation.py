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
from django.utils import timezone

from commissions.days import period_bounds
from commissions.models import LedgerLine
from commissions.reports.differences import (
    MAX_DIFFERENCES,
    Difference,
    formatter,
    period_lines,
)
from commissions.reports.order_checks import (
    attribution_differences,
    order_differences,
    orders_in_scope,
    unbalanced_entries,
)
from commissions.reports.settlement_checks import (
    debt_differences,
    payouts_while_owed,
    settlement_differences,
    settlements_in_scope,
)
from orders.models import Order, Refund
from partners.events import event_publish
from partners.models import Event

logger = logging.getLogger(__name__)

MISMATCH_EVENT = "reconciliation.mismatch"


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


def reconciliation_report(*, currency: str, date_from: date, date_to: date) -> ReconciliationReport:
    """Compare the ledger with the orders and settlements for a period; list what differs.

    Read-only; a handful of queries whatever the period's size. The orders looked at are those
    paid, refunded or posted to in the period; each is compared over its whole life.
    """
    report = ReconciliationReport(currency=currency, date_from=date_from, date_to=date_to)
    orders = orders_in_scope(currency=currency, date_from=date_from, date_to=date_to)
    period = {"currency": currency, "date_from": date_from, "date_to": date_to}
    report.orders_checked = orders.count()
    report.entries_checked = period_lines(**period).order_by().values("entry_id").distinct().count()
    report.add(order_differences(orders, currency=currency))
    report.add(attribution_differences(**period))
    report.add(unbalanced_entries(**period))
    settlements = settlements_in_scope(**period)
    report.settlements_checked = settlements.count()
    report.add(settlement_differences(settlements, currency=currency))
    report.add(payouts_while_owed(settlements, currency=currency))
    report.add(debt_differences(**period))
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
    amount = formatter(report.currency)
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
