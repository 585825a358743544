"""Covering partial indexes for the commission reports (PostgreSQL only; SQLite does nothing).

- ``ledger_line_report``: the sale and refund lines carrying merchandise or a party's share,
  by (currency, created), with every column the report aggregates or groups by included, so a
  report over a period is an index-only range scan of just the lines it reads (about a quarter
  of the ledger: releases, settlements, shipping and tax lines are not in it).
- ``ledger_line_report_sales``: the sales' merchandise lines only, for the orders count
  (distinct orders per group), which is computed apart so the money figures hash-aggregate.
- Statistics on the UTC day and month of ``created`` (the day and month groupings): without
  them PostgreSQL guesses a group per few rows and gives up on parallel hash aggregation.

Written in SQL so that the ledger's model state stays the ledger's (``makemigrations`` sees no
change); created CONCURRENTLY so that building them on a live ledger does not block postings.
The predicates match ``commissions.reports.REPORTED_KINDS`` / ``REPORTED_SHARES`` exactly, which
is what lets the planner use them.
"""

from django.db import migrations

REPORTED = (
    "kind IN ('sale', 'refund') AND share IN "
    "('merchandise', 'platform_commission', 'creator_commission', 'fulfillment_fee', 'brand_net')"
)
DIMENSIONS = "host_app_id, brand_id, creator_id, fulfillment_partner_id, live_session_id"

FORWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ledger_line_report ON commissions_ledgerline "
    f"(currency, created) INCLUDE (kind, share, debit, credit, {DIMENSIONS}) WHERE {REPORTED}",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ledger_line_report_sales ON commissions_ledgerline "
    f"(currency, created) INCLUDE (order_id, {DIMENSIONS}) "
    "WHERE kind = 'sale' AND share = 'merchandise'",
    "CREATE STATISTICS IF NOT EXISTS ledger_line_report_day "
    "ON ((created AT TIME ZONE 'UTC')::date) FROM commissions_ledgerline",
    "CREATE STATISTICS IF NOT EXISTS ledger_line_report_month "
    "ON (date_trunc('month', created AT TIME ZONE 'UTC')) FROM commissions_ledgerline",
    "ANALYZE commissions_ledgerline",
]
BACKWARD = [
    "DROP STATISTICS IF EXISTS ledger_line_report_month",
    "DROP STATISTICS IF EXISTS ledger_line_report_day",
    "DROP INDEX CONCURRENTLY IF EXISTS ledger_line_report_sales",
    "DROP INDEX CONCURRENTLY IF EXISTS ledger_line_report",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    return run


class Migration(migrations.Migration):
    # CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("commissions", "0004_settlements")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False)]
