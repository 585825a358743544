"""Settlements: what partners earned becomes settlements, payouts and ledger entries.

A run settles one currency up to the end of one day (``period_end``, UTC). Each payee's
``partner_available`` balance in that currency becomes ONE settlement and one ledger entry
moving it to ``partner_in_payout``; ``mark-paid`` then moves it to ``partner_paid_out`` and
``mark-failed`` back to available, where the next run picks it up again.

The ledger is append-only, so nothing marks a line as settled. A settlement instead covers a
RANGE of its account's lines by id, ``(after_line_id, to_line_id]``, and the next settlement of
that account starts where the last one ended; lines are never skipped or paid twice because the
ranges follow each other (and a unique constraint refuses two ranges starting at one line).
A range never includes the settlement entries' own debits (kind ``settlement``).

The work is set-based: one ``INSERT ... SELECT ... GROUP BY`` computes every payee's figures and
writes the settlement rows (about one row per payee, whatever the number of lines); then each
settlement's ledger entry is posted through the ledger's posting function
(``commissions.ledger.posting.ledger_post_many``, the batch form of ``ledger_post``) with
the idempotency key ``settlement:<id>``, together with its ``settlement.created`` event, a batch of
payees per transaction.

Crash safety: each step is idempotent and recorded on the run, so running a crashed run again
finishes it and ends in the same state as an uninterrupted run:
1. the watermark (the highest ledger line id once every posting transaction in flight has
   finished) is fixed once and kept on the run, so a re-run sees the same lines;
2. the settlement rows are written in one transaction together with ``run.prepared``;
3. a settlement whose entry is missing gets it posted, in batches of a few hundred payees per
   transaction (the settlement rows locked, the ledger returning an entry already posted under
   the same key instead of posting it again).
A session advisory lock per run keeps two workers from executing one run at once.

The figures are one SQL text on both databases (``sql``). On PostgreSQL
(production) the locks are PostgreSQL's; on SQLite (the embedded default)
``portable`` stands in for them (SQLite's one write lock, a file lock per
run). The steps, the postings and the events are the same on both. Other databases are
refused.

Modules: ``models`` (runs and settlements; imported by ``commissions.models`` under the app label
``commissions``), ``filters``, ``periods`` (period ends, schedules due), ``scheduling`` (starting
runs: finance's requests and the daily schedule), ``locks`` (one executor per run), ``runs``
(executing a run), ``sql`` (the figures, one SQL text), ``portable`` (SQLite's stand-ins for
PostgreSQL's locks), ``payouts`` (mark-paid, mark-failed), ``payloads`` (a settlement as the API
and its webhooks show it), ``selectors`` (reads), ``api`` (serializers and views). This package's
``__init__`` imports nothing, so that ``commissions.models`` may import from it.
"""
