"""The database's own guard on the ledger (PostgreSQL only; SQLite does nothing here).

- ``commissions_ledger_entry_balanced``: a DEFERRABLE INITIALLY DEFERRED constraint trigger on
  ledger lines. At commit (or at ``SET CONSTRAINTS ALL IMMEDIATE``) every entry whose lines were
  written must have debits equal to credits in each currency, or the transaction fails.
- ``commissions_ledger_immutable``: UPDATE and DELETE of ledger entries and lines are refused;
  a correction is a new, reversing entry. (TRUNCATE, which test databases use to reset, is not
  blocked.)
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION commissions_ledger_entry_balanced() RETURNS trigger AS $$
DECLARE
    bad record;
BEGIN
    SELECT currency, SUM(debit) AS debits, SUM(credit) AS credits INTO bad
      FROM commissions_ledgerline
     WHERE entry_id = NEW.entry_id
     GROUP BY currency
    HAVING SUM(debit) <> SUM(credit)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entry % is unbalanced in %: debits % <> credits %',
            NEW.entry_id, bad.currency, bad.debits, bad.credits
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER commissions_ledger_entry_balanced
    AFTER INSERT ON commissions_ledgerline
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION commissions_ledger_entry_balanced();

CREATE OR REPLACE FUNCTION commissions_ledger_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused (post a reversing entry instead)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER commissions_ledgerline_immutable
    BEFORE UPDATE OR DELETE ON commissions_ledgerline
    FOR EACH ROW EXECUTE FUNCTION commissions_ledger_immutable();

CREATE TRIGGER commissions_ledgerentry_immutable
    BEFORE UPDATE OR DELETE ON commissions_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION commissions_ledger_immutable();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS commissions_ledgerentry_immutable ON commissions_ledgerentry;
DROP TRIGGER IF EXISTS commissions_ledgerline_immutable ON commissions_ledgerline;
DROP FUNCTION IF EXISTS commissions_ledger_immutable();
DROP TRIGGER IF EXISTS commissions_ledger_entry_balanced ON commissions_ledgerline;
DROP FUNCTION IF EXISTS commissions_ledger_entry_balanced();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # A plain cursor: no parameters, so the "%" placeholders of RAISE stay as they are.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("commissions", "0002_ledger")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
