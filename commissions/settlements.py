"""Settlement runs: what partners earned becomes settlements, payouts and ledger entries.

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
(``commissions.ledger.ledger_post_many``, the batch form of ``ledger_post``) with the
idempotency key ``settlement:<id>``, together with its ``settlement.created`` event, a batch of
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

The figures are one SQL text on both databases (``commissions.settlement_sql``). On PostgreSQL
(production) the locks are PostgreSQL's; on SQLite (the embedded default)
``commissions.settlement_portable`` stands in for them (SQLite's one write lock, a file lock per
run). The steps, the postings and the events are this module's on both. Other databases are
refused.
"""

import logging
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone

from commissions import settlement_portable, settlement_sql
from commissions.choices import AccountPurpose, EntryKind
from commissions.ledger import (
    NewEntry,
    Posting,
    ledger_post,
    ledger_post_many,
    lock_available_account,
)
from commissions.models import LedgerAccount, LedgerEntry, LedgerLine
from commissions.selectors import available_balance
from commissions.settlement_models import (
    Settlement,
    SettlementRun,
    SettlementRunStatus,
    SettlementRunTrigger,
    SettlementStatus,
)
from livecommerce import money
from livecommerce.api import check_currency
from livecommerce.errors import AppError, AppValidationError
from livecommerce.wire import timestamp
from partners.choices import PayoutSchedule
from partners.events import event_publish, event_publish_many

logger = logging.getLogger(__name__)

P = AccountPurpose

# Settlements whose entries are posted in one transaction (``SETTLEMENT_POST_BATCH`` overrides):
# a crash loses at most one batch's work, which the next attempt does again.
POST_BATCH = 1000

# A run still queued this long after it was created has lost its task message; the daily schedule
# queues it again (executing a run twice is harmless).
STALE_RUN_AFTER = timedelta(minutes=30)

# How far back the schedule looks for periods it never ran (a month-end included).
CATCH_UP_DAYS = 62


# --- Periods and schedules ---------------------------------------------------------------------


def period_cutoff(period_end: date) -> datetime:
    """The first instant after ``period_end``: lines created before it belong to the period."""
    return datetime.combine(period_end + timedelta(days=1), time.min, tzinfo=UTC)


def database_today() -> date:
    """Today (UTC) by the database's clock, the clock periods are judged by."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT (statement_timestamp() AT TIME ZONE 'UTC')::date")
            return cursor.fetchone()[0]
    return timezone.now().date()  # SQLite: one machine, one clock


def default_period_end(today: date | None = None) -> date:
    """The daily run settles up to the end of yesterday (UTC): a day that is over."""
    return (today or database_today()) - timedelta(days=1)


def schedules_due(period_end: date) -> list[str]:
    """The payout schedules whose payees the scheduled run for ``period_end`` settles.

    Daily payees every day; weekly payees when the period ends on a Sunday (the run happens on
    the Monday and covers the week that ended); monthly payees when it ends on the last day of a
    month (the run happens on the 1st).
    """
    due = [PayoutSchedule.DAILY.value]
    if period_end.weekday() == 6:
        due.append(PayoutSchedule.WEEKLY.value)
    if (period_end + timedelta(days=1)).day == 1:
        due.append(PayoutSchedule.MONTHLY.value)
    return due


def run_schedules(run: SettlementRun) -> list[str]:
    """The payout schedules a run settles: the schedule's runs those due, finance's all."""
    if run.trigger == SettlementRunTrigger.SCHEDULE:
        return schedules_due(run.period_end)
    return list(PayoutSchedule.values)


def _check_period(period_end: date, currency: str) -> None:
    check_currency(currency)
    if period_end > database_today():
        raise AppValidationError(
            "period_end_in_future",
            "A period can only be settled once it has begun.",
            attr="period_end",
        )


# --- Starting runs ----------------------------------------------------------------------------


def _enqueue(run: SettlementRun) -> None:
    """Queue the run's task once the transaction that made it runnable commits."""
    from commissions.tasks import settlement_run

    run_id = run.pk
    # robust: a broker that is down must not turn the committed request into a 500; the run
    # stays queued and the daily scheduled run picks it up (logged by Django when it fails).
    transaction.on_commit(lambda: settlement_run.delay(run_id), robust=True)


@transaction.atomic
def settlement_run_request(
    *, period_end: date, currency: str, trigger: str = SettlementRunTrigger.REQUEST
) -> tuple[SettlementRun, bool]:
    """Start the run for (``period_end``, ``currency``), or return the one that exists.

    Returns ``(run, queued)``: ``queued`` is True when this call created the run or queued it
    again because it failed or its worker died (a crashed run is finished by running it again);
    a run that is completed, queued or being executed is returned as it is. Finance's runs
    settle every payee; the schedule's only the payees whose payout schedule is due.
    """
    _check_period(period_end, currency)
    run, created = SettlementRun.objects.get_or_create(
        period_end=period_end, currency=currency, trigger=trigger
    )
    if created:
        _enqueue(run)
        return run, True
    run = SettlementRun.objects.select_for_update().get(pk=run.pk)
    if not _interrupted(run, queued_for=None):
        return run, False
    run.status = SettlementRunStatus.QUEUED
    run.save(update_fields=["status"])
    _enqueue(run)
    return run, True


def _executing(run: SettlementRun) -> bool:
    """Whether a worker is executing the run now (it holds the run's advisory lock)."""
    key = _RunLock.key_for(run.pk)
    if connection.vendor == "sqlite":
        lock = settlement_portable.RunFileLock(key)
        free = lock.acquire()
        lock.release()
        return not free
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        free = bool(cursor.fetchone()[0])
        if free:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
    return not free


def _interrupted(run: SettlementRun, *, queued_for: timedelta | None) -> bool:
    """Whether the run must be queued again to finish: it failed, or its worker died.

    A run ``running`` that no worker is executing lost its worker. A run ``queued`` waits for
    its task, unless it has waited longer than ``queued_for`` (its message was lost).
    """
    if run.status == SettlementRunStatus.FAILED:
        return True
    if run.status == SettlementRunStatus.RUNNING:
        return not _executing(run)
    if run.status == SettlementRunStatus.QUEUED and queued_for is not None:
        return run.created < timezone.now() - queued_for and not _executing(run)
    return False


def _currencies_to_settle() -> list[str]:
    return list(
        LedgerAccount.objects.filter(purpose=P.PARTNER_AVAILABLE)
        .values_list("currency", flat=True)
        .distinct()
        .order_by("currency")
    )


def _periods_to_catch_up(*, currency: str, period_end: date) -> list[date]:
    """The schedule's periods of ``currency`` before ``period_end`` that never ran.

    From the day after the last period the schedule ran (at most ``CATCH_UP_DAYS`` back, so a
    monthly payee's missed month-end is still found) up to the day before ``period_end``. A
    currency the schedule never ran starts at ``period_end``: there is nothing to catch up.
    """
    last = (
        SettlementRun.objects.filter(
            currency=currency, trigger=SettlementRunTrigger.SCHEDULE, period_end__lt=period_end
        )
        .order_by("-period_end")
        .values_list("period_end", flat=True)
        .first()
    )
    if last is None:
        return []
    first = max(last + timedelta(days=1), period_end - timedelta(days=CATCH_UP_DAYS))
    return [first + timedelta(days=n) for n in range((period_end - first).days)]


def _schedule_run(*, period_end: date, currency: str) -> tuple[SettlementRun, bool]:
    """The schedule's run of a period: created, queued again if interrupted, or as it is."""
    run, created = SettlementRun.objects.get_or_create(
        period_end=period_end, currency=currency, trigger=SettlementRunTrigger.SCHEDULE
    )
    if created:
        return run, True
    return _requeue_if_interrupted(run)


def _requeue_if_interrupted(run: SettlementRun) -> tuple[SettlementRun, bool]:
    run = SettlementRun.objects.select_for_update().get(pk=run.pk)
    if not _interrupted(run, queued_for=STALE_RUN_AFTER):
        return run, False
    run.status = SettlementRunStatus.QUEUED
    run.save(update_fields=["status"])
    return run, True


@transaction.atomic
def settlement_runs_for_schedule(
    *, period_end: date, currencies: list[str] | None = None
) -> list[tuple[SettlementRun, bool]]:
    """The schedule's runs for ``period_end``, with every run it must catch up on.

    Per currency that has available balances: the schedule's periods that never ran (the
    scheduler was down) up to ``period_end``, oldest first, and the run of ``period_end``;
    then every other run, of any period, finance's too, that failed or lost its worker, queued
    again (executing a run again finishes it; ranges follow each other, so nobody is paid
    twice). Returns ``(run, to_execute)`` pairs; ``to_execute`` is False for a completed run
    and for one a live worker is executing or will execute.
    """
    if currencies is None:
        currencies = _currencies_to_settle()
    runs: dict[str, tuple[SettlementRun, bool]] = {}
    for currency in currencies:
        _check_period(period_end, currency)
        for day in [*_periods_to_catch_up(currency=currency, period_end=period_end), period_end]:
            run, to_execute = _schedule_run(period_end=day, currency=currency)
            runs[run.pk] = (run, to_execute)
    unfinished = SettlementRun.objects.filter(
        currency__in=currencies,
        status__in=(
            SettlementRunStatus.FAILED,
            SettlementRunStatus.RUNNING,
            SettlementRunStatus.QUEUED,
        ),
    ).exclude(pk__in=list(runs))
    for run in unfinished.order_by("period_end", "created"):
        runs[run.pk] = _requeue_if_interrupted(run)
    return list(runs.values())


@transaction.atomic
def settlement_runs_schedule(*, period_end: date | None = None) -> list[SettlementRun]:
    """Beat's daily run: settle every currency up to ``period_end`` (yesterday by default),
    catching up on missed periods and interrupted runs.

    Queues a ``settlement_run`` task for each run that needs executing (after commit).
    """
    runs = settlement_runs_for_schedule(period_end=period_end or default_period_end())
    for run, to_execute in runs:
        if to_execute:
            _enqueue(run)
    return [run for run, _ in runs]


# --- Executing a run ----------------------------------------------------------------------------


class _RunLock:
    """A session-level advisory lock on one run: one executor at a time.

    Held across the run's several transactions and released when done, or by PostgreSQL when
    the worker's connection dies with it. On SQLite, a file lock that dies with the process.
    """

    def __init__(self, run_id: str) -> None:
        self.key = self.key_for(run_id)
        self.acquired = False
        self.file_lock = (
            settlement_portable.RunFileLock(self.key) if connection.vendor == "sqlite" else None
        )

    @staticmethod
    def key_for(run_id: str) -> str:
        return f"settlement_run:{run_id}"

    def __enter__(self) -> bool:
        if self.file_lock is not None:
            self.acquired = self.file_lock.acquire()
            return self.acquired
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [self.key])
            self.acquired = bool(cursor.fetchone()[0])
        return self.acquired

    def __exit__(self, *exc_info) -> None:
        if self.file_lock is not None:
            self.file_lock.release()
        elif self.acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [self.key])


def settlement_run_execute(*, run_id: str) -> SettlementRun:
    """Execute a run from wherever it stopped; a completed run is left as it is.

    Called by the ``commissions.tasks.settlement_run`` task and by ``run_settlements``. Any
    error marks the run ``failed`` (with the error) and is raised again; running it again
    finishes it without paying anyone twice or skipping anyone.
    """
    if connection.vendor not in ("postgresql", "sqlite"):
        raise RuntimeError(f"Settlement runs need PostgreSQL or SQLite, not {connection.vendor}.")
    with _RunLock(run_id) as acquired:
        if not acquired:
            logger.info("settlement run %s is being executed elsewhere", run_id)
            return SettlementRun.objects.get(pk=run_id)
        run = _run_begin(run_id)
        if run.status == SettlementRunStatus.COMPLETED:
            return run
        try:
            started = monotonic()
            if run.watermark_line_id is None:
                _fix_watermark(run)
            if not run.prepared:
                _prepare(run)
            prepared = monotonic()
            _post_entries(run)
            run = _run_finish(run)
            logger.info(
                "settlement run %s completed: settlements written in %.2f s, entries and events "
                "posted in %.2f s",
                run.pk,
                prepared - started,
                monotonic() - prepared,
            )
            return run
        except Exception as exc:
            _run_fail(run, exc)
            raise


@transaction.atomic
def _run_begin(run_id: str) -> SettlementRun:
    run = SettlementRun.objects.select_for_update().get(pk=run_id)
    if run.status != SettlementRunStatus.COMPLETED:
        run.status = SettlementRunStatus.RUNNING
        run.attempts += 1
        run.started = run.started or timezone.now()
        run.error = ""
        run.save(update_fields=["status", "attempts", "started", "error"])
    return run


@transaction.atomic
def _fix_watermark(run: SettlementRun) -> None:
    """Fix the highest ledger line id the run may settle, once.

    Line ids come from a sequence when a line is inserted, not when its transaction commits, so
    ``MAX(id)`` alone could pass over a line whose transaction is still open and that range
    would never be settled. A SHARE lock on the lines table waits for every transaction that
    is inserting lines and holds new ones back for the instant of the ``MAX``: every line at or
    below the watermark is then committed (or rolled back for good). On SQLite, holding the
    database's one write lock does the same (see ``commissions.settlement_portable``).
    """
    sqlite = connection.vendor == "sqlite"
    if sqlite:
        settlement_portable.hold_write_lock(run.pk)
    locked = SettlementRun.objects.select_for_update().get(pk=run.pk)
    if locked.watermark_line_id is None and sqlite:
        locked.watermark_line_id = settlement_portable.watermark()
        locked.save(update_fields=["watermark_line_id"])
    elif locked.watermark_line_id is None:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '60s'")
            cursor.execute("LOCK TABLE commissions_ledgerline IN SHARE MODE")
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM commissions_ledgerline")
            locked.watermark_line_id = cursor.fetchone()[0]
        locked.save(update_fields=["watermark_line_id"])
    run.watermark_line_id = locked.watermark_line_id


@transaction.atomic
def _prepare(run: SettlementRun) -> None:
    """Write every payee's settlement row of the run (one statement), once."""
    sqlite = connection.vendor == "sqlite"
    if sqlite:
        # Held to the commit: runs of the currency compute their ranges one at a time.
        settlement_portable.hold_write_lock(run.pk)
    locked = SettlementRun.objects.select_for_update().get(pk=run.pk)
    if locked.prepared:
        run.prepared = True
        return
    settled, below_minimum, non_positive = settlement_sql.settlements_write(
        run=run, schedules=run_schedules(run)
    )
    locked.prepared = True
    locked.below_minimum_count = below_minimum
    locked.non_positive_count = non_positive
    locked.save(update_fields=["prepared", "below_minimum_count", "non_positive_count"])
    run.prepared = True
    logger.info(
        "settlement run %s: %s settlements, %s below minimum, %s zero or negative",
        run.pk,
        settled,
        below_minimum,
        non_positive,
    )


def _post_entries(run: SettlementRun) -> None:
    """Post the ledger entry of every settlement of the run that does not have one yet."""
    batch = getattr(settings, "SETTLEMENT_POST_BATCH", POST_BATCH)
    missing = list(
        Settlement.objects.filter(run=run, entry__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    for start in range(0, len(missing), batch):
        settlement_post_entries(settlement_ids=missing[start : start + batch])


@transaction.atomic
def settlement_post_entries(*, settlement_ids: list[str]) -> list[Settlement]:
    """Post settlements' entries (available -> in payout) and ``settlement.created`` events.

    One transaction for the batch, with its settlement rows locked: each settlement gets its
    entry and its event together or not at all, and one that has its entry already is left as
    it is, so a re-run posts each entry once. The entries go through ``ledger_post_many`` (the
    ledger's posting rules, a few statements per batch rather than per payee).
    """
    batch = list(
        Settlement.objects.select_for_update()
        .filter(pk__in=settlement_ids, entry__isnull=True)
        .order_by("id")
    )
    if not batch:
        return []
    entries = ledger_post_many(
        entries=[
            NewEntry(
                kind=EntryKind.SETTLEMENT,
                currency=settlement.currency,
                postings=[
                    Posting(
                        P.PARTNER_AVAILABLE,
                        debit=settlement.net_payout,
                        partner_id=settlement.partner_id,
                    ),
                    Posting(
                        P.PARTNER_IN_PAYOUT,
                        credit=settlement.net_payout,
                        partner_id=settlement.partner_id,
                    ),
                ],
                idempotency_key=f"settlement:{settlement.pk}",
                reference=settlement.pk,
                memo=f"Settlement {settlement.pk} up to {settlement.period_end.isoformat()}",
            )
            for settlement in batch
        ]
    )
    now = timezone.now()
    for settlement, entry in zip(batch, entries, strict=True):
        settlement.entry = entry
        settlement.updated = now
    # Each settlement's entry is the one posted under its idempotency key: one UPDATE.
    Settlement.objects.filter(pk__in=[s.pk for s in batch]).update(
        entry=Subquery(
            LedgerEntry.objects.filter(
                idempotency_key=Concat(Value("settlement:"), OuterRef("pk"))
            ).values("pk")[:1]
        ),
        updated=now,
    )
    event_publish_many(
        events=[("settlement.created", s.pk, settlement_data(s), [s.partner_id]) for s in batch]
    )
    return batch


@transaction.atomic
def _run_finish(run: SettlementRun) -> SettlementRun:
    run = SettlementRun.objects.select_for_update().get(pk=run.pk)
    totals = Settlement.objects.filter(run=run, entry__isnull=False).aggregate(
        count=Count("id"),
        lines=Coalesce(Sum("line_count"), 0),
        net=Coalesce(Sum("net_payout"), 0),
    )
    run.settlement_count = totals["count"]
    run.line_count = totals["lines"]
    run.net_payout = totals["net"]
    run.status = SettlementRunStatus.COMPLETED
    run.finished = timezone.now()
    run.save(update_fields=["settlement_count", "line_count", "net_payout", "status", "finished"])
    return run


def _run_fail(run: SettlementRun, exc: BaseException) -> None:
    logger.exception("settlement run %s failed", run.pk)
    try:
        SettlementRun.objects.filter(pk=run.pk).update(
            status=SettlementRunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:1000]
        )
    except Exception:  # the database itself may be what failed; the run stays "running"
        logger.exception("could not record the failure of settlement run %s", run.pk)


# --- Paying out -------------------------------------------------------------------------------


def _locked_pending(settlement: Settlement) -> Settlement:
    settlement = Settlement.objects.select_for_update().get(pk=settlement.pk)
    if not settlement.is_pending:
        raise AppError("settlement_not_pending")
    return settlement


@transaction.atomic
def settlement_mark_paid(*, settlement: Settlement, payout_reference: str) -> Settlement:
    """Record that the payout reached the payee: in payout -> paid out (kind ``payout``).

    Only a pending settlement (else 409 ``settlement_not_pending``), and only while its payee
    owes nothing in the currency (else 409 ``payee_owes``: a refund after the settlement was
    made took its available balance below zero; finance marks the settlement failed and the
    next run nets the debt off), so no payout leaves while its payee owes money. The payee's
    available account is locked, so an adjustment or another payout decides after this one.
    Publishes ``settlement.paid`` to the payee in the same transaction.
    """
    settlement = _locked_pending(settlement)
    partner_id = settlement.partner_id
    lock_available_account(partner_id=partner_id, currency=settlement.currency)
    owed = -available_balance(partner_id=partner_id, currency=settlement.currency)
    if owed > 0:
        raise AppError(
            "payee_owes",
            f"The payee owes {money.to_decimal_string(owed, settlement.currency)} "
            f"{settlement.currency}: mark this settlement failed; the next run nets the debt off.",
        )
    settlement.payout_entry = ledger_post(
        kind=EntryKind.PAYOUT,
        currency=settlement.currency,
        postings=[
            Posting(P.PARTNER_IN_PAYOUT, debit=settlement.net_payout, partner_id=partner_id),
            Posting(P.PARTNER_PAID_OUT, credit=settlement.net_payout, partner_id=partner_id),
        ],
        idempotency_key=f"payout:{settlement.pk}",
        reference=settlement.pk,
        memo=f"Payout of {settlement.pk}: {payout_reference}"[:500],
    )
    settlement.status = SettlementStatus.PAID
    settlement.payout_reference = payout_reference
    settlement.paid_at = timezone.now()
    settlement.save(
        update_fields=["payout_entry", "status", "payout_reference", "paid_at", "updated"]
    )
    _publish(settlement, "settlement.paid")
    return settlement


@transaction.atomic
def settlement_mark_failed(*, settlement: Settlement, reason: str) -> Settlement:
    """Record that the payout failed: the funds go back from in payout to available.

    The returned amount is a new line on the payee's available account (kind
    ``payout_failed``), so the next run settles it again with whatever else is due. Only a
    pending settlement (else 409 ``settlement_not_pending``); publishes ``settlement.failed``.
    """
    settlement = _locked_pending(settlement)
    partner_id = settlement.partner_id
    # The credit lowers what the payee owes: under its account lock (settlement, then account,
    # as mark-paid), so a write-off never reads a debt this credit is paying off.
    lock_available_account(partner_id=partner_id, currency=settlement.currency)
    settlement.payout_entry = ledger_post(
        kind=EntryKind.PAYOUT_FAILED,
        currency=settlement.currency,
        postings=[
            Posting(P.PARTNER_IN_PAYOUT, debit=settlement.net_payout, partner_id=partner_id),
            Posting(P.PARTNER_AVAILABLE, credit=settlement.net_payout, partner_id=partner_id),
        ],
        idempotency_key=f"payout_failed:{settlement.pk}",
        reference=settlement.pk,
        memo=f"Payout of {settlement.pk} failed: {reason}"[:500],
    )
    settlement.status = SettlementStatus.FAILED
    settlement.failure_reason = reason
    settlement.failed_at = timezone.now()
    settlement.save(
        update_fields=["payout_entry", "status", "failure_reason", "failed_at", "updated"]
    )
    _publish(settlement, "settlement.failed")
    return settlement


def settlement_data(settlement: Settlement) -> dict[str, Any]:
    """A settlement as the API and its webhooks show it (amounts as decimal strings)."""
    currency = settlement.currency

    def amount(minor: int) -> str:
        return money.to_decimal_string(minor, currency)

    return {
        "id": settlement.pk,
        "run": settlement.run_id,
        "partner": settlement.partner_id,
        "currency": currency,
        "period_end": settlement.period_end.isoformat(),
        "status": settlement.status,
        "gross": amount(settlement.gross),
        "platform_commission": amount(settlement.platform_commission),
        "creator_commission": amount(settlement.creator_commission),
        "fulfillment_fees": amount(settlement.fulfillment_fees),
        "refunds": amount(settlement.refunds),
        "adjustments": amount(settlement.adjustments),
        "net_payout": amount(settlement.net_payout),
        "line_count": settlement.line_count,
        "ledger_entry": settlement.entry_id,
        "payout_entry": settlement.payout_entry_id,
        "payout_reference": settlement.payout_reference or None,
        "failure_reason": settlement.failure_reason or None,
        "created": timestamp(settlement.created),
        "paid_at": timestamp(settlement.paid_at),
        "failed_at": timestamp(settlement.failed_at),
    }


def _publish(settlement: Settlement, event_type: str) -> None:
    # The settlement row is locked by the caller, so the event's sequence number is ours.
    event_publish(
        type=event_type,
        object_id=settlement.pk,
        data=settlement_data(settlement),
        partner_ids=[settlement.partner_id],
    )


# --- Reads ------------------------------------------------------------------------------------


def settlement_list(*, caller) -> QuerySet[Settlement]:
    """The settlements the caller may see: finance all, a payee its own.

    A settlement whose ledger entry a crashed run has not posted yet is not shown.
    """
    return Settlement.objects.visible_to(caller).filter(entry__isnull=False)


def settlement_run_list(*, caller) -> QuerySet[SettlementRun]:
    return SettlementRun.objects.visible_to(caller)


def settlement_lines(*, settlement: Settlement) -> QuerySet[LedgerLine]:
    """Every ledger line the settlement covers, in id order (an index range scan)."""
    return (
        LedgerLine.objects.filter(
            account_id=settlement.account_id,
            id__gt=settlement.after_line_id,
            id__lte=settlement.to_line_id,
        )
        .filter(~Q(kind=EntryKind.SETTLEMENT))
        .order_by("id")
    )
