"""Reconciliation's checks of the orders: sale and refund postings against the orders, the
refund records, the lines' copied order parties, and unbalanced entries."""

from datetime import date

from django.db import connection
from django.db.models import (
    Case,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Coalesce

from commissions.choices import EntryKind
from commissions.days import period_bounds
from commissions.models import LedgerLine
from commissions.reports.differences import (
    BUYER_FUNDS,
    MAX_DIFFERENCES,
    ZERO,
    Difference,
    formatter,
    period_lines,
)
from orders.models import Order, Refund


def orders_in_scope(*, currency: str, date_from: date, date_to: date):
    """Orders paid, refunded or posted to in the period (in ``currency``)."""
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    posted = (
        period_lines(currency=currency, date_from=date_from, date_to=date_to)
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
        LedgerLine.objects.filter(order_id=OuterRef("pk"), kind=kind, purpose=BUYER_FUNDS)
        .order_by()
        .values("order_id")
        .annotate(total=Sum(amount))
        .values("total")
    )
    return Coalesce(Subquery(lines, output_field=IntegerField()), ZERO)


def order_differences(orders, *, currency: str) -> list[Difference]:
    amount = formatter(currency)
    refund_records = (
        Refund.objects.filter(order_id=OuterRef("pk"))
        .order_by()
        .values("order_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    rows = (
        orders.annotate(
            expected_paid=Case(When(paid_at__isnull=False, then=F("total")), default=ZERO),
            ledger_paid=_ledger_sum(amount="debit", kind=EntryKind.SALE),
            ledger_refunded=_ledger_sum(amount="credit", kind=EntryKind.REFUND),
            refund_records=Coalesce(Subquery(refund_records, output_field=IntegerField()), ZERO),
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


def attribution_differences(*, currency: str, date_from: date, date_to: date):
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


def unbalanced_entries(*, currency: str, date_from: date, date_to: date):
    amount = formatter(currency)
    entry_ids = period_lines(currency=currency, date_from=date_from, date_to=date_to).values(
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
