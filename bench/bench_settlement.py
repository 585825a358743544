"""Benchmark: one settlement run over 1,000,000 ledger lines and 1,000 payees, on PostgreSQL.

    .venv/bin/python bench/bench_settlement.py                # generate (if needed) and measure
    .venv/bin/python bench/bench_settlement.py --fresh        # drop and regenerate first
    .venv/bin/python bench/bench_settlement.py --write-docs   # also update docs/benchmarks.md

Uses its own database (``lc_bench`` on 127.0.0.1:5432, created and migrated here), never the
development or test ones. The ledger is generated in SQL with ``generate_series``, in the shapes
``commissions.ledger`` posts: per order one sale entry (merchandise, platform commission,
creator commission when a creator sold it, fulfillment fee, brand net, shipping, tax), then the
release when its return window closed (pending -> available, per partner and share), and for one
order in twenty a refund of half its merchandise after the release (reversing each share from
available). 600 brands, 50 fulfillment partners and 350 creators are the 1,000 payees; every
foreign key holds. About 61,700 orders in USD over 2025 give 1,000,000 lines.

Measured, each ``--runs`` times on the same ledger (the run's own rows are removed in between):
- the service: a settlement run for USD up to 2025-12-31 executed by
  ``commissions.settlements.runs.settlement_run_execute`` (what the Celery task runs: the watermark,
  the one ``INSERT ... SELECT`` of the settlements, then per payee its ledger entry through
  ``ledger_post`` and its ``settlement.created`` event), in a child process whose peak RSS is
  read with ``resource.getrusage(RUSAGE_CHILDREN)``;
- the baseline: the same work written by hand in SQL, set-based from end to end (the same
  figures into the settlements table, then every entry, its two lines and its event with one
  statement each), in one transaction.
Both produce the same settlements (checked). Not part of the test suite.
"""

import argparse
import logging
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("BENCH_DB", "lc_bench")
sys.path.insert(0, str(ROOT))
from bench import common, dataset  # noqa: E402
from bench.dataset import DB_HOST  # noqa: E402

os.environ["DATABASE_URL"] = f"{DB_HOST}/{DB_NAME}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livecommerce.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("CELERY_BROKER_URL", None)  # nothing is queued: the run is executed here

import django  # noqa: E402
import psycopg  # noqa: E402

TARGET_LINES = 1_000_000
ORDERS = 61_700
BRANDS, FULFILLERS, CREATORS = 600, 50, 350
PERIOD_END = date(2025, 12, 31)
CURRENCY = "USD"


GENERATE_ORDERS = f"""
CREATE TEMP TABLE bench_orders AS
SELECT g AS n,
       'ord_bench' || lpad(g::text, 12, '0') AS id,
       'oln_bench' || lpad(g::text, 12, '0') AS line_id,
       'prt_bh' || lpad((g % 20)::text, 6, '0') AS host_app_id,
       'prt_bb' || lpad((g % {BRANDS})::text, 6, '0') AS brand_id,
       'prd_bench' || lpad((g % {BRANDS})::text, 6, '0') AS product_id,
       'prt_bf' || lpad((g % {BRANDS} % {FULFILLERS})::text, 6, '0') AS fulfillment_partner_id,
       CASE WHEN g % 3 = 0 THEN NULL
            ELSE 'prt_bc' || lpad(((g * 13) % {CREATORS})::text, 6, '0') END AS creator_id,
       timestamptz '2025-01-01 00:00:00+00'
           + (g - 1) * (interval '330 days' / {ORDERS}) AS paid_at,
       1000 + (g * 7919) % 20000 AS paid,
       500 AS shipping,
       (1000 + (g * 7919) % 20000) / 10 AS tax,
       g % 20 = 0 AS refunded
  FROM generate_series(1, {ORDERS}) AS g;
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
), sale(n, purpose, partner_id, share, on_line, debit, credit) AS (
    SELECT n, x.purpose, x.partner_id, x.share, x.on_line, x.debit, x.credit
      FROM shares CROSS JOIN LATERAL (VALUES
        ('buyer_funds_clearing', NULL, 'merchandise', true, paid, 0),
        ('platform_revenue', NULL, 'platform_commission', true, 0, platform),
        ('partner_pending', creator_id, 'creator_commission', true, 0, creator),
        ('partner_pending', fulfillment_partner_id, 'fulfillment_fee', true, 0, fulfillment),
        ('partner_pending', brand_id, 'brand_net', true, 0, brand),
        ('buyer_funds_clearing', NULL, 'shipping', false, shipping, 0),
        ('partner_pending', fulfillment_partner_id, 'shipping', false, 0, shipping),
        ('buyer_funds_clearing', NULL, 'tax', false, tax, 0),
        ('tax_payable', NULL, 'tax', false, 0, tax)
      ) AS x(purpose, partner_id, share, on_line, debit, credit)
), posted AS (
    -- the sale
    SELECT s.n, 'sale' AS kind, 'je_bs' || s.n AS entry_id, o.paid_at AS created,
           s.purpose, s.partner_id, s.share, s.on_line, s.debit, s.credit
      FROM sale s JOIN bench_orders o USING (n)
    UNION ALL
    -- the release when the return window closes, 14 days later: per partner and share
    SELECT s.n, 'release', 'je_bl' || s.n, o.paid_at + interval '14 days',
           x.purpose, s.partner_id, s.share, false, x.debit, x.credit
      FROM sale s JOIN bench_orders o USING (n)
      CROSS JOIN LATERAL (VALUES
        ('partner_pending', s.credit, 0), ('partner_available', 0, s.credit)
      ) AS x(purpose, debit, credit)
     WHERE s.purpose = 'partner_pending'
    UNION ALL
    -- one order in twenty: half its merchandise refunded after the release, every share
    -- reversed in proportion from the party that got it (the brand takes the remainder)
    SELECT sh.n, 'refund', 'je_br' || sh.n, sh.paid_at + interval '20 days',
           x.purpose, x.partner_id, x.share, true, x.debit, x.credit
      FROM shares sh
      CROSS JOIN LATERAL (VALUES
        ('buyer_funds_clearing', NULL, 'merchandise', 0, sh.paid / 2),
        ('platform_revenue', NULL, 'platform_commission', sh.platform / 2, 0),
        ('partner_available', sh.creator_id, 'creator_commission', sh.creator / 2, 0),
        ('partner_available', sh.fulfillment_partner_id, 'fulfillment_fee',
            sh.fulfillment / 2, 0),
        ('partner_available', sh.brand_id, 'brand_net',
            sh.paid / 2 - sh.platform / 2 - sh.creator / 2 - sh.fulfillment / 2, 0)
      ) AS x(purpose, partner_id, share, debit, credit)
     WHERE sh.refunded
)
INSERT INTO commissions_ledgerline
    (entry_id, account_id, partner_id, purpose, currency, kind, created, debit, credit, share,
     order_id, order_line_id, host_app_id, brand_id, creator_id, fulfillment_partner_id,
     live_session_id)
SELECT p.entry_id,
       'acc_' || left(md5(p.purpose || coalesce(p.partner_id, '')), 28),
       p.partner_id, p.purpose, 'USD', p.kind, p.created, p.debit, p.credit, p.share,
       o.id, CASE WHEN p.on_line THEN o.line_id END, o.host_app_id, o.brand_id, o.creator_id,
       o.fulfillment_partner_id, NULL
  FROM posted p JOIN bench_orders o USING (n)
 WHERE p.debit > 0 OR p.credit > 0
 ORDER BY p.created, p.entry_id, p.purpose;
"""


def generate() -> int:
    """Fill the bench database; returns the number of ledger lines."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        # Bulk load: no per-row triggers (the ledger's balance and append-only guards, foreign
        # key checks). Every row written here is balanced and every reference exists.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(GENERATE_ORDERS)
        dataset.insert_select(
            cursor,
            "partners_partner",
            f"""SELECT 'prt_bh' || lpad(g::text, 6, '0') AS id, 'host_app' AS kind,
                      'Host app ' || g AS name, 'open' AS brand_access,
                      NULL::varchar AS fulfillment_partner_id, 'active' AS status,
                      'daily' AS payout_schedule
                 FROM generate_series(0, 19) g
               UNION ALL SELECT 'prt_bf' || lpad(g::text, 6, '0'), 'fulfillment',
                      'Fulfiller ' || g, '', NULL, 'active', 'daily'
                 FROM generate_series(0, {FULFILLERS - 1}) g
               UNION ALL SELECT 'prt_bb' || lpad(g::text, 6, '0'), 'brand', 'Brand ' || g, '',
                      'prt_bf' || lpad((g % {FULFILLERS})::text, 6, '0'), 'active', 'daily'
                 FROM generate_series(0, {BRANDS - 1}) g
               UNION ALL SELECT 'prt_bc' || lpad(g::text, 6, '0'), 'creator',
                      'Creator ' || g, '', NULL, 'active', 'daily'
                 FROM generate_series(0, {CREATORS - 1}) g""",
            [
                "id",
                "kind",
                "name",
                "brand_access",
                "fulfillment_partner_id",
                "status",
                "payout_schedule",
            ],
        )
        dataset.insert_select(
            cursor,
            "orders_product",
            f"""SELECT 'prd_bench' || lpad(g::text, 6, '0') AS id,
                      'prt_bb' || lpad(g::text, 6, '0') AS brand_id, 'SKU-' || g AS sku,
                      'Product ' || g AS title, 1000 AS price, 'USD' AS currency
                 FROM generate_series(0, {BRANDS - 1}) g""",
            ["id", "brand_id", "sku", "title", "price", "currency"],
        )
        dataset.insert_select(
            cursor,
            "orders_order",
            """SELECT id, 'completed' AS status, 'USD' AS currency, host_app_id, brand_id,
                      fulfillment_partner_id, creator_id, paid AS subtotal,
                      shipping AS shipping_amount, tax AS tax_amount,
                      paid + shipping + tax AS total,
                      CASE WHEN refunded THEN paid / 2 ELSE 0 END AS refunded_amount,
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
                "subtotal",
                "shipping_amount",
                "tax_amount",
                "total",
                "refunded_amount",
                "created",
                "paid_at",
            ],
        )
        dataset.insert_select(
            cursor,
            "orders_orderline",
            """SELECT line_id AS id, id AS order_id, product_id, 'SKU' AS sku,
                      'Product' AS title, 1 AS quantity, paid AS unit_price, paid AS subtotal,
                      CASE WHEN refunded THEN paid / 2 ELSE 0 END AS refunded_amount,
                      800 AS platform_rate_bps,
                      CASE WHEN creator_id IS NULL THEN 0 ELSE 500 END AS creator_rate_bps,
                      300 AS fulfillment_rate_bps
                 FROM bench_orders""",
            [
                "id",
                "order_id",
                "product_id",
                "sku",
                "title",
                "quantity",
                "unit_price",
                "subtotal",
                "refunded_amount",
                "platform_rate_bps",
                "creator_rate_bps",
                "fulfillment_rate_bps",
            ],
        )
        cursor.execute(GENERATE_LINES)
        lines = dataset.accounts_and_entries_from_lines(cursor)
    dataset.vacuum(DB_NAME)
    print(f"generated {lines:,} ledger lines in {time.perf_counter() - started:.1f} s")
    return lines


def reset() -> None:
    """Remove every settlement run and what it wrote (bench only: the ledger is append-only,
    so its guards are switched off for this session)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            """DELETE FROM partners_eventrecipient WHERE event_id IN
                   (SELECT id FROM partners_event WHERE type LIKE 'settlement.%%')"""
        )
        cursor.execute("DELETE FROM partners_event WHERE type LIKE 'settlement.%%'")
        cursor.execute("DELETE FROM commissions_settlement")
        cursor.execute("DELETE FROM commissions_settlementrun")
        cursor.execute("DELETE FROM commissions_ledgerline WHERE kind = 'settlement'")
        cursor.execute("DELETE FROM commissions_ledgerentry WHERE kind = 'settlement'")
        cursor.execute("DELETE FROM commissions_ledgeraccount WHERE purpose = 'partner_in_payout'")
    with psycopg.connect(f"{DB_HOST}/{DB_NAME}", autocommit=True) as conn:
        conn.execute(
            "VACUUM (ANALYZE) commissions_ledgerline, commissions_settlement,"
            " commissions_ledgeraccount, commissions_ledgerentry, partners_event"
        )


def child_run() -> None:
    """In a child process: start the run and execute it as the Celery task does."""
    from commissions.settlements.models import SettlementRun
    from commissions.settlements.runs import settlement_run_execute

    class Phases(logging.Handler):
        """Prints the run's own account of its two phases for the parent to read."""

        def emit(self, record: logging.LogRecord) -> None:
            if " completed: " in record.getMessage():
                print(f"PHASES {record.getMessage()}")

    service_logger = logging.getLogger("commissions.settlements")
    service_logger.setLevel(logging.INFO)
    service_logger.addHandler(Phases())
    run = SettlementRun.objects.create(period_end=PERIOD_END, currency=CURRENCY)
    started = time.perf_counter()
    run = settlement_run_execute(run_id=run.pk)
    elapsed = time.perf_counter() - started
    assert run.status == "completed", run.error
    print(f"RESULT {elapsed:.4f} {run.settlement_count} {run.line_count} {run.net_payout}")


def service_run() -> dict:
    """One run in a child process: its time and the child's peak RSS."""
    output = subprocess.run(
        [sys.executable, __file__, "--child-run"], capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in output.splitlines() if x.startswith("RESULT "))
    phases = next((x[7:] for x in output.splitlines() if x.startswith("PHASES ")), "")
    _, seconds, settlements, lines, net = line.split()
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": float(seconds),
        "settlements": int(settlements),
        "lines": int(lines),
        "net": int(net),
        "peak_rss_mb": peak_kb / 1024,
        "phases": re.sub(r"^settlement run \S+ completed: ", "", phases),
        "prepare_s": float(re.search(r"written in ([0-9.]+) s", phases).group(1)),
        "post_s": float(re.search(r"posted in ([0-9.]+) s", phases).group(1)),
    }


# The same work by hand: every figure of every settlement, the settlement rows, the entries,
# their lines and their events, each with one set-based statement (no previous settlements:
# each range starts at the account's first line).
HAND_SQL = [
    """
    CREATE TEMP TABLE hand_settlements ON COMMIT DROP AS
    WITH covered AS MATERIALIZED (
        SELECT l.account_id, l.partner_id, l.id, l.entry_id, l.kind, l.share, l.order_id,
               l.order_line_id, l.debit, l.credit
          FROM commissions_ledgerline l
         WHERE l.purpose = 'partner_available' AND l.currency = %(currency)s::text
           AND l.created < %(cutoff)s::timestamptz AND l.kind <> 'settlement'
    ), per_account AS (
        SELECT account_id, partner_id, max(id) AS to_line_id, count(*) AS line_count,
               sum(credit - debit) AS net,
               sum(credit - debit) FILTER (WHERE share <> 'brand_net' AND kind = 'release')
                   AS own_gross,
               sum(debit - credit) FILTER (WHERE share <> 'brand_net' AND kind = 'refund')
                   AS own_refunds,
               sum(credit - debit) FILTER (WHERE kind NOT IN ('release', 'refund'))
                   AS adjustments
          FROM covered GROUP BY account_id, partner_id
    ), shares AS (
        SELECT c.account_id, o.share, o.debit, o.credit
          FROM covered c JOIN commissions_ledgerline o
            ON o.order_id = c.order_id AND o.id < c.id
         WHERE c.kind = 'release' AND c.share = 'brand_net' AND o.kind IN ('sale', 'refund')
           AND o.share IN ('merchandise', 'platform_commission', 'creator_commission',
                           'fulfillment_fee')
        UNION ALL
        SELECT c.account_id, o.share, o.debit, o.credit
          FROM covered c JOIN commissions_ledgerline o
            ON o.entry_id = c.entry_id AND o.order_line_id = c.order_line_id
         WHERE c.kind = 'refund' AND c.share = 'brand_net'
           AND o.share IN ('merchandise', 'platform_commission', 'creator_commission',
                           'fulfillment_fee')
    ), grossed AS (
        SELECT account_id,
               sum(debit) FILTER (WHERE share = 'merchandise') AS gross,
               sum(credit) FILTER (WHERE share = 'merchandise') AS refunds,
               sum(credit - debit) FILTER (WHERE share = 'platform_commission') AS platform,
               sum(credit - debit) FILTER (WHERE share = 'creator_commission') AS creator,
               sum(credit - debit) FILTER (WHERE share = 'fulfillment_fee') AS fulfillment
          FROM shares GROUP BY account_id
    )
    SELECT 'stl_hand' || row_number() OVER (ORDER BY pa.account_id) AS id, pa.*,
           coalesce(pa.own_gross, 0) + coalesce(g.gross, 0) AS gross,
           coalesce(pa.own_refunds, 0) + coalesce(g.refunds, 0) AS refunds,
           coalesce(g.platform, 0) AS platform, coalesce(g.creator, 0) AS creator,
           coalesce(g.fulfillment, 0) AS fulfillment
      FROM per_account pa LEFT JOIN grossed g USING (account_id)
     WHERE pa.net > 0
    """,
    """
    INSERT INTO commissions_settlementrun
        (id, period_end, currency, trigger, status, watermark_line_id, prepared,
         settlement_count, line_count, net_payout, below_minimum_count, non_positive_count,
         attempts, error, created)
    VALUES ('run_hand', %(period_end)s::date, %(currency)s::text, 'request', 'completed', 0, true,
            0, 0, 0, 0, 0, 1, '', now())
    """,
    """
    INSERT INTO commissions_settlement
        (id, run_id, partner_id, account_id, currency, period_end, after_line_id, to_line_id,
         gross, platform_commission, creator_commission, fulfillment_fees, refunds,
         adjustments, net_payout, line_count, status, payout_reference, failure_reason,
         created, updated)
    SELECT id, 'run_hand', partner_id, account_id, %(currency)s::text, %(period_end)s::date, 0,
           to_line_id,
           gross, platform, creator, fulfillment, refunds, coalesce(adjustments, 0), net,
           line_count, 'pending', '', '', now(), now()
      FROM hand_settlements
    """,
    """
    INSERT INTO commissions_ledgeraccount (id, purpose, partner_id, currency, created)
    SELECT 'acc_hand' || id, 'partner_in_payout', partner_id, %(currency)s::text, now()
      FROM hand_settlements
        ON CONFLICT DO NOTHING
    """,
    """
    INSERT INTO commissions_ledgerentry
        (id, kind, reference, currency, idempotency_key, memo, created)
    SELECT 'je_' || id, 'settlement', id, %(currency)s::text, 'settlement:' || id, '', now()
      FROM hand_settlements
    """,
    """
    INSERT INTO commissions_ledgerline
        (entry_id, account_id, partner_id, purpose, currency, kind, created, debit, credit,
         share)
    SELECT 'je_' || s.id, a.id, s.partner_id, a.purpose, %(currency)s::text, 'settlement', now(),
           CASE WHEN a.purpose = 'partner_available' THEN s.net ELSE 0 END,
           CASE WHEN a.purpose = 'partner_in_payout' THEN s.net ELSE 0 END, ''
      FROM hand_settlements s
      JOIN commissions_ledgeraccount a
        ON a.partner_id = s.partner_id AND a.currency = %(currency)s::text
       AND a.purpose IN ('partner_available', 'partner_in_payout')
    """,
    """
    UPDATE commissions_settlement s SET entry_id = 'je_' || s.id
      FROM hand_settlements h WHERE h.id = s.id
    """,
    """
    WITH data AS (
        SELECT h.id, h.partner_id, jsonb_build_object(
                   'id', h.id, 'run', 'run_hand', 'partner', h.partner_id,
                   'currency', %(currency)s::text, 'period_end', %(period_end)s::date,
                   'status', 'pending',
                   'gross', (h.gross / 100.0)::text,
                   'platform_commission', (h.platform / 100.0)::text,
                   'creator_commission', (h.creator / 100.0)::text,
                   'fulfillment_fees', (h.fulfillment / 100.0)::text,
                   'refunds', (h.refunds / 100.0)::text,
                   'adjustments', (coalesce(h.adjustments, 0) / 100.0)::text,
                   'net_payout', (h.net / 100.0)::text, 'line_count', h.line_count,
                   'ledger_entry', 'je_' || h.id, 'payout_entry', NULL,
                   'payout_reference', NULL, 'failure_reason', NULL, 'created', now(),
                   'paid_at', NULL, 'failed_at', NULL) AS data
          FROM hand_settlements h
    ), events AS (
        INSERT INTO partners_event (id, type, object_id, sequence, data, body, created)
        SELECT 'evt_' || id, 'settlement.created', id, 1, data,
               jsonb_build_object('id', 'evt_' || id, 'type', 'settlement.created',
                                  'created', now(), 'sequence', 1, 'data', data)::text,
               now()
          FROM data
        RETURNING id, object_id
    )
    INSERT INTO partners_eventrecipient (event_id, partner_id)
    SELECT e.id, h.partner_id FROM events e JOIN hand_settlements h ON h.id = e.object_id
    """,
]


def hand_run() -> dict:
    """The baseline, timed; then rolled back, so the service runs on the same ledger."""
    from django.db import connection, transaction

    from commissions.days import day_end

    params = {"currency": CURRENCY, "cutoff": day_end(PERIOD_END), "period_end": PERIOD_END}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            # the session settings the service's run uses for its big statement
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL enable_mergejoin = off")
            for statement in HAND_SQL:
                cursor.execute(statement, params)
            cursor.execute(
                "SELECT count(*), sum(line_count), sum(net_payout) FROM commissions_settlement"
                " WHERE run_id = 'run_hand'"
            )
            settlements, lines, net = cursor.fetchone()
            cursor.execute("SELECT partner_id, net_payout FROM commissions_settlement")
            nets = dict(cursor.fetchall())
            elapsed = time.perf_counter() - started
        finally:
            cursor.execute("ROLLBACK")
    assert not transaction.get_connection().in_atomic_block
    return {
        "seconds": elapsed,
        "settlements": settlements,
        "lines": int(lines),
        "net": int(net),
        "nets": nets,
    }


def ledger_stats() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*), count(*) FILTER (WHERE purpose = 'partner_available'),
                      pg_size_pretty(pg_table_size('commissions_ledgerline')),
                      pg_size_pretty(pg_indexes_size('commissions_ledgerline'))
                 FROM commissions_ledgerline"""
        )
        lines, available, table_size, index_size = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM orders_order")
        (orders,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(DISTINCT partner_id) FROM commissions_ledgerline"
            " WHERE purpose = 'partner_available'"
        )
        (payees,) = cursor.fetchone()
    return {
        "lines": lines,
        "available": available,
        "orders": orders,
        "payees": payees,
        "table_size": table_size,
        "index_size": index_size,
    }


def measure(runs: int) -> dict:
    from django.db import connection

    from commissions.models import Settlement

    hand, service = [], []
    for attempt in range(runs):
        reset()
        hand.append(hand_run())
        connection.close()
        service.append(service_run())
        nets = dict(Settlement.objects.values_list("partner_id", "net_payout"))
        assert nets == hand[-1]["nets"], "the service and the hand SQL settled differently"
        assert service[-1]["lines"] == hand[-1]["lines"]
        print(
            f"run {attempt + 1}: service {service[-1]['seconds']:.2f} s, hand SQL "
            f"{hand[-1]['seconds']:.2f} s, {service[-1]['settlements']} settlements over "
            f"{service[-1]['lines']:,} lines, child peak RSS {service[-1]['peak_rss_mb']:.0f} MB"
            f"; service phases: {service[-1]['phases']}"
        )
    return {
        "service_s": statistics.median(r["seconds"] for r in service),
        "hand_s": statistics.median(r["seconds"] for r in hand),
        "settlements": service[-1]["settlements"],
        "covered_lines": service[-1]["lines"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in service),
        "prepare_s": statistics.median(r["prepare_s"] for r in service),
        "post_s": statistics.median(r["post_s"] for r in service),
        "service_all": [r["seconds"] for r in service],
        "hand_all": [r["seconds"] for r in hand],
    }


def write_docs(result: dict, stats: dict, runs: int) -> None:
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    ratio = result["service_s"] / result["hand_s"]
    ratios = sorted(s / h for s, h in zip(result["service_all"], result["hand_all"], strict=True))
    lines = [
        f"`bench/bench_settlement.py` on {date.today().isoformat()}: PostgreSQL 15 on "
        f"127.0.0.1 (default settings: 128 MB shared buffers), {cpu} CPUs shared with other "
        f"work (load average {load:.1f} at the end). {stats['lines']:,} ledger lines for "
        f"{stats['orders']:,} orders in USD over 2025 (sales, releases, refunds after release, "
        f"in the shapes `commissions.ledger` posts), {stats['available']:,} of them on the "
        f"available accounts of {stats['payees']:,} payees; table {stats['table_size']}, its "
        f"indexes {stats['index_size']}. One settlement run for USD up to "
        f"{PERIOD_END.isoformat()} settling every payee's whole history; median of {runs} runs, "
        "service and baseline alternating on the same ledger.",
        "",
        "| | time (median) | peak RSS |",
        "| --- | ---: | ---: |",
        f"| service: `settlement_run_execute` (what the Celery task runs) | "
        f"{result['service_s']:.2f} s | {result['peak_rss_mb']:.0f} MB (the whole process) |",
        f"| - of which the settlements' `INSERT ... SELECT ... GROUP BY` | "
        f"{result['prepare_s']:.2f} s | |",
        f"| - of which the entries and events, {result['settlements']:,} payees | "
        f"{result['post_s']:.2f} s | |",
        f"| baseline: the same work by hand in SQL, set-based | {result['hand_s']:.2f} s | |",
        f"| ratio of the medians | {ratio:.2f}x | |",
        "",
        f"The run wrote {result['settlements']:,} settlements covering "
        f"{result['covered_lines']:,} ledger lines, their {result['settlements']:,} ledger "
        "entries through `ledger_post_many` (the batch form of the ledger's posting function) "
        "with their `settlement.created` events, in one transaction per batch of 1,000 payees, "
        "and the same figures as the baseline (checked). The baseline writes the same rows "
        "(settlements, entries, lines, events with the same data) with one statement each; both "
        "run with the session settings the service uses for its big statement (`work_mem` "
        "64 MB, no JIT, no merge joins). "
        f"All runs, service: {', '.join(f'{s:.2f}' for s in result['service_all'])} s; "
        f"hand SQL: {', '.join(f'{s:.2f}' for s in result['hand_all'])} s; per-run ratios from "
        f"{ratios[0]:.2f} to {ratios[-1]:.2f}: on this shared machine single runs vary by 2x, "
        "so only medians over several runs mean anything. Targets: at most 1.5x the hand SQL, "
        "peak RSS under 300 MB. What is left between the two is the ORM's cost of building "
        "and sending a few thousand rows (entries, lines, events) from Python, and the "
        "per-account ranges the service keeps (a first run like this one covers each "
        "payee's whole history; a daily run reads about a day of lines).",
    ]
    common.write_section("Settlement", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="drop and regenerate the database")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--child-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child_run:
        django.setup()
        child_run()
        return
    dataset.prepare(DB_NAME, fresh=args.fresh, target_lines=TARGET_LINES, generate=generate)
    reset()
    stats = ledger_stats()
    print(stats)
    result = measure(args.runs)
    print(
        f"service {result['service_s']:.2f} s, hand SQL {result['hand_s']:.2f} s, ratio "
        f"{result['service_s'] / result['hand_s']:.2f}, peak RSS {result['peak_rss_mb']:.0f} MB"
    )
    if args.write_docs:
        write_docs(result, stats, args.runs)


if __name__ == "__main__":
    main()
