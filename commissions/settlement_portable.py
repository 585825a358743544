"""Settlement runs on SQLite, the embedded default: the same settlements as on PostgreSQL.

PostgreSQL (production, benchmarked) executes a run with three things SQLite does not have:
``PREPARE_SQL`` in ``commissions.settlements`` (a data-modifying CTE, arrays, JSON operators,
casts), session advisory locks (one executor per run) and a ``SHARE`` lock on the ledger lines
table (the watermark). This module is what stands in for each on SQLite; the rest of a run
(the steps recorded on the run, ``ledger_post_many``, the events, the crash safety) is the same
code on both databases.

- **The figures**: ``FIGURES_SQL`` is ``PREPARE_SQL``'s computation (its CTEs, line for line)
  in SQL that SQLite and PostgreSQL both run: no casts, arrays, ``->>`` or ``= ANY``, and a
  SELECT instead of the ``INSERT ... RETURNING``. The minimum payout (a JSON map on the partner)
  is read per payee in Python, and the settlement rows are written with one ``bulk_create``.
  Still one statement over the lines, never a statement per line; only slower than PostgreSQL's
  (no hash joins tuned for it, no partial covering indexes). Because the SQL is portable, a test
  runs it on PostgreSQL against ``PREPARE_SQL`` over the same ledger and compares every figure
  (tests/settlements/test_portable.py).
- **The watermark**: no lock on the table is needed. Every transaction on the embedded default
  begins ``IMMEDIATE`` (settings), i.e. takes SQLite's one database write lock at ``BEGIN`` and
  holds it to the end, and SQLite has one writer at a time. So while the run's transaction holds
  the write lock no other transaction is inserting ledger lines: every line that exists is
  committed, and ``MAX(id)`` cannot pass over a line still being written (the gap PostgreSQL's
  SHARE lock closes). Ids come from ``AUTOINCREMENT`` and are handed out in commit order, so
  later lines all get higher ids. ``hold_write_lock`` makes sure of the write lock even in a
  transaction that began otherwise (a savepoint inside a deferred transaction).
- **One range computation at a time per currency**: the same write lock, held by ``_prepare``'s
  transaction from its first statement to its commit, serialises two runs' range computations
  (PostgreSQL takes an advisory transaction lock for it), and the unique constraint on
  (account, ``after_line_id``) still refuses two ranges starting at one line.
- **One executor per run**: an exclusive ``flock`` on a small file named after the database and
  the run (``RunFileLock``). The operating system drops it when the process dies, as
  PostgreSQL drops a session advisory lock with the worker's connection, so a run left
  ``running`` by a dead process is found and queued again the same way. SQLite is a file on
  one machine, so every process that can write it can see the lock.
"""

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from django.db import connection
from django.db.models import F, Max, Min
from django.db.models.functions import Coalesce

from commissions.choices import AccountPurpose
from commissions.models import LedgerAccount, LedgerLine
from commissions.settlement_models import Settlement, SettlementRun, SettlementStatus
from livecommerce.ids import new_id
from partners.models import Partner

try:
    import fcntl
except ImportError:  # Windows: locks held by this process only (see RunFileLock)
    fcntl = None  # type: ignore[assignment]

# PREPARE_SQL's CTEs with the same names and the same conditions (see the reading guide above
# PREPARE_SQL); what differs: no casts (integer sums are integers in SQLite, exact numerics in
# PostgreSQL), the schedules as an IN list, no MATERIALIZED hint, no minimum (read in Python)
# and the final rows selected rather than inserted. Keep the two in step: the test compares them.
FIGURES_SQL = """
WITH acct AS (
    SELECT a.id AS account_id,
           a.partner_id,
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
bounds AS (
    SELECT acct.*,
           (SELECT max(l.id) FROM commissions_ledgerline l
             WHERE l.account_id = acct.account_id
               AND l.id > acct.after_line_id
               AND l.id <= %(watermark)s
               AND l.created < %(cutoff)s
               AND l.kind <> 'settlement'
               AND l.id < COALESCE(
                   (SELECT min(n.id) FROM commissions_ledgerline n
                     WHERE n.account_id = acct.account_id
                       AND n.id > acct.after_line_id
                       AND n.id <= %(watermark)s
                       AND n.created >= %(cutoff)s
                       AND n.kind <> 'settlement'),
                   %(watermark)s + 1)) AS to_line_id
      FROM acct
),
covered AS (
    SELECT b.account_id, l.id, l.entry_id, l.kind, l.share, l.order_id, l.order_line_id,
           l.debit, l.credit
      FROM commissions_ledgerline l
      JOIN bounds b ON b.account_id = l.account_id
     WHERE l.purpose = 'partner_available' AND l.currency = %(currency)s
       AND l.id > %(lowest_after)s AND l.id <= %(watermark)s
       AND l.id > b.after_line_id AND l.id <= b.to_line_id
       AND l.kind <> 'settlement'
),
per_account AS (
    SELECT account_id,
           count(*) AS line_count,
           sum(credit - debit) AS net,
           sum(CASE WHEN share <> 'brand_net' AND kind = 'release'
                    THEN credit - debit ELSE 0 END) AS own_gross,
           sum(CASE WHEN share <> 'brand_net' AND kind = 'refund'
                    THEN debit - credit ELSE 0 END) AS own_refunds,
           sum(CASE WHEN kind NOT IN ('release', 'refund')
                    THEN credit - debit ELSE 0 END) AS adjustments
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
           sum(CASE WHEN share = 'merchandise' THEN debit ELSE 0 END) AS gross,
           sum(CASE WHEN share = 'merchandise' THEN credit ELSE 0 END) AS refunds,
           sum(CASE WHEN share = 'platform_commission'
                    THEN credit - debit ELSE 0 END) AS platform_commission,
           sum(CASE WHEN share = 'creator_commission'
                    THEN credit - debit ELSE 0 END) AS creator_commission,
           sum(CASE WHEN share = 'fulfillment_fee'
                    THEN credit - debit ELSE 0 END) AS fulfillment_fees
      FROM (SELECT * FROM brand_sales UNION ALL SELECT * FROM brand_refunds) shares
     GROUP BY account_id
)
SELECT b.account_id, b.partner_id, b.after_line_id, b.to_line_id,
       pa.line_count, pa.net, pa.adjustments,
       pa.own_gross + COALESCE(g.gross, 0) AS gross,
       pa.own_refunds + COALESCE(g.refunds, 0) AS refunds,
       COALESCE(g.platform_commission, 0) AS platform_commission,
       COALESCE(g.creator_commission, 0) AS creator_commission,
       COALESCE(g.fulfillment_fees, 0) AS fulfillment_fees
  FROM bounds b
  JOIN per_account pa ON pa.account_id = b.account_id
  LEFT JOIN grossed g ON g.account_id = b.account_id
 ORDER BY b.account_id
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


def lowest_after_line_id(currency: str) -> int:
    """Where the oldest unsettled range of the currency begins (``PREPARE_SQL``'s bound)."""
    accounts = LedgerAccount.objects.filter(
        purpose=AccountPurpose.PARTNER_AVAILABLE, currency=currency
    ).annotate(last=Coalesce(Max("settlements__to_line_id"), 0))
    return accounts.aggregate(lowest=Min("last"))["lowest"] or 0


def payee_figures(*, run: SettlementRun, schedules: list[str]) -> list[PayeeFigures]:
    """Every payee of the run with covered lines, and its figures, in account order.

    Read-only, so it can run anywhere (a test runs it on PostgreSQL before ``PREPARE_SQL``):
    the caller decides who is settled (``PayeeFigures.settles``). ``run.watermark_line_id``
    must be fixed.
    """
    if run.watermark_line_id is None:
        raise ValueError("fix the run's watermark first")
    from commissions.settlements import period_cutoff

    params: dict = {
        "run_id": run.pk,
        "currency": run.currency,
        "watermark": run.watermark_line_id,
        # As the ORM would pass it: SQLite compares the stored text, so the same text format.
        "cutoff": connection.ops.adapt_datetimefield_value(period_cutoff(run.period_end)),
        "lowest_after": lowest_after_line_id(run.currency),
    }
    names = []
    for index, schedule in enumerate(schedules):
        params[f"schedule_{index}"] = schedule
        names.append(f"%(schedule_{index})s")
    # Only placeholder names go into the text; the values are parameters.
    sql = FIGURES_SQL.format(schedules=", ".join(names) or "NULL")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column[0] for column in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    minimums = dict(
        Partner.objects.filter(pk__in={row["partner_id"] for row in rows}).values_list(
            "pk", "minimum_payout"
        )
    )
    return [
        PayeeFigures(
            account_id=row["account_id"],
            partner_id=row["partner_id"],
            after_line_id=row["after_line_id"],
            to_line_id=row["to_line_id"],
            # PostgreSQL sums bigints as exact numerics (Decimal): whole numbers, int() is exact.
            **{name: int(row[name]) for name in _AMOUNTS},
            minimum=int((minimums.get(row["partner_id"]) or {}).get(run.currency) or 0),
        )
        for row in rows
    ]


def settlements_write(*, run: SettlementRun, schedules: list[str]) -> tuple[int, int, int]:
    """Write the run's settlement rows from ``payee_figures``: ``PREPARE_SQL``'s INSERT.

    Inside ``_prepare``'s transaction (which holds the write lock). Returns the numbers of
    settlements written, of payees below their minimum and of payees with nothing positive.
    """
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


def hold_write_lock(run_id: str) -> None:
    """Hold SQLite's database write lock from here to the end of the transaction.

    An ``IMMEDIATE`` transaction (the settings' default) has it from ``BEGIN`` and this changes
    nothing; a transaction begun otherwise takes it now, before it reads anything, so what it
    reads next cannot change under it. (SQLite has no ``SELECT ... FOR UPDATE``: a write is
    how a transaction takes the lock.)
    """
    SettlementRun.objects.filter(pk=run_id).update(attempts=F("attempts"))


def watermark() -> int:
    """The highest ledger line id: every line at or below it is committed (see the docstring:
    call it while holding the write lock)."""
    return LedgerLine.objects.aggregate(top=Coalesce(Max("id"), 0))["top"]


# --- One executor per run -----------------------------------------------------------------


def _lock_dir() -> Path:
    user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    path = Path(tempfile.gettempdir()) / f"livecommerce-locks-{user}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


_held_here: set[str] = set()  # without fcntl: the keys this process holds
_held_here_guard = threading.Lock()


class RunFileLock:
    """An exclusive, non-blocking lock on a key, held until ``release`` or the process's end.

    ``flock`` on a file named after the database and the key: two processes, or two threads
    with their own ``RunFileLock``, exclude each other, and the kernel releases the lock of a
    process that dies. Without ``fcntl`` (Windows) it excludes the threads of this process only.
    """

    def __init__(self, key: str) -> None:
        database = os.path.abspath(str(connection.settings_dict["NAME"]))
        digest = hashlib.sha256(f"{database}\0{key}".encode()).hexdigest()[:40]
        self.key = f"{database}\0{key}"
        self.path = _lock_dir() / f"{digest}.lock"
        self._file = None
        self.acquired = False

    def acquire(self) -> bool:
        if fcntl is None:
            with _held_here_guard:
                if self.key in _held_here:
                    return False
                _held_here.add(self.key)
            self.acquired = True
            return True
        file = self.path.open("a+b")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        self._file = file
        self.acquired = True
        return True

    def release(self) -> None:
        if not self.acquired:
            return
        self.acquired = False
        if fcntl is None:
            with _held_here_guard:
                _held_here.discard(self.key)
            return
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None
