"""A covering partial index for settlement runs (PostgreSQL only; SQLite does nothing).

``ledger_line_settlement``: the available accounts' lines other than the settlement entries'
own debits, by (account, id), carrying every column ``commissions.settlement_sql`` reads of
them. A run reads each payee's range ``(after_line_id, to_line_id]`` as one index-only range
scan found by the account (no heap access, no hash join of the lines to their accounts), and
finds where a range ends the same way. The predicate matches the statement's conditions
(``purpose = 'partner_available' AND kind <> 'settlement'``), which is what lets the planner
use it. Only lines of available accounts are in it (about a quarter of the ledger).

Written in SQL so that the ledger's model state stays the ledger's (``makemigrations`` sees no
change); created CONCURRENTLY so that building it on a live ledger does not block postings.
"""

from django.db import migrations

FORWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ledger_line_settlement ON commissions_ledgerline "
    "(account_id, id) INCLUDE (created, entry_id, kind, share, order_id, order_line_id, debit, "
    "credit) WHERE purpose = 'partner_available' AND kind <> 'settlement'",
]
BACKWARD = ["DROP INDEX CONCURRENTLY IF EXISTS ledger_line_settlement"]


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

    dependencies = [("commissions", "0007_debts_adjustments")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False)]
