"""The task that executes one settlement run (named ``commissions.tasks.settlement_run``).

It lives here, beside the services that queue it (``scheduling``), and imports only the run's
execution, so that queuing a run needs no import at call time. ``commissions.tasks`` imports it,
which is how the worker registers it.
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from commissions.settlements.models import SettlementRunStatus
from commissions.settlements.runs import settlement_run_execute


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
