"""The settlement and settlement-run status tables, written from docs/settlements.md and the API
contract (not from the code), so that the test can disagree with the code."""

import pytest

from commissions.settlements.status import RUN_MOVES, SETTLEMENT_MOVES, run_may, settlement_move
from livecommerce.errors import AppError

EXPECTED_SETTLEMENT_MOVES = {
    # action: (from, to, staff)
    "mark_paid": ({"pending"}, "paid", ("finance",)),
    "mark_failed": ({"pending"}, "failed", ("finance",)),
}

EXPECTED_RUN_MOVES = {
    "request": ({"failed", "running", "queued"}, "queued", ("finance",)),
    "begin": ({"queued", "running", "failed"}, "running", ()),
    "finish": ({"running"}, "completed", ()),
    "fail": ({"queued", "running"}, "failed", ()),
}


@pytest.mark.parametrize(
    ("table", "expected"),
    [(SETTLEMENT_MOVES, EXPECTED_SETTLEMENT_MOVES), (RUN_MOVES, EXPECTED_RUN_MOVES)],
)
def test_the_tables_are_the_documented_ones(table, expected):
    assert {
        action: (set(move.sources), move.target, tuple(move.staff))
        for action, move in table.items()
    } == expected
    assert all(move.partners == () for move in table.values())  # no partner moves money


@pytest.mark.parametrize("status", ["paid", "failed"])
@pytest.mark.parametrize("action", ["mark_paid", "mark_failed"])
def test_only_a_pending_settlement_with_its_entry_moves(action, status):
    with pytest.raises(AppError) as raised:
        settlement_move(action, status=status, posted=True)
    assert raised.value.code == "settlement_not_pending"
    with pytest.raises(AppError):
        settlement_move(action, status="pending", posted=False)  # a crashed run's, not shown
    assert settlement_move(action, status="pending", posted=True).target in {"paid", "failed"}


def test_a_completed_run_is_left_as_it_is():
    assert not any(run_may(action, "completed") for action in RUN_MOVES)
