"""Races between what changes a payee's debt and what decides from it, on PostgreSQL with real
threads (each on its own connection, real row locks): no payout leaves while its payee owes."""

import time
from unittest import mock

import pytest
from django.db import connections
from django.db.models import Sum

from commissions import debts as debts_module
from commissions.choices import AccountPurpose, AdjustmentKind, EntryKind
from commissions.debts import adjustment_create
from commissions.models import LedgerLine, Settlement
from commissions.settlements import payouts as payouts_module
from commissions.settlements.models import SettlementStatus
from commissions.settlements.payouts import settlement_mark_failed, settlement_mark_paid
from livecommerce.errors import AppError
from tests import factories, flows
from tests.orders.test_concurrency import race
from tests.settlements.conftest import Parties, date_ago, day, run_settlements

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 6


def _parties() -> Parties:
    fulfillment = factories.FulfillmentFactory()
    return Parties(
        host_app=factories.HostAppFactory(),
        fulfillment=fulfillment,
        brand=factories.BrandFactory(fulfillment_partner=fulfillment),
        creator=factories.CreatorFactory(),
    )


def _available_before(partner, line_id: int) -> int:
    """The payee's available balance over its lines posted before ``line_id`` (ids are taken in
    posting order: what a decision made just before that line could have read)."""
    totals = LedgerLine.objects.filter(
        partner=partner, purpose=AccountPurpose.PARTNER_AVAILABLE, pk__lt=line_id
    ).aggregate(credits=Sum("credit"), debits=Sum("debit"))
    return (totals["credits"] or 0) - (totals["debits"] or 0)


def test_a_refund_racing_with_mark_paid_never_lets_a_payout_leave_while_the_payee_owes(plan):
    # given, per round, a creator whose 5.00 share of a released order is settled (pending) and
    # nothing else available: a full refund of that order makes it owe 5.00
    rounds = []
    for _ in range(ROUNDS):
        parties = _parties()
        order = flows.sell(parties, items=((10000, 1),), at=day(8), released_at=day(7))
        rounds.append((parties, order))
    run_settlements(date_ago(7))

    # mark-paid reads the balance, then waits a little before posting the payout: without the
    # account lock, a refund committing in that window would be paid over
    real_balance = payouts_module.available_balance

    def slow_balance(**kwargs):
        balance = real_balance(**kwargs)
        time.sleep(0.2)
        return balance

    outcomes = []
    with mock.patch.object(payouts_module, "available_balance", slow_balance):
        for index, (parties, order) in enumerate(rounds):
            settlement = Settlement.objects.get(partner=parties.creator)
            assert settlement.net_payout == 500
            line = order.lines.get()

            def mark_paid(settlement=settlement, index=index):
                if index % 2:
                    time.sleep(0.05)  # every other round, the refund tends to go first
                try:
                    settlement_mark_paid(settlement=settlement, payout_reference=f"wire-{index}")
                except AppError as exc:
                    return exc.code
                return "paid"

            def refund(order=order, line=line, index=index):
                if not index % 2:
                    time.sleep(0.05)  # every other round, mark-paid tends to go first
                return flows.refund(order, units={line: 1}).pk

            outcome, _ = race(mark_paid, refund)
            outcomes.append(outcome)

            # then whatever the order, the refund made the payee owe 5.00
            assert flows.available(parties.creator) == -500
            settlement.refresh_from_db()
            refund_line = LedgerLine.objects.get(
                partner=parties.creator,
                kind=EntryKind.REFUND,
                purpose=AccountPurpose.PARTNER_AVAILABLE,
            )
            if outcome == "paid":
                # mark-paid won: the payout was posted before the refund, while nothing was owed
                assert settlement.status == SettlementStatus.PAID
                payout_line = LedgerLine.objects.get(
                    partner=parties.creator,
                    kind=EntryKind.PAYOUT,
                    purpose=AccountPurpose.PARTNER_PAID_OUT,
                )
                assert payout_line.pk < refund_line.pk
                assert _available_before(parties.creator, payout_line.pk) >= 0
                assert flows.paid_out(parties.creator) == 500
            else:
                # the refund won: mark-paid saw the debt and refused, nothing was paid out
                assert outcome == "payee_owes"
                assert settlement.status == SettlementStatus.PENDING
                assert flows.paid_out(parties.creator) == 0
                assert flows.in_payout(parties.creator) == 500
    connections.close_all()
    # both orders happened (the sleeps make each likely; the invariant holds either way)
    assert set(outcomes) <= {"paid", "payee_owes"}


def test_a_failed_payout_racing_with_a_write_off_never_lets_it_absorb_more_than_owed(plan):
    # given, per round, a creator settled 15.00 (pending) that then owes 10.00 (a refund)
    rounds = []
    for _ in range(ROUNDS // 2):
        parties = _parties()
        flows.sell(parties, items=((10000, 1),), at=day(8), released_at=day(7))
        other = flows.sell(parties, items=((20000, 1),), at=day(8), released_at=day(7))
        rounds.append((parties, other))
    run_settlements(date_ago(7))
    for parties, other in rounds:
        flows.refund(other, units={other.lines.get(): 1})
        assert flows.available(parties.creator) == -1000

    # the write-off reads the debt, then waits a little before posting: without the account
    # lock, the failed payout's credit committing in that window would be written off too
    real_balance = debts_module.available_balance

    def slow_balance(**kwargs):
        balance = real_balance(**kwargs)
        time.sleep(0.2)
        return balance

    outcomes = []
    with mock.patch.object(debts_module, "available_balance", slow_balance):
        for index, (parties, _) in enumerate(rounds):
            settlement = Settlement.objects.get(partner=parties.creator)
            assert settlement.net_payout == 1500

            def write_off(parties=parties, index=index):
                if index % 2:
                    time.sleep(0.05)
                try:
                    adjustment_create(
                        partner=parties.creator,
                        currency="USD",
                        amount=1000,
                        kind=AdjustmentKind.WRITE_OFF,
                        reason="race",
                        actor=None,
                    )
                except AppError as exc:
                    return exc.code
                return "written_off"

            def mark_failed(settlement=settlement, index=index):
                if not index % 2:
                    time.sleep(0.05)
                return settlement_mark_failed(settlement=settlement, reason="R01").status

            outcome, failed = race(write_off, mark_failed)
            outcomes.append(outcome)

            assert failed == SettlementStatus.FAILED
            if outcome == "written_off":
                # the write-off came first, when the payee owed the 10.00 it absorbed
                line = LedgerLine.objects.get(
                    partner=parties.creator,
                    kind=EntryKind.ADJUSTMENT,
                    purpose=AccountPurpose.PARTNER_AVAILABLE,
                )
                assert _available_before(parties.creator, line.pk) == -1000
                assert flows.available(parties.creator) == 1500
            else:
                # the failed payout's credit came first: 5.00 available, nothing to write off
                assert outcome == "adjustment_exceeds_owed"
                assert flows.available(parties.creator) == 500
    connections.close_all()
