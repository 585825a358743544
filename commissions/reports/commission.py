"""Finance commission reports: aggregated in SQL over ledger lines, in one statement.

The ledger copies each order's parties (host app, brand, creator, fulfillment partner, live
session) and the ``share`` onto every line, so a report is a conditional aggregation over
``commissions_ledgerline`` alone, filtered by currency and period; nothing is summed in Python
but the handful of group rows that make the totals.

Definitions, over the ledger lines of the period (``LedgerLine.created`` in
``[date_from 00:00 UTC, date_to + 1 day 00:00 UTC)``) in one currency:

- ``gross_merchandise_value``: merchandise the buyers paid, i.e. the ``merchandise`` debits
  (of buyer funds clearing) in ``sale`` entries: no shipping, no tax.
- ``refunds``: merchandise returned to buyers, i.e. the ``merchandise`` credits (of buyer funds
  clearing) in ``refund`` entries. Refunded shipping and tax are left out, as they are left out
  of the GMV.
- ``platform_commission``, ``creator_commission``, ``fulfillment_fees``, ``net_to_brands``: each
  share net of its reversals, i.e. credits minus debits of the lines carrying that share in
  ``sale`` and ``refund`` entries. A refund posted in a later period lowers that later period's
  figures, never the period of the sale. (Releases only move a share from pending to available,
  which nets to zero per share; they are left out.)
- ``orders``: the number of orders with a ``sale`` entry in the period (orders paid then).

The ledger puts the ``merchandise`` share on buyer funds clearing only and the four parties'
shares on the parties' accounts only (a test holds it to that), so the share alone says which
side a line is on. Because every share is net of reversals and the brand takes what the other
shares leave, ``gross_merchandise_value - refunds == platform_commission + creator_commission +
fulfillment_fees + net_to_brands`` for every row and for the totals.

Performance: ``COUNT(DISTINCT order_id)`` can only be computed by sorting, which would force the
whole aggregation to sort. So the statement is two aggregations joined by group: the money
figures (hash aggregation, parallel) and the order count over the sale merchandise lines only.
Both read covering partial indexes (migration ``0005_report_indexes``) with index-only scans.
See docs/reports.md and the figures in docs/benchmarks.md.
"""

from dataclasses import dataclass, field
from datetime import UTC, date

from django.db import connection
from django.db.models import F, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth

from commissions.choices import EntryKind, Share
from commissions.days import period_bounds
from commissions.models import LedgerLine
from orders.models import LiveSession
from partners.models import Partner

GROUP_BY_PARTNER = ("host_app", "brand", "creator", "fulfillment_partner")
GROUP_BY_CHOICES = (*GROUP_BY_PARTNER, "live_session", "day", "month")
DEFAULT_GROUP_BY = "day"

MONEY_FIGURES = (
    "gross_merchandise_value",
    "platform_commission",
    "creator_commission",
    "fulfillment_fees",
    "refunds",
    "net_to_brands",
)
FIGURES = ("orders", *MONEY_FIGURES)

# The share behind each net figure.
NET_SHARES = {
    "platform_commission": Share.PLATFORM_COMMISSION,
    "creator_commission": Share.CREATOR_COMMISSION,
    "fulfillment_fees": Share.FULFILLMENT_FEE,
    "net_to_brands": Share.BRAND_NET,
}
# What the report reads, and what the partial index ``ledger_line_report`` holds: sales and
# refunds, merchandise and the four parties' shares. Shipping and tax lines are neither
# merchandise nor commission; settlements and payouts carry no share.
REPORTED_KINDS = (EntryKind.SALE, EntryKind.REFUND)
REPORTED_SHARES = (Share.MERCHANDISE, *NET_SHARES.values())


@dataclass(frozen=True)
class Figures:
    """The report's figures for one group (or the totals), amounts in minor units."""

    orders: int = 0
    gross_merchandise_value: int = 0
    platform_commission: int = 0
    creator_commission: int = 0
    fulfillment_fees: int = 0
    refunds: int = 0
    net_to_brands: int = 0

    def __add__(self, other: "Figures") -> "Figures":
        return Figures(**{name: getattr(self, name) + getattr(other, name) for name in FIGURES})


@dataclass(frozen=True)
class ReportRow:
    """One group: its key (a partner or live session id, ``YYYY-MM-DD``, ``YYYY-MM``; ``None``
    for orders without that party, e.g. no creator), a readable name, and its figures."""

    group: str | None
    name: str | None
    figures: Figures


@dataclass(frozen=True)
class CommissionReport:
    group_by: str
    currency: str
    date_from: date
    date_to: date
    rows: list[ReportRow] = field(default_factory=list)
    totals: Figures = field(default_factory=Figures)


def money_aggregates() -> dict:
    """The money figures as conditional aggregates (``SUM(...) FILTER (WHERE ...)``)."""
    merchandise = Q(share=Share.MERCHANDISE)
    aggregates = {
        "gross_merchandise_value": Sum(
            "debit", filter=merchandise & Q(kind=EntryKind.SALE), default=0
        ),
        "refunds": Sum("credit", filter=merchandise & Q(kind=EntryKind.REFUND), default=0),
    }
    for name, share in NET_SHARES.items():
        aggregates[name] = Sum(F("credit") - F("debit"), filter=Q(share=share), default=0)
    return aggregates


def report_lines(*, date_from: date, date_to: date, currency: str):
    """The ledger lines a report reads: one currency, one period, sales and refunds."""
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    return LedgerLine.objects.filter(
        currency=currency,
        created__gte=start,
        created__lt=end,
        kind__in=REPORTED_KINDS,
        share__in=REPORTED_SHARES,
    ).order_by()  # no default ordering: it would end up in the GROUP BY


def sale_lines(*, date_from: date, date_to: date, currency: str):
    """The merchandise lines of the period's sales: one or more per order paid."""
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    return LedgerLine.objects.filter(
        currency=currency,
        created__gte=start,
        created__lt=end,
        kind=EntryKind.SALE,
        share=Share.MERCHANDISE,
    ).order_by()


def _group_expression(group_by: str):
    if group_by == "day":
        return TruncDate("created", tzinfo=UTC)
    if group_by == "month":
        return TruncMonth("created", tzinfo=UTC)
    return F(f"{group_by}_id")


def report_sql(
    *, date_from: date, date_to: date, currency: str, group_by: str
) -> tuple[str, tuple]:
    """The report's one statement: money figures and order counts per group, put together.

    Both halves are built by the ORM (the group expressions, the UTC truncation, the filters);
    the statement only stacks them and sums per group.
    """
    period = {"date_from": date_from, "date_to": date_to, "currency": currency}
    money = (
        report_lines(**period)
        .annotate(group_key=_group_expression(group_by))
        .values("group_key")
        .annotate(**money_aggregates())
    )
    # Each (group, order) once, which PostgreSQL can hash, then counted per group below:
    # COUNT(DISTINCT order_id) would sort the sale lines instead.
    sold = (
        sale_lines(**period)
        .annotate(group_key=_group_expression(group_by))
        .values("group_key", "order_id")
        .distinct()
    )
    money_sql, money_params = money.query.sql_with_params()
    sold_sql, sold_params = sold.query.sql_with_params()
    quote = connection.ops.quote_name
    money_columns = ", ".join(quote(name) for name in MONEY_FIGURES)
    zeros = ", ".join("0" for _ in MONEY_FIGURES)
    sums = ", ".join(f"SUM({quote(name)})" for name in ("orders", *MONEY_FIGURES))
    # Stacked and grouped again rather than joined: GROUP BY puts the NULL groups ("no
    # creator") together and hashes, where a join would need IS NOT DISTINCT FROM (a nested
    # loop). Only ORM-compiled SQL and quoted names go into the text; values are parameters.
    sql = (
        f"SELECT group_key, {sums} FROM ("  # noqa: S608
        f"SELECT group_key, 0 AS orders, {money_columns} FROM ({money_sql}) money "
        f"UNION ALL SELECT group_key, COUNT(*), {zeros} FROM ({sold_sql}) sold GROUP BY group_key"
        ") stacked GROUP BY group_key"
    )
    return sql, (*money_params, *sold_params)


def _group_key(group_by: str, value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns the truncated dates as text, not dates
        return value[:10] if group_by == "day" else value[:7] if group_by == "month" else value
    if group_by == "day":
        return value.isoformat()
    if group_by == "month":
        return value.strftime("%Y-%m")
    return str(value)


def _group_names(group_by: str, keys: list[str]) -> dict[str, str]:
    """Readable names for the groups: partner names, live session titles, the dates as they are."""
    ids = [key for key in keys if key is not None]
    if group_by in GROUP_BY_PARTNER:
        return dict(Partner.objects.filter(pk__in=ids).values_list("pk", "name"))
    if group_by == "live_session":
        return dict(LiveSession.objects.filter(pk__in=ids).values_list("pk", "title"))
    return {key: key for key in ids}


def commission_report(
    *, date_from: date, date_to: date, currency: str, group_by: str = DEFAULT_GROUP_BY
) -> CommissionReport:
    """Commission figures for a period and currency, per group, with totals.

    One SQL statement reads the ledger (see ``report_sql``); one more looks up the groups'
    names. The totals are the sum of the group rows, which the tests check against the ledger
    summed directly.
    """
    if group_by not in GROUP_BY_CHOICES:
        raise ValueError(f"group_by must be one of {GROUP_BY_CHOICES}, not {group_by!r}")
    sql, params = report_sql(
        date_from=date_from, date_to=date_to, currency=currency, group_by=group_by
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    results = [
        (
            _group_key(group_by, key),
            # SUM of bigint is numeric in PostgreSQL (a Decimal here), always whole: int() is exact
            Figures(
                orders=orders, **{n: int(v) for n, v in zip(MONEY_FIGURES, money, strict=True)}
            ),
        )
        for key, orders, *money in fetched
    ]
    # Chronological for day and month; by id otherwise, "no such party" last.
    results.sort(key=lambda item: (item[0] is None, item[0] or ""))
    names = _group_names(group_by, [key for key, _ in results])
    rows = [ReportRow(group=key, name=names.get(key), figures=figures) for key, figures in results]
    totals = sum((row.figures for row in rows), Figures())
    return CommissionReport(
        group_by=group_by,
        currency=currency,
        date_from=date_from,
        date_to=date_to,
        rows=rows,
        totals=totals,
    )
