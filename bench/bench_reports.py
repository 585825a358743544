"""Benchmark: the commission report over 1,000,000 ledger lines on PostgreSQL.

    .venv/bin/python bench/bench_reports.py            # generate (if needed) and measure
    .venv/bin/python bench/bench_reports.py --fresh    # drop and regenerate the database first
    .venv/bin/python bench/bench_reports.py --write-docs  # also update docs/benchmarks.md

Uses its own database (``lc_bench_reports`` on 127.0.0.1:5432, created and migrated here), never
the development or test ones. The ledger is generated in SQL with ``generate_series``: orders
over the year 2025 in USD, EUR and JPY, each with its sale entry (merchandise, the four shares,
shipping, tax), then either its release (pending -> available) or, for one order in ten, a full
refund three days later; partners, live sessions, orders, accounts and entries are written too,
so every foreign key holds. About 62,000 orders give 1,000,000 lines.

For each ``group_by`` the report selector (``commissions.reports.commission.commission_report``,
what the API runs) is timed over N runs against the same report written by hand in SQL (the
baseline), for the whole year and for one month, in USD. ``EXPLAIN (ANALYZE, BUFFERS)`` of the
selector's query is printed for one grouping of each period. Not part of the test suite.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("BENCH_DB", "lc_bench_reports")
sys.path.insert(0, str(ROOT))
from bench import common, dataset  # noqa: E402
from bench.dataset import DB_HOST  # noqa: E402

os.environ["DATABASE_URL"] = f"{DB_HOST}/{DB_NAME}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livecommerce.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


TARGET_LINES = 1_000_000
ORDERS = 62_000  # ~16.1 lines per order on average (see the module docstring)
YEAR = (date(2025, 1, 1), date(2025, 12, 31))
MONTH = (date(2025, 6, 1), date(2025, 6, 30))
CURRENCY = "USD"


GENERATE_ORDERS = """
CREATE TEMP TABLE bench_orders AS
SELECT g AS n,
       'ord_bench' || lpad(g::text, 12, '0') AS id,
       CASE WHEN g % 20 < 16 THEN 'USD' WHEN g % 20 < 19 THEN 'EUR' ELSE 'JPY' END AS currency,
       'prt_bh' || lpad((g % 20)::text, 6, '0') AS host_app_id,
       'prt_bb' || lpad(((g * 7) % 200)::text, 6, '0') AS brand_id,
       'prt_bf' || lpad((((g * 7) % 200) % 20)::text, 6, '0') AS fulfillment_partner_id,
       CASE WHEN g % 3 = 0 THEN NULL
            ELSE 'prt_bc' || lpad(((g * 13) % 500)::text, 6, '0') END AS creator_id,
       CASE WHEN g % 3 = 0 THEN NULL
            ELSE 'lvs_bs' || lpad(((g * 13) % 500 * 4 + g % 4)::text, 6, '0') END
           AS live_session_id,
       timestamptz '2025-01-01 00:00:00+00'
           + (g - 1) * (interval '365 days' / %(orders)s) AS paid_at,
       1000 + (g * 7919) % 20000 AS paid,
       500 AS shipping,
       (1000 + (g * 7919) % 20000) / 10 AS tax,
       g % 10 = 0 AS refunded
  FROM generate_series(1, %(orders)s) AS g;
ALTER TABLE bench_orders ADD PRIMARY KEY (n);
"""

# One row per ledger line, in the order they would have been posted.
GENERATE_LINES = """
WITH o AS (
    SELECT b.*,
           b.paid * 8 / 100 AS platform,
           CASE WHEN b.creator_id IS NULL THEN 0 ELSE b.paid * 5 / 100 END AS creator,
           b.paid * 3 / 100 AS fulfillment
      FROM bench_orders b
), shares AS (
    SELECT o.*, o.paid - o.platform - o.creator - o.fulfillment AS brand FROM o
), sale(n, purpose, partner_id, share, debit, credit) AS (
    SELECT n, x.purpose, x.partner_id, x.share, x.debit, x.credit
      FROM shares CROSS JOIN LATERAL (VALUES
        ('buyer_funds_clearing', NULL, 'merchandise', paid, 0),
        ('platform_revenue', NULL, 'platform_commission', 0, platform),
        ('partner_pending', creator_id, 'creator_commission', 0, creator),
        ('partner_pending', fulfillment_partner_id, 'fulfillment_fee', 0, fulfillment),
        ('partner_pending', brand_id, 'brand_net', 0, brand),
        ('buyer_funds_clearing', NULL, 'shipping', shipping, 0),
        ('partner_pending', fulfillment_partner_id, 'shipping', 0, shipping),
        ('buyer_funds_clearing', NULL, 'tax', tax, 0),
        ('tax_payable', NULL, 'tax', 0, tax)
      ) AS x(purpose, partner_id, share, debit, credit)
), posted AS (
    -- the sale
    SELECT s.n, 'sale' AS kind, 'je_bs' || s.n AS entry_id, o.paid_at AS created,
           s.purpose, s.partner_id, s.share, s.debit, s.credit
      FROM sale s JOIN bench_orders o USING (n)
    UNION ALL
    -- one order in ten is refunded in full three days later: every line reversed
    SELECT s.n, 'refund', 'je_br' || s.n, o.paid_at + interval '3 days',
           s.purpose, s.partner_id, s.share, s.credit, s.debit
      FROM sale s JOIN bench_orders o USING (n)
     WHERE o.refunded
    UNION ALL
    -- the others are released when the return window closes, 14 days later
    SELECT s.n, 'release', 'je_bl' || s.n, o.paid_at + interval '14 days',
           x.purpose, s.partner_id, s.share, x.debit, x.credit
      FROM sale s JOIN bench_orders o USING (n)
      CROSS JOIN LATERAL (VALUES
        ('partner_pending', s.credit, 0), ('partner_available', 0, s.credit)
      ) AS x(purpose, debit, credit)
     WHERE NOT o.refunded AND s.purpose = 'partner_pending'
)
INSERT INTO commissions_ledgerline
    (entry_id, account_id, partner_id, purpose, currency, kind, created, debit, credit, share,
     order_id, order_line_id, host_app_id, brand_id, creator_id, fulfillment_partner_id,
     live_session_id)
SELECT p.entry_id,
       'acc_' || left(md5(p.purpose || coalesce(p.partner_id, '') || o.currency), 28),
       p.partner_id, p.purpose, o.currency, p.kind, p.created, p.debit, p.credit, p.share,
       o.id, NULL, o.host_app_id, o.brand_id, o.creator_id, o.fulfillment_partner_id,
       o.live_session_id
  FROM posted p JOIN bench_orders o USING (n)
 WHERE p.debit > 0 OR p.credit > 0
 ORDER BY p.created, p.entry_id;
"""


def generate() -> int:
    """Fill the bench database; returns the number of ledger lines."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        # Bulk load: no per-row triggers (the ledger's balance and append-only guards, foreign
        # key checks). Every row written here is balanced and every reference exists.
        cursor.execute("SET session_replication_role = replica")
        # No parameters: the SQL uses % (modulo), which a parameterised query would parse.
        cursor.execute(GENERATE_ORDERS.replace("%(orders)s", str(int(ORDERS))))
        dataset.insert_select(
            cursor,
            "partners_partner",
            """SELECT 'prt_bh' || lpad(g::text, 6, '0') AS id, 'host_app' AS kind,
                      'Host app ' || g AS name, 'open' AS brand_access,
                      NULL::varchar AS fulfillment_partner_id, 'active' AS status
                 FROM generate_series(0, 19) g
               UNION ALL SELECT 'prt_bf' || lpad(g::text, 6, '0'), 'fulfillment',
                      'Fulfiller ' || g, '', NULL, 'active' FROM generate_series(0, 19) g
               UNION ALL SELECT 'prt_bb' || lpad(g::text, 6, '0'), 'brand', 'Brand ' || g, '',
                      'prt_bf' || lpad((g % 20)::text, 6, '0'), 'active'
                 FROM generate_series(0, 199) g
               UNION ALL SELECT 'prt_bc' || lpad(g::text, 6, '0'), 'creator',
                      'Creator ' || g, '', NULL, 'active' FROM generate_series(0, 499) g""",
            ["id", "kind", "name", "brand_access", "fulfillment_partner_id", "status"],
        )
        dataset.insert_select(
            cursor,
            "orders_livesession",
            """SELECT 'lvs_bs' || lpad(g::text, 6, '0') AS id, 'Live show ' || g AS title,
                      'prt_bc' || lpad((g / 4)::text, 6, '0') AS creator_id,
                      'prt_bh' || lpad((g % 20)::text, 6, '0') AS producer_id,
                      'ended' AS status
                 FROM generate_series(0, 1999) g""",
            ["id", "title", "creator_id", "producer_id", "status"],
        )
        dataset.insert_select(
            cursor,
            "orders_order",
            """SELECT id, CASE WHEN refunded THEN 'refunded' ELSE 'completed' END AS status,
                      currency, host_app_id, brand_id, fulfillment_partner_id, creator_id,
                      live_session_id, paid AS subtotal, shipping AS shipping_amount,
                      tax AS tax_amount, paid + shipping + tax AS total,
                      CASE WHEN refunded THEN paid + shipping + tax ELSE 0 END
                          AS refunded_amount,
                      CASE WHEN refunded THEN shipping ELSE 0 END AS refunded_shipping_amount,
                      CASE WHEN refunded THEN tax ELSE 0 END AS refunded_tax_amount,
                      paid_at AS created, paid_at
                 FROM bench_orders""",
            [
                "id",
                "status",
                "currency",
                "host_app_id",
                "brand_id",
                "fulfillment_partner_id",
                "creator_id",
                "live_session_id",
                "subtotal",
                "shipping_amount",
                "tax_amount",
                "total",
                "refunded_amount",
                "refunded_shipping_amount",
                "refunded_tax_amount",
                "created",
                "paid_at",
            ],
        )
        cursor.execute(GENERATE_LINES)
        lines = dataset.accounts_and_entries_from_lines(cursor)
    dataset.vacuum(DB_NAME)
    print(f"generated {lines:,} ledger lines in {time.perf_counter() - started:.1f} s")
    return lines


# The same report, written by hand: one GROUP BY with conditional aggregation.
HAND_SQL = """
SELECT {group} AS grp,
       COUNT(DISTINCT order_id) FILTER (WHERE kind = 'sale'
                                          AND purpose = 'buyer_funds_clearing') AS orders,
       COALESCE(SUM(debit) FILTER (WHERE kind = 'sale' AND purpose = 'buyer_funds_clearing'
                                     AND share = 'merchandise'), 0) AS gmv,
       COALESCE(SUM(credit) FILTER (WHERE kind = 'refund' AND purpose = 'buyer_funds_clearing'
                                      AND share = 'merchandise'), 0) AS refunds,
       COALESCE(SUM(credit - debit) FILTER (WHERE share = 'platform_commission'
                                              AND purpose <> 'buyer_funds_clearing'), 0),
       COALESCE(SUM(credit - debit) FILTER (WHERE share = 'creator_commission'
                                              AND purpose <> 'buyer_funds_clearing'), 0),
       COALESCE(SUM(credit - debit) FILTER (WHERE share = 'fulfillment_fee'
                                              AND purpose <> 'buyer_funds_clearing'), 0),
       COALESCE(SUM(credit - debit) FILTER (WHERE share = 'brand_net'
                                              AND purpose <> 'buyer_funds_clearing'), 0)
  FROM commissions_ledgerline
 WHERE currency = %s AND created >= %s AND created < %s
   AND kind IN ('sale', 'refund')
   AND share IN ('merchandise', 'platform_commission', 'creator_commission',
                 'fulfillment_fee', 'brand_net')
 GROUP BY 1
"""
HAND_GROUPS = {
    "day": "date_trunc('day', created AT TIME ZONE 'UTC')",
    "month": "date_trunc('month', created AT TIME ZONE 'UTC')",
}


def _hand_sql(group_by: str) -> str:
    return HAND_SQL.format(group=HAND_GROUPS.get(group_by, f"{group_by}_id"))


def _time(function, runs: int) -> tuple[float, float]:
    function()  # warm the cache and the connection
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95_index = min(len(samples) - 1, max(0, round(0.95 * len(samples)) - 1))
    return statistics.median(samples), samples[p95_index]


def measure(runs: int) -> list[dict]:
    """Per period and grouping: the selector, its own SQL run bare, and the hand-written SQL."""
    from django.db import connection

    from commissions.days import period_bounds
    from commissions.reports.commission import GROUP_BY_CHOICES, commission_report, report_sql

    results = []
    for label, (date_from, date_to) in (("year", YEAR), ("month", MONTH)):
        start, end = period_bounds(date_from=date_from, date_to=date_to)
        for group_by in GROUP_BY_CHOICES:
            own_sql, own_params = report_sql(
                date_from=date_from, date_to=date_to, currency=CURRENCY, group_by=group_by
            )

            def selector(group_by=group_by, date_from=date_from, date_to=date_to):
                return commission_report(
                    date_from=date_from, date_to=date_to, currency=CURRENCY, group_by=group_by
                )

            def run_sql(sql, params):
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    return cursor.fetchall()

            def own(sql=own_sql, params=own_params):
                return run_sql(sql, params)

            def hand(group_by=group_by, start=start, end=end):
                return run_sql(_hand_sql(group_by), [CURRENCY, start, end])

            report = selector()
            hand_rows = hand()
            assert len(report.rows) == len(hand_rows), (group_by, len(report.rows), len(hand_rows))
            assert report.totals.gross_merchandise_value == sum(r[2] for r in hand_rows)
            assert report.totals.orders == sum(r[1] for r in hand_rows)
            p50, p95 = _time(selector, runs)
            own_p50, _ = _time(own, runs)
            hand_p50, hand_p95 = _time(hand, runs)
            results.append(
                {
                    "period": label,
                    "group_by": group_by,
                    "rows": len(report.rows),
                    "p50": p50,
                    "p95": p95,
                    "own_p50": own_p50,
                    "hand_p50": hand_p50,
                    "hand_p95": hand_p95,
                }
            )
            print(
                f"{label:5} {group_by:20} rows {len(report.rows):4}  selector p50 {p50:6.1f} "
                f"p95 {p95:6.1f} ms | its SQL p50 {own_p50:6.1f} | hand SQL p50 {hand_p50:6.1f} "
                f"p95 {hand_p95:6.1f} ms | selector/hand {p50 / hand_p50:4.2f}"
            )
    return results


def explain(group_by: str, period: tuple[date, date]) -> str:
    from django.db import connection

    from commissions.reports.commission import report_sql

    date_from, date_to = period
    sql, params = report_sql(
        date_from=date_from, date_to=date_to, currency=CURRENCY, group_by=group_by
    )
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def ledger_stats() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*), count(*) FILTER (WHERE currency = %s),
                      pg_size_pretty(pg_table_size('commissions_ledgerline')),
                      pg_size_pretty(pg_indexes_size('commissions_ledgerline'))
                 FROM commissions_ledgerline""",
            [CURRENCY],
        )
        lines, in_currency, table_size, index_size = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM orders_order")
        (orders,) = cursor.fetchone()
    return {
        "lines": lines,
        "in_currency": in_currency,
        "orders": orders,
        "table_size": table_size,
        "index_size": index_size,
    }


def write_docs(results: list[dict], stats: dict, plans: dict[str, str], runs: int) -> None:
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"`bench/bench_reports.py` on {date.today().isoformat()}: PostgreSQL 15 on 127.0.0.1, "
        f"{cpu} CPUs, default settings. {stats['lines']:,} ledger lines "
        f"({stats['in_currency']:,} in {CURRENCY}) for {stats['orders']:,} orders over 2025; "
        f"table {stats['table_size']}, its indexes {stats['index_size']}. Each figure is over "
        f"{runs} runs after one warm-up; the selector is "
        "`commissions.reports.commission.commission_report` (what `GET /reports/commissions` "
        "runs: its SQL plus turning rows into figures and one query for the groups' names); "
        "\"its SQL bare\" is the selector's statement run alone (the ORM's and Python's share "
        "is the difference); the baseline is the same report written by hand as one GROUP BY "
        "with conditional aggregation, COUNT(DISTINCT) included "
        "(`HAND_SQL` in the script). Machine load (1-minute load average) before and after: "
        f"{stats['load_before']} / {stats['load_after']}.",
        "",
        "| period | group_by | rows | selector p50 ms | selector p95 ms | its SQL bare p50 ms "
        "| hand SQL p50 ms | hand SQL p95 ms | selector / hand SQL (p50) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['period']} | {r['group_by']} | {r['rows']} | {r['p50']:.1f} | {r['p95']:.1f} "
            f"| {r['own_p50']:.1f} | {r['hand_p50']:.1f} | {r['hand_p95']:.1f} "
            f"| {r['p50'] / r['hand_p50']:.2f} |"
        )
    ratios = [r["p50"] / r["hand_p50"] for r in results]
    slow = [f"{r['period']} by {r['group_by']}" for r in results if r["p95"] >= 300]
    lines += [
        "",
        f"Targets: each at most 1.5x the hand SQL: {min(ratios):.2f}x to {max(ratios):.2f}x (the "
        "selector counts orders apart, so the money figures hash-aggregate in parallel instead "
        "of sorting every line; see docs/reports.md). p95 under 300 ms: "
        + (
            "met by every report."
            if not slow
            else f"met by all but {', '.join(slow)}, on this shared machine under the load above."
        )
        + " A year in one currency is about a quarter of the ledger's lines, read by two "
        "index-only scans of the partial covering indexes (`ledger_line_report`, "
        "`ledger_line_report_sales`, `Heap Fetches: 0` in the plans below); a month report "
        "reads a twelfth of that. Past a few million lines per period, see the rollup proposed "
        "in docs/reports.md.",
    ]
    lines += ["", "Query plans (`EXPLAIN (ANALYZE, BUFFERS)` of the selector's query):", ""]
    for label, plan in plans.items():
        lines += [f"{label}:", "", "```", plan, "```", ""]
    common.write_section("Reports", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="drop and regenerate the database")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    dataset.prepare(DB_NAME, fresh=args.fresh, target_lines=TARGET_LINES, generate=generate)
    stats = ledger_stats()
    print(f"{stats}")
    plans = {
        "year, group_by=brand": explain("brand", YEAR),
        "month, group_by=day": explain("day", MONTH),
    }
    for label, plan in plans.items():
        print(f"\n{label}\n{plan}\n")
    stats["load_before"] = f"{os.getloadavg()[0]:.1f}"
    results = measure(args.runs)
    stats["load_after"] = f"{os.getloadavg()[0]:.1f}"
    if args.write_docs:
        write_docs(results, stats, plans, args.runs)


if __name__ == "__main__":
    main()
