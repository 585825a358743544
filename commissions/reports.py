"""Finance commission reports: one GROUP BY over ledger lines, aggregated in SQL.

The ledger copies each order's parties (host app, brand, creator, fulfillment partner, live
session) and the ``share`` onto every line, so a report is a single conditional aggregation over
``commissions_ledgerline`` filtered by currency and period; nothing is summed in Python but the
handful of group rows that make the totals.

Definitions, over the ledger lines of the period (``LedgerLine.created`` in
``[date_from 00:00 UTC, date_to + 1 day 00:00 UTC)``) in one currency:

- ``gross_merchandise_value``: merchandise the buyers paid, i.e. the ``merchandise`` debits of
  ``buyer_funds_clearing`` in ``sale`` entries (no shipping, no tax).
- ``refunds``: merchandise returned to buyers, i.e. the ``merchandise`` credits of
  ``buyer_funds_clearing`` in ``refund`` entries (refunded shipping and tax are not merchandise
  and are left out, as they are left out of the GMV).
- ``platform_commission``, ``creator_commission``, ``fulfillment_fees``, ``net_to_brands``: each
  share net of its reversals, i.e. credits minus debits of the lines carrying that share on the
  parties' accounts (everything but ``buyer_funds_clearing``). A refund posted in a later period
  lowers that later period's figures, never the period of the sale.
- ``orders``: the number of orders with a ``sale`` entry in the period (orders paid then).

Because every share is net of reversals and the brand takes what the other shares leave,
``gross_merchandise_value - refunds == platform_commission + creator_commission +
fulfillment_fees + net_to_brands`` for every row and for the totals.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth

from commissions.choices import AccountPurpose, EntryKind, Share
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

_BUYER_FUNDS = AccountPurpose.BUYER_FUNDS_CLEARING
# The party-side share behind each net figure.
_NET_SHARES = {
    "platform_commission": Share.PLATFORM_COMMISSION,
    "creator_commission": Share.CREATOR_COMMISSION,
    "fulfillment_fees": Share.FULFILLMENT_FEE,
    "net_to_brands": Share.BRAND_NET,
}
# The report reads sales and their refunds. Releases only move a share from pending to available
# (net zero per share), settlements and payouts carry no share: all are left out up front, as
# are the shipping and tax lines, which are neither merchandise nor commission.
_REPORTED_KINDS = (EntryKind.SALE, EntryKind.REFUND)
_REPORTED_SHARES = (Share.MERCHANDISE, *_NET_SHARES.values())


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


def period_bounds(*, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """``[date_from 00:00 UTC, date_to + 1 day 00:00 UTC)``: both dates inclusive, UTC days."""
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC)
    return start, end


def figure_aggregates() -> dict:
    """The conditional aggregates (``SUM(...) FILTER (WHERE ...)``) of the report's figures."""
    buyer_funds = Q(purpose=_BUYER_FUNDS)
    aggregates = {
        "orders": Count("order", distinct=True, filter=Q(kind=EntryKind.SALE) & buyer_funds),
        "gross_merchandise_value": Sum(
            "debit",
            filter=Q(kind=EntryKind.SALE, share=Share.MERCHANDISE) & buyer_funds,
            default=0,
        ),
        "refunds": Sum(
            "credit",
            filter=Q(kind=EntryKind.REFUND, share=Share.MERCHANDISE) & buyer_funds,
            default=0,
        ),
    }
    for name, share in _NET_SHARES.items():
        aggregates[name] = Sum(
            F("credit") - F("debit"), filter=Q(share=share) & ~buyer_funds, default=0
        )
    return aggregates


def report_lines(*, date_from: date, date_to: date, currency: str):
    """The ledger lines a report reads: one currency, one period, lines about a purchase."""
    start, end = period_bounds(date_from=date_from, date_to=date_to)
    return LedgerLine.objects.filter(
        currency=currency,
        created__gte=start,
        created__lt=end,
        kind__in=_REPORTED_KINDS,
        share__in=_REPORTED_SHARES,
    ).order_by()  # no default ordering: it would end up in the GROUP BY


def _group_expression(group_by: str):
    if group_by == "day":
        return TruncDate("created", tzinfo=UTC)
    if group_by == "month":
        return TruncMonth("created", tzinfo=UTC)
    return F(f"{group_by}_id")


def _group_key(group_by: str, value) -> str | None:
    if value is None:
        return None
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

    One SQL query (``GROUP BY`` with conditional aggregation) reads the ledger; one more looks up
    the groups' names. The totals are the sum of the group rows, which the tests check against
    the ledger summed directly.
    """
    if group_by not in GROUP_BY_CHOICES:
        raise ValueError(f"group_by must be one of {GROUP_BY_CHOICES}, not {group_by!r}")
    grouped = (
        report_lines(date_from=date_from, date_to=date_to, currency=currency)
        .annotate(group_key=_group_expression(group_by))
        .values("group_key")
        .annotate(**figure_aggregates())
    )
    results = [
        (_group_key(group_by, row.pop("group_key")), Figures(**row)) for row in grouped.iterator()
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
