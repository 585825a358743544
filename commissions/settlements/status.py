"""The status tables of settlements and settlement runs: which action moves one from where, by whom.

The services call :func:`settlement_move` / :func:`run_move` with the row locked, and the views
build their permissions from the same tables, as ``orders.status`` does for orders.

Settlements (each move posts a ledger entry and publishes an event to the payee):

===========  ========  ======  =======
action       from      to      by
===========  ========  ======  =======
mark_paid    pending   paid    finance
mark_failed  pending   failed  finance
===========  ========  ======  =======

A settlement whose ledger entry a crashed run has not posted yet is not pending: no move applies
to it (and the API does not show it).

Settlement runs (``commissions.settlements.scheduling`` and ``commissions.settlements.runs``):

========  ===============================================  =========  ===================
action    from                                             to         by
========  ===============================================  =========  ===================
request   failed; running, once no worker executes it;    queued     finance (and the
          queued, once its task is overdue (schedule)                 daily schedule)
begin     queued, running, failed                          running    the service
finish    running                                          completed  the service
fail      queued, running                                  failed     the service
========  ===============================================  =========  ===================

A run is created ``queued`` (one per period, currency and trigger); a completed run is left as
it is by every action.
"""

from commissions.settlements.models import SettlementRunStatus, SettlementStatus
from livecommerce.errors import AppError
from orders.status import Move
from partners.choices import StaffRole

SETTLEMENT_MOVES: dict[str, Move] = {
    "mark_paid": Move(
        frozenset({SettlementStatus.PENDING}), SettlementStatus.PAID, staff=(StaffRole.FINANCE,)
    ),
    "mark_failed": Move(
        frozenset({SettlementStatus.PENDING}), SettlementStatus.FAILED, staff=(StaffRole.FINANCE,)
    ),
}

RUN_MOVES: dict[str, Move] = {
    "request": Move(
        frozenset(
            {SettlementRunStatus.FAILED, SettlementRunStatus.RUNNING, SettlementRunStatus.QUEUED}
        ),
        SettlementRunStatus.QUEUED,
        staff=(StaffRole.FINANCE,),
    ),
    "begin": Move(
        frozenset(
            {SettlementRunStatus.QUEUED, SettlementRunStatus.RUNNING, SettlementRunStatus.FAILED}
        ),
        SettlementRunStatus.RUNNING,
    ),
    "finish": Move(frozenset({SettlementRunStatus.RUNNING}), SettlementRunStatus.COMPLETED),
    "fail": Move(
        frozenset({SettlementRunStatus.QUEUED, SettlementRunStatus.RUNNING}),
        SettlementRunStatus.FAILED,
    ),
}

# The statuses of a run that is not finished: what the daily schedule looks at again.
RUN_UNFINISHED = RUN_MOVES["request"].sources


def settlement_move(action: str, *, status: str, posted: bool) -> Move:
    """The move ``action`` makes on a settlement, or 409 ``settlement_not_pending``.

    ``posted``: the settlement's ledger entry exists (a settlement without one is not pending).
    """
    move = SETTLEMENT_MOVES[action]
    if not posted or status not in move.sources:
        raise AppError("settlement_not_pending")
    return move


def run_may(action: str, status: str) -> bool:
    """Whether ``action`` applies to a run in ``status`` (the table's "from" column)."""
    return status in RUN_MOVES[action].sources
