"""Celery tasks of the commissions app (names are fixed: beat schedules them by name).

The task that executes one settlement run, ``commissions.tasks.settlement_run``, lives with the
settlement services that queue it (``commissions.settlements.tasks``); it is imported here so
that the worker's autodiscovery of this module registers it.
"""

from datetime import date

from celery import shared_task

from commissions.reports.reconciliation import reconciliation_run
from commissions.settlements.scheduling import settlement_runs_schedule
from commissions.settlements.tasks import settlement_run


@shared_task(name="commissions.tasks.reconcile_ledger")
def reconcile_ledger(day: str | None = None) -> dict[str, int]:
    """Reconcile the ledger with orders and settlements for one UTC day (yesterday by default).

    Any difference is logged as an error and published as a staff-only
    ``reconciliation.mismatch`` event. Read-only otherwise, and safe to run twice.
    """
    return reconciliation_run(day=date.fromisoformat(day) if day else None)


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


__all__ = ["reconcile_ledger", "settlement_run", "settlement_run_scheduled"]
