"""What the 1M-line benchmarks (reports, settlement) share to build their ledgers in SQL.

Each benchmark keeps its own generator (the data differs: years and currencies for reports,
payees and refunds after release for settlement); the database they live in, the inserts that
fill columns added later with neutral values, and the final balance check are written once here.
"""

from collections.abc import Callable

import psycopg

DB_HOST = "postgres://postgres@127.0.0.1:5432"

# A neutral value per column type, for NOT NULL columns the generators do not name.
_NEUTRAL = {
    "character varying": "''",
    "text": "''",
    "bigint": "0",
    "integer": "0",
    "smallint": "0",
    "boolean": "false",
    "timestamp with time zone": "now()",
    "date": "current_date",
    "jsonb": "'{}'::jsonb",
}


def create_database(name: str, fresh: bool) -> bool:
    """Create (or with ``fresh`` re-create) the bench database ``name``; True when created."""
    with psycopg.connect(f"{DB_HOST}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not fresh:
            return False
        if exists:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return True


def _defaults_for(cursor, table: str, given: list[str]) -> tuple[list[str], list[str]]:
    """NOT NULL columns without a default that ``given`` leaves out, with a neutral value each,
    so the generators keep working when other engineers add columns."""
    cursor.execute(
        """SELECT column_name, data_type FROM information_schema.columns
            WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL""",
        [table],
    )
    columns, values = [], []
    for name, data_type in cursor.fetchall():
        if name not in given:
            columns.append(name)
            values.append(_NEUTRAL[data_type])
    return columns, values


def insert_select(cursor, table: str, select_sql: str, columns: list[str]) -> None:
    """``INSERT INTO table (columns, the neutral others) SELECT ... FROM (select_sql) s``."""
    extra_columns, extra_values = _defaults_for(cursor, table, columns)
    column_list = ", ".join([*columns, *extra_columns])
    value_list = ", ".join([*(f"s.{c}" for c in columns), *extra_values])
    cursor.execute(f"INSERT INTO {table} ({column_list}) SELECT {value_list} FROM ({select_sql}) s")


def accounts_and_entries_from_lines(cursor) -> int:
    """The ledger's accounts and entries, derived from the generated lines (which name both);
    the triggers back on. Returns how many lines there are."""
    insert_select(
        cursor,
        "commissions_ledgeraccount",
        """SELECT DISTINCT account_id AS id, purpose, partner_id, currency
             FROM commissions_ledgerline""",
        ["id", "purpose", "partner_id", "currency"],
    )
    insert_select(
        cursor,
        "commissions_ledgerentry",
        """SELECT DISTINCT ON (entry_id) entry_id AS id, kind, order_id, currency, created,
                  entry_id AS idempotency_key
             FROM commissions_ledgerline ORDER BY entry_id""",
        ["id", "kind", "order_id", "currency", "created", "idempotency_key"],
    )
    cursor.execute("SET session_replication_role = DEFAULT")
    cursor.execute("SELECT count(*) FROM commissions_ledgerline")
    (lines,) = cursor.fetchone()
    return lines


def vacuum(name: str) -> None:
    """VACUUM (ANALYZE) the database, outside a transaction: it sets the visibility map, so
    index-only scans stay index-only."""
    with psycopg.connect(f"{DB_HOST}/{name}", autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def check_balanced() -> None:
    """The generated ledger balances per entry (the triggers were off while loading)."""
    from django.db import connection  # the benchmark sets Django up after choosing its database

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM (SELECT entry_id FROM commissions_ledgerline
                GROUP BY entry_id HAVING sum(debit) <> sum(credit)) bad"""
        )
        (unbalanced,) = cursor.fetchone()
    assert unbalanced == 0, f"{unbalanced} unbalanced entries generated"


def prepare(name: str, *, fresh: bool, target_lines: int, generate: Callable[[], int]) -> None:
    """The bench database ``name`` migrated and holding its generated ledger, checked.

    Generated once and kept between runs (``fresh`` regenerates); a database holding part of a
    ledger is refused rather than topped up. Sets Django up (its settings name the database).
    """
    import django

    created = create_database(name, fresh)
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM commissions_ledgerline")
        (existing,) = cursor.fetchone()
    if created or existing < target_lines * 9 // 10:
        if existing:
            raise SystemExit(f"{name} holds {existing} lines: run with --fresh")
        generate()
    check_balanced()
