"""Starting settlement runs: finance's requests and the daily schedule, which also catches up on
missed periods and queues again the runs that failed or lost their worker."""

from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from commissions.choices import AccountPurpose
from commissions.models import LedgerAccount
from commissions.settlements.locks import run_executing
from commissions.settlements.models import (
    SettlementRun,
    SettlementRunStatus,
    SettlementRunTrigger,
)
from commissions.settlements.periods import check_period, default_period_end
from commissions.settlements.status import RUN_MOVES, RUN_UNFINISHED, run_may
from commissions.settlements.tasks import settlement_run

P = AccountPurpose

# A run still queued this long after it was created has lost its task message; the daily schedule
# queues it again (executing a run twice is harmless).
STALE_RUN_AFTER = timedelta(minutes=30)

# How far back the schedule looks for periods it never ran (a month-end included).
CATCH_UP_DAYS = 62


def _enqueue(run: SettlementRun) -> None:
    """Queue the run's task once the transaction that made it runnable commits."""
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
    check_period(period_end, currency)
    run, created = SettlementRun.objects.get_or_create(
        period_end=period_end, currency=currency, trigger=trigger
    )
    if created:
        _enqueue(run)
        return run, True
    run, queued = _requeue_if_interrupted(run, queued_for=None)
    if queued:
        _enqueue(run)
    return run, queued


def _interrupted(run: SettlementRun, *, queued_for: timedelta | None) -> bool:
    """Whether the run must be queued again to finish: it failed, or its worker died.

    A run ``running`` that no worker is executing lost its worker. A run ``queued`` waits for
    its task, unless it has waited longer than ``queued_for`` (its message was lost). A
    completed run is never interrupted (the table's ``request`` move does not apply to it).
    """
    if not run_may("request", run.status):
        return False
    if run.status == SettlementRunStatus.FAILED:
        return True
    if run.status == SettlementRunStatus.RUNNING:
        return not run_executing(run)
    if run.status == SettlementRunStatus.QUEUED and queued_for is not None:
        return run.created < timezone.now() - queued_for and not run_executing(run)
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
    return _requeue_if_interrupted(run, queued_for=STALE_RUN_AFTER)


def _requeue_if_interrupted(
    run: SettlementRun, *, queued_for: timedelta | None
) -> tuple[SettlementRun, bool]:
    """Lock the run and queue it again (the table's ``request`` move) if it was interrupted."""
    run = SettlementRun.objects.select_for_update().get(pk=run.pk)
    if not _interrupted(run, queued_for=queued_for):
        return run, False
    run.status = RUN_MOVES["request"].target
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
        check_period(period_end, currency)
        for day in [*_periods_to_catch_up(currency=currency, period_end=period_end), period_end]:
            run, to_execute = _schedule_run(period_end=day, currency=currency)
            runs[run.pk] = (run, to_execute)
    unfinished = SettlementRun.objects.filter(
        currency__in=currencies,
        status__in=RUN_UNFINISHED,
    ).exclude(pk__in=list(runs))
    for run in unfinished.order_by("period_end", "created"):
        runs[run.pk] = _requeue_if_interrupted(run, queued_for=STALE_RUN_AFTER)
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
