"""Celery tasks of the commissions app (names are fixed: beat schedules them by name)."""

from datetime import date

from celery import shared_task

from commissions.reconciliation import reconciliation_run


@shared_task(name="commissions.tasks.reconcile_ledger")
def reconcile_ledger(day: str | None = None) -> dict[str, int]:
    """Reconcile the ledger with orders and settlements for one UTC day (yesterday by default).

    Any difference is logged as an error and published as a staff-only
    ``reconciliation.mismatch`` event. Read-only otherwise, and safe to run twice.
    """
    return reconciliation_run(day=date.fromisoformat(day) if day else None)
