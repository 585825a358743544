"""Executing a settlement run: watermark, settlement rows, ledger entries and events, each step
idempotent and recorded on the run (see ``commissions.settlements``)."""

import logging
from time import monotonic

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone

from commissions.choices import AccountPurpose, EntryKind
from commissions.ledger.posting import NewEntry, Posting, ledger_post_many
from commissions.models import LedgerEntry
from commissions.settlements import portable, sql
from commissions.settlements.locks import RunLock
from commissions.settlements.models import (
    Settlement,
    SettlementRun,
    SettlementRunStatus,
)
from commissions.settlements.payloads import settlement_data
from commissions.settlements.periods import run_schedules
from commissions.settlements.status import RUN_MOVES, run_may
from partners.events import event_publish_many

logger = logging.getLogger(__name__)

P = AccountPurpose

# Settlements whose entries are posted in one transaction (``SETTLEMENT_POST_BATCH`` overrides):
# a crash loses at most one batch's work, which the next attempt does again.
POST_BATCH = 1000


def settlement_run_execute(*, run_id: str) -> SettlementRun:
    """Execute a run from wherever it stopped; a completed run is left as it is.

    Called by the ``commissions.tasks.settlement_run`` task and by ``run_settlements``. Any
    error marks the run ``failed`` (with the error) and is raised again; running it again
    finishes it without paying anyone twice or skipping anyone.
    """
    if connection.vendor not in ("postgresql", "sqlite"):
        raise RuntimeError(f"Settlement runs need PostgreSQL or SQLite, not {connection.vendor}.")
    with RunLock(run_id) as acquired:
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
    if run_may("begin", run.status):
        run.status = RUN_MOVES["begin"].target
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
    database's one write lock does the same (see ``commissions.settlements.portable``).
    """
    sqlite = connection.vendor == "sqlite"
    if sqlite:
        portable.hold_write_lock(run.pk)
    locked = SettlementRun.objects.select_for_update().get(pk=run.pk)
    if locked.watermark_line_id is None and sqlite:
        locked.watermark_line_id = portable.watermark()
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
        portable.hold_write_lock(run.pk)
    locked = SettlementRun.objects.select_for_update().get(pk=run.pk)
    if locked.prepared:
        run.prepared = True
        return
    settled, below_minimum, non_positive = sql.settlements_write(
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
    run.status = RUN_MOVES["finish"].target
    run.finished = timezone.now()
    run.save(update_fields=["settlement_count", "line_count", "net_payout", "status", "finished"])
    return run


def _run_fail(run: SettlementRun, exc: BaseException) -> None:
    logger.exception("settlement run %s failed", run.pk)
    try:
        SettlementRun.objects.filter(pk=run.pk, status__in=RUN_MOVES["fail"].sources).update(
            status=RUN_MOVES["fail"].target, error=f"{type(exc).__name__}: {exc}"[:1000]
        )
    except Exception:  # the database itself may be what failed; the run stays "running"
        logger.exception("could not record the failure of settlement run %s", run.pk)
