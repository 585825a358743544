"""Celery tasks of the commissions app (names are fixed: beat schedules them by name)."""

from datetime import date

from celery import shared_task
from django.db import InterfaceError, OperationalError

from commissions.reports.reconciliation import reconciliation_run
from commissions.settlements.models import SettlementRunStatus
from commissions.settlements.runs import settlement_run_execute
from commissions.settlements.scheduling import settlement_runs_schedule


@shared_task(name="commissions.tasks.reconcile_ledger")
def reconcile_ledger(day: str | None = None) -> dict[str, int]:
    """Reconcile the ledger with orders and settlements for one UTC day (yesterday by default).

    Any difference is logged as an error and published as a staff-only
    ``reconciliation.mismatch`` event. Read-only otherwise, and safe to run twice.
    """
    return reconciliation_run(day=date.fromisoformat(day) if day else None)


@shared_task(
    name="commissions.tasks.settlement_run",
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
)
def settlement_run(self, run_id: str) -> str:
    """Execute one settlement run (``settlements`` queue), from wherever it stopped.

    Safe to run twice or concurrently: a run is executed by one worker at a time and each step
    is idempotent; a lost connection is retried with backoff, any other error leaves the run
    ``failed`` until it is started again. A run whose lock another session still holds is tried
    again later rather than left: when a pool process dies mid-run its task comes straight back
    (``reject_on_worker_lost``), often before PostgreSQL has ended the dead process's session and
    released the lock, and walking away then left the run ``running`` until the next day's
    schedule (tests/system/test_worker_killed.py).
    """
    run = settlement_run_execute(run_id=run_id)
    if run.status in (SettlementRunStatus.QUEUED, SettlementRunStatus.RUNNING):
        raise self.retry(countdown=min(2 * 2**self.request.retries, 300), max_retries=12)
    return run.status


@shared_task(name="commissions.tasks.settlement_run_scheduled")
def settlement_run_scheduled(period_end: str | None = None) -> list[str]:
    """Beat's daily run (02:00 UTC): settle each currency up to the end of yesterday.

    Only the payees whose payout schedule is due are settled (weekly: periods ending on a
    Sunday; monthly: on a month's last day). Returns the run ids.
    """
    runs = settlement_runs_schedule(
        period_end=date.fromisoformat(period_end) if period_end else None
    )
    return [run.pk for run in runs]
