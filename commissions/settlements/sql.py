"""The settlement figures: one SQL text, run on PostgreSQL (production) and SQLite (embedded).

``FIGURES_SQL`` computes, for every payee of a run, the range of its available account's lines
the settlement covers and every figure of the settlement, in one statement over the lines (never
a statement per line or per payee). It is written once, in SQL that both databases run: ``CAST``
rather than ``::``, an ``IN`` list of placeholders rather than ``= ANY(array)``, ``->>`` for
the minimum payout (JSON on both), ``MATERIALIZED`` (SQLite 3.35+). What differs is how the
statement ends, a fragment chosen by ``connection.vendor``:

- PostgreSQL: ``WRITE_POSTGRESQL`` inserts the settlement rows in the same statement (a
  data-modifying CTE, ``INSERT ... SELECT ... RETURNING``, which SQLite does not have), their ids
  handed in as an array, and returns the three counts;
- SQLite, and ``payee_figures`` on either database: ``SELECT_FIGURES`` returns the rows, which
  ``settlements_write`` writes with one ``bulk_create``.

So the figures cannot differ between the two databases: there is one text of them. A test runs
``payee_figures`` on PostgreSQL before the run writes its rows and compares every figure
(tests/settlements/test_portable.py); tests/test_embedded_default.py runs it on SQLite.

On PostgreSQL the lines are read through ``ledger_line_settlement`` (migration 0008): a partial
index of the available accounts' lines by (account, id) that carries every column the statement
reads, so each payee's range is one index-only range scan, found by the account and bounded by
the range (a daily run reads a day of lines; a first run each payee's history once).
"""

from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from commissions.choices import AccountPurpose
from commissions.days import day_end
from commissions.models import LedgerAccount
from commissions.settlements.models import Settlement, SettlementRun, SettlementStatus
from livecommerce.ids import new_id

# Reading it:
# - acct: the currency's available accounts of active payees due in this run, not yet settled by
#   it, each with where its last settlement ended (after_line_id) and its minimum payout;
# - bounds: where this settlement ends: the last line up to the watermark created in the period,
#   and before the account's first line created after it (ids and stamps need not be in the
#   same order: a range never reaches past a line of a later day, which waits for its period;
#   the first later line is found through the index on ``created``, the few lines after the
#   period, hence no purpose condition there, which would send it through every line of the
#   account in ``ledger_line_settlement``);
# - covered: the lines in (after_line_id, to_line_id], the settlement entries' own debits aside,
#   read per account by its range;
# - per_account: the payee's own figures; brand_sales / brand_refunds: for a brand's net, the
#   order's merchandise and the other shares it was split into, so a brand's settlement shows its
#   gross sales and what was taken off them (see docs/settlements.md);
# - final: every payee with covered lines; it is settled when its balance is positive and at or
#   above its minimum payout; otherwise it rolls over to the next run.
# ``{schedules}`` is a list of placeholder names (never values): see ``_statement``.
FIGURES_SQL = """
WITH acct AS (
    SELECT a.id AS account_id,
           a.partner_id,
           COALESCE(CAST(p.minimum_payout ->> %(currency)s AS bigint), 0) AS minimum,
           COALESCE((SELECT max(s.to_line_id) FROM commissions_settlement s
                      WHERE s.account_id = a.id), 0) AS after_line_id
      FROM commissions_ledgeraccount a
      JOIN partners_partner p ON p.id = a.partner_id
     WHERE a.purpose = 'partner_available'
       AND a.currency = %(currency)s
       AND p.status = 'active'
       AND p.payout_schedule IN ({schedules})
       AND NOT EXISTS (SELECT 1 FROM commissions_settlement s
                        WHERE s.run_id = %(run_id)s AND s.partner_id = a.partner_id)
),
bounds AS MATERIALIZED (
    SELECT acct.*,
           (SELECT max(l.id) FROM commissions_ledgerline l
             WHERE l.account_id = acct.account_id
               AND l.purpose = 'partner_available'
               AND l.kind <> 'settlement'
               AND l.id > acct.after_line_id
               AND l.id <= %(watermark)s
               AND l.created < %(cutoff)s
               AND l.id < COALESCE(
                   (SELECT min(n.id) FROM commissions_ledgerline n
                     WHERE n.account_id = acct.account_id
                       AND n.kind <> 'settlement'
                       AND n.id > acct.after_line_id
                       AND n.id <= %(watermark)s
                       AND n.created >= %(cutoff)s),
                   %(watermark)s + 1)) AS to_line_id
      FROM acct
),
covered AS MATERIALIZED (
    SELECT b.account_id, l.id, l.entry_id, l.kind, l.share, l.order_id, l.order_line_id,
           l.debit, l.credit
      FROM bounds b
      JOIN commissions_ledgerline l
        ON l.account_id = b.account_id AND l.id > b.after_line_id AND l.id <= b.to_line_id
     WHERE l.purpose = 'partner_available' AND l.kind <> 'settlement'
),
per_account AS (
    SELECT account_id,
           count(*) AS line_count,
           CAST(sum(credit - debit) AS bigint) AS net,
           CAST(sum(CASE WHEN share <> 'brand_net' AND kind = 'release'
                         THEN credit - debit ELSE 0 END) AS bigint) AS own_gross,
           CAST(sum(CASE WHEN share <> 'brand_net' AND kind = 'refund'
                         THEN debit - credit ELSE 0 END) AS bigint) AS own_refunds,
           CAST(sum(CASE WHEN kind NOT IN ('release', 'refund')
                         THEN credit - debit ELSE 0 END) AS bigint) AS adjustments
      FROM covered
     GROUP BY account_id
),
brand_sales AS (
    SELECT c.account_id, o.share, sum(o.debit) AS debit, sum(o.credit) AS credit
      FROM covered c
      JOIN commissions_ledgerline o ON o.order_id = c.order_id AND o.id < c.id
     WHERE c.kind = 'release' AND c.share = 'brand_net'
       AND o.kind IN ('sale', 'refund')
       AND o.share IN ('merchandise', 'platform_commission', 'creator_commission',
                       'fulfillment_fee')
     GROUP BY c.account_id, o.share
),
brand_refunds AS (
    SELECT c.account_id, o.share, sum(o.debit) AS debit, sum(o.credit) AS credit
      FROM covered c
      JOIN commissions_ledgerline o
        ON o.entry_id = c.entry_id AND o.order_line_id = c.order_line_id
     WHERE c.kind = 'refund' AND c.share = 'brand_net'
       AND o.share IN ('merchandise', 'platform_commission', 'creator_commission',
                       'fulfillment_fee')
     GROUP BY c.account_id, o.share
),
grossed AS (
    SELECT account_id,
           CAST(sum(CASE WHEN share = 'merchandise' THEN debit ELSE 0 END) AS bigint) AS gross,
           CAST(sum(CASE WHEN share = 'merchandise' THEN credit ELSE 0 END) AS bigint)
               AS refunds,
           CAST(sum(CASE WHEN share = 'platform_commission'
                         THEN credit - debit ELSE 0 END) AS bigint) AS platform_commission,
           CAST(sum(CASE WHEN share = 'creator_commission'
                         THEN credit - debit ELSE 0 END) AS bigint) AS creator_commission,
           CAST(sum(CASE WHEN share = 'fulfillment_fee'
                         THEN credit - debit ELSE 0 END) AS bigint) AS fulfillment_fees
      FROM (SELECT * FROM brand_sales UNION ALL SELECT * FROM brand_refunds) shares
     GROUP BY account_id
),
final AS (
    SELECT b.account_id, b.partner_id, b.minimum, b.after_line_id, b.to_line_id,
           pa.line_count, pa.net, pa.adjustments,
           pa.own_gross + COALESCE(g.gross, 0) AS gross,
           pa.own_refunds + COALESCE(g.refunds, 0) AS refunds,
           COALESCE(g.platform_commission, 0) AS platform_commission,
           COALESCE(g.creator_commission, 0) AS creator_commission,
           COALESCE(g.fulfillment_fees, 0) AS fulfillment_fees
      FROM bounds b
      JOIN per_account pa ON pa.account_id = b.account_id
      LEFT JOIN grossed g ON g.account_id = b.account_id
)"""

# The ending that returns every payee's figures (SQLite's run, and ``payee_figures``).
SELECT_FIGURES = """
SELECT * FROM final ORDER BY account_id
"""

# PostgreSQL's ending: the settlement rows written by the same statement, and the counts.
WRITE_POSTGRESQL = """,
inserted AS (
    INSERT INTO commissions_settlement (
        id, run_id, partner_id, account_id, currency, period_end, after_line_id, to_line_id,
        gross, platform_commission, creator_commission, fulfillment_fees, refunds, adjustments,
        net_payout, line_count, status, payout_reference, failure_reason, created, updated
    )
    SELECT (%(ids)s::text[])[row_number() OVER (ORDER BY f.account_id)],
           %(run_id)s, f.partner_id, f.account_id, %(currency)s, %(period_end)s,
           f.after_line_id, f.to_line_id,
           f.gross, f.platform_commission, f.creator_commission, f.fulfillment_fees, f.refunds,
           f.adjustments, f.net, f.line_count, 'pending', '', '', %(now)s, %(now)s
      FROM final f
     WHERE f.net > 0 AND f.net >= f.minimum
    RETURNING id
)
SELECT (SELECT count(*) FROM inserted),
       (SELECT count(*) FROM final WHERE net > 0 AND net < minimum),
       (SELECT count(*) FROM final WHERE net <= 0)
"""

_AMOUNTS = (
    "line_count",
    "net",
    "adjustments",
    "gross",
    "refunds",
    "platform_commission",
    "creator_commission",
    "fulfillment_fees",
    "minimum",
)


@dataclass(frozen=True)
class PayeeFigures:
    """One payee's would-be settlement in a run: its range, figures and minimum (minor units)."""

    account_id: int
    partner_id: str
    after_line_id: int
    to_line_id: int
    line_count: int
    net: int
    adjustments: int
    gross: int
    refunds: int
    platform_commission: int
    creator_commission: int
    fulfillment_fees: int
    minimum: int

    @property
    def settles(self) -> bool:
        """Paid in this run: a positive balance at or above the minimum payout."""
        return self.net > 0 and self.net >= self.minimum


def _statement(run: SettlementRun, schedules: list[str], ending: str) -> tuple[str, dict]:
    """``FIGURES_SQL`` with ``ending``, and its parameters. ``run.watermark_line_id`` is fixed."""
    if run.watermark_line_id is None:
        raise ValueError("fix the run's watermark first")
    params: dict = {
        "run_id": run.pk,
        "currency": run.currency,
        "watermark": run.watermark_line_id,
        # As the ORM would pass it: SQLite compares the stored text, so the same text format.
        "cutoff": connection.ops.adapt_datetimefield_value(day_end(run.period_end)),
    }
    names = []
    for index, schedule in enumerate(schedules):
        params[f"schedule_{index}"] = schedule
        names.append(f"%(schedule_{index})s")
    # Only placeholder names and the constant endings go into the text; values are parameters.
    sql = FIGURES_SQL.format(schedules=", ".join(names) or "NULL") + ending
    return sql, params


def payee_figures(*, run: SettlementRun, schedules: list[str]) -> list[PayeeFigures]:
    """Every payee of the run with covered lines, and its figures, in account order.

    Read-only, so it runs on either database (a test runs it on PostgreSQL before the run
    writes its rows): the caller decides who is settled (``PayeeFigures.settles``).
    """
    sql, params = _statement(run, schedules, SELECT_FIGURES)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column[0] for column in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return [
        PayeeFigures(
            account_id=row["account_id"],
            partner_id=row["partner_id"],
            after_line_id=row["after_line_id"],
            to_line_id=row["to_line_id"],
            # Whole numbers on both databases (PostgreSQL's sums are cast back to bigint).
            **{name: int(row[name]) for name in _AMOUNTS},
        )
        for row in rows
    ]


def settlements_write(*, run: SettlementRun, schedules: list[str]) -> tuple[int, int, int]:
    """Write the run's settlement rows; how many were written, below the minimum, and zero or
    negative. Inside ``_prepare``'s transaction, which holds the run's row lock."""
    if connection.vendor == "postgresql":
        return _write_postgresql(run, schedules)
    payees = payee_figures(run=run, schedules=schedules)
    settled = [payee for payee in payees if payee.settles]
    Settlement.objects.bulk_create(
        [
            Settlement(
                id=new_id("stl"),
                run_id=run.pk,
                partner_id=payee.partner_id,
                account_id=payee.account_id,
                currency=run.currency,
                period_end=run.period_end,
                after_line_id=payee.after_line_id,
                to_line_id=payee.to_line_id,
                gross=payee.gross,
                platform_commission=payee.platform_commission,
                creator_commission=payee.creator_commission,
                fulfillment_fees=payee.fulfillment_fees,
                refunds=payee.refunds,
                adjustments=payee.adjustments,
                net_payout=payee.net,
                line_count=payee.line_count,
                status=SettlementStatus.PENDING,
            )
            for payee in settled
        ]
    )
    below_minimum = sum(1 for payee in payees if 0 < payee.net < payee.minimum)
    non_positive = sum(1 for payee in payees if payee.net <= 0)
    return len(settled), below_minimum, non_positive


def _write_postgresql(run: SettlementRun, schedules: list[str]) -> tuple[int, int, int]:
    with connection.cursor() as cursor:
        # Runs of one currency compute their ranges one at a time: each starts where the last
        # committed settlement of the account ended.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"settlement_ranges:{run.currency}"],
        )
        # A batch job's sorts and hashes over many lines: memory rather than temporary files;
        # no JIT compilation (it costs more than it saves here); and no merge join, which the
        # planner picks when it misjudges the CTEs' sizes and which sorts every line first.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
        accounts = LedgerAccount.objects.filter(
            purpose=AccountPurpose.PARTNER_AVAILABLE, currency=run.currency
        ).count()
        sql, params = _statement(run, schedules, WRITE_POSTGRESQL)
        params |= {
            "period_end": run.period_end,
            "ids": [new_id("stl") for _ in range(accounts)],
            "now": timezone.now(),
        }
        cursor.execute(sql, params)
        return cursor.fetchone()
