"""The ledger's balance check reads an entry's lines by the entry, never a scan of the ledger.

``commissions_ledger_entry_balanced`` (0003) runs at commit for every ledger line written. Its
``... GROUP BY currency HAVING ... LIMIT 1`` let PostgreSQL pick the (currency, created) index
to produce the groups already sorted and stop at the first row, filtering every line of the
currency on ``entry_id``: a walk over the whole ledger for each line posted. In
bench/bench_orders.py (30,000 lines) the check took 25 ms instead of 0.1 ms, 14 times per
payment, so a payment's COMMIT took 220 ms and grew with the ledger. Without the ``LIMIT`` the
only sensible plan is the ``entry_id`` index; ``SELECT INTO`` keeps the first row anyway, so
what the check refuses is unchanged.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION commissions_ledger_entry_balanced() RETURNS trigger AS $$
DECLARE
    bad record;
BEGIN
    SELECT currency, SUM(debit) AS debits, SUM(credit) AS credits INTO bad
      FROM commissions_ledgerline
     WHERE entry_id = NEW.entry_id
     GROUP BY currency
    HAVING SUM(debit) <> SUM(credit){limit};
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entry % is unbalanced in %: debits % <> credits %',
            NEW.entry_id, bad.currency, bad.debits, bad.credits
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def _run(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            # A plain cursor: no parameters, so the "%" placeholders of RAISE stay as they are.
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("commissions", "0005_report_indexes")]

    operations = [
        migrations.RunPython(
            _run(FUNCTION.format(limit="")),
            _run(FUNCTION.format(limit="\n     LIMIT 1")),
            elidable=False,
        )
    ]
