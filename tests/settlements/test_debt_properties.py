"""Property-based: sales, releases, settlement runs (some crashing mid-way), payouts marked paid
or failed, refunds at any point and adjustments, in any order, keep every payee's money exact.

After every step, for every payee (brand, creator, fulfillment partner):
- ``pending + available + in_payout + paid_out`` = everything earned - refunds + adjustments
  (earned and refunded read from the sale and refund entries, adjustments from the adjustment
  records);
- no payout is marked paid while its payee owes (``mark-paid`` answers ``payee_owes`` exactly
  when the payee's available balance is negative; reconciliation finds no payout made while
  owed);
- no ledger line is settled twice (each account's settlements' ranges follow each other and
  each settlement's net is what its range nets to);
- after a run completes, no line it could settle is left unsettled unless what is left nets to
  zero or less (the payee owes, or has nothing);
and at the end the statement's closing equals the balances as of its end, and every line's
balance the balances as of that line.

Time is simulated: each step happens a few hours after the last (ledger lines are stamped
then), runs settle up to the end of the simulated yesterday through the schedule (which also
completes the runs that crashed and the periods that never ran), or up to the simulated today
by hand. Each example runs in a transaction rolled back at its end.
"""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from commissions.choices import AccountPurpose as P
from commissions.choices import AdjustmentKind, EntryKind
from commissions.days import day_end, day_start
from commissions.debts import adjustment_create, statement_build
from commissions.models import Adjustment, LedgerLine, Settlement
from commissions.reports.reconciliation import reconciliation_report
from commissions.selectors import available_balance, partner_balances
from commissions.settlements.models import SettlementRun, SettlementRunStatus, SettlementStatus
from commissions.settlements.payouts import settlement_mark_failed, settlement_mark_paid
from commissions.settlements.runs import settlement_run_execute
from commissions.settlements.scheduling import settlement_run_request, settlement_runs_for_schedule
from livecommerce.errors import AppError
from tests import factories, flows

pytestmark = pytest.mark.django_db

CRASH_TRIGGER = """
CREATE OR REPLACE FUNCTION test_crash_at_settlement() RETURNS trigger AS $$
BEGIN
    IF NEW.kind = 'settlement'
       AND NULLIF(current_setting('test.crash_at', true), '') IS NOT NULL
       AND (SELECT count(*) FROM commissions_ledgerentry WHERE kind = 'settlement')
           >= current_setting('test.crash_at')::int THEN
        RAISE EXCEPTION 'worker lost in the middle of the run';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS test_crash_at_settlement ON commissions_ledgerentry;
CREATE TRIGGER test_crash_at_settlement BEFORE INSERT ON commissions_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION test_crash_at_settlement();
"""

sell = st.tuples(st.just("sell"), st.integers(1, 50_000), st.booleans())
complete = st.tuples(st.just("complete"), st.integers(0, 20))
refund = st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 100))
# settle: by the schedule or by hand; crash after this many settlement entries (or not)
settle = st.tuples(st.just("settle"), st.booleans(), st.one_of(st.none(), st.integers(0, 2)))
mark_paid = st.tuples(st.just("mark_paid"), st.integers(0, 20))
mark_failed = st.tuples(st.just("mark_failed"), st.integers(0, 20))
adjust = st.tuples(
    st.just("adjust"),
    st.sampled_from(list(AdjustmentKind.values)),
    st.integers(0, 2),
    st.integers(1, 150),
)


@st.composite
def plans(draw):
    """Rounds of a business day or so, each in the order money moves: sales, returns windows
    closing, a settlement run, payouts marked, refunds (debts) and adjustments; and now and
    then any step at any point."""
    plan = []
    for _ in range(draw(st.integers(2, 6))):
        plan += draw(st.lists(sell, max_size=2))
        plan += draw(st.lists(complete, max_size=2))
        plan += draw(st.lists(settle, max_size=1))
        plan += draw(st.lists(st.one_of(mark_paid, mark_failed), max_size=2))
        plan += draw(st.lists(refund, max_size=2))
        plan += draw(st.lists(adjust, max_size=1))
        plan += draw(
            st.lists(
                st.one_of(sell, complete, settle, refund, mark_paid, mark_failed, adjust),
                max_size=2,
            )
        )
    return plan


class World:
    """The simulated clock, the parties and what the test did."""

    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - (
            timedelta(days=90)
        )
        self.now = self.start + timedelta(hours=1)
        self.fulfillment = factories.FulfillmentFactory()
        self.brand = factories.BrandFactory(fulfillment_partner=self.fulfillment)
        self.creator = factories.CreatorFactory()
        self.host_app = factories.HostAppFactory()
        self.payees = [self.brand, self.creator, self.fulfillment]
        self.orders = []
        self.completed: set[str] = set()

    def tick(self) -> None:
        self.now += timedelta(hours=7)

    def clock(self):
        return time_machine.travel(self.now, tick=False)


def _sell(world: World, amount: int, with_creator: bool) -> None:
    order = flows.make_order(
        brand=world.brand,
        host_app=world.host_app,
        creator=world.creator if with_creator else None,
        currency=world.currency,
        items=((amount, 1),),
        shipping=amount % 700,
    )
    world.orders.append(flows.pay(order, at=world.now))


def _settle(world: World, by_hand: bool, crash_at: int | None) -> None:
    today = world.now.date()
    if crash_at is not None:
        settled = LedgerLine.objects.filter(kind=EntryKind.SETTLEMENT).values("entry_id")
        count = settled.distinct().count()
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('test.crash_at', %s, true)", [str(count + crash_at)])
    try:
        with world.clock():
            if by_hand:
                run, _ = settlement_run_request(period_end=today, currency=world.currency)
                runs = [run]
            else:
                runs = [
                    run
                    for run, to_execute in settlement_runs_for_schedule(
                        period_end=today - timedelta(days=1), currencies=[world.currency]
                    )
                    if to_execute
                ]
            for run in runs:
                try:
                    settlement_run_execute(run_id=run.pk)
                except Exception as exc:  # the injected crash, and only that
                    assert "worker lost" in str(exc), exc
                    event("a run crashed mid-way")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('test.crash_at', '', true)")
    for run in runs:
        run.refresh_from_db()
        if run.status == SettlementRunStatus.COMPLETED:
            if run.attempts > 1:
                event("a crashed run completed by a later one")
            _check_nothing_left_unsettled(world, run)


def _pending_settlements(world: World):
    return list(
        Settlement.objects.filter(
            currency=world.currency, status=SettlementStatus.PENDING, entry__isnull=False
        ).order_by("id")
    )


def _mark(world: World, which: int, paid: bool) -> None:
    pending = _pending_settlements(world)
    if not pending:
        return
    settlement = pending[which % len(pending)]
    owed_before = available_balance(partner_id=settlement.partner_id, currency=world.currency) < 0
    with world.clock():
        if not paid:
            settlement_mark_failed(settlement=settlement, reason="R02")
            return
        try:
            with transaction.atomic():
                settlement_mark_paid(settlement=settlement, payout_reference="wire")
        except AppError as error:
            assert error.code == "payee_owes" and owed_before
            event("mark-paid refused: payee owes")
            return
    # no payout leaves while its payee owes
    assert not owed_before


def _adjust(world: World, kind: str, which: int, percent: int) -> None:
    partner = world.payees[which]
    owed = max(0, -available_balance(partner_id=partner.pk, currency=world.currency))
    amount = percent * 7 if kind == AdjustmentKind.CREDIT else max(1, owed * percent // 100)
    with world.clock():
        try:
            with transaction.atomic():
                adjustment_create(
                    partner=partner,
                    currency=world.currency,
                    amount=amount,
                    kind=kind,
                    reason="property",
                    actor=None,
                )
        except AppError as error:
            assert error.code == "adjustment_exceeds_owed"
            assert kind != AdjustmentKind.CREDIT and amount > owed
            return
    assert kind == AdjustmentKind.CREDIT or amount <= owed
    if kind != AdjustmentKind.CREDIT:
        event(f"{kind} of a debt")


def _apply(world: World, step: tuple) -> None:
    what = step[0]
    if what == "sell":
        _sell(world, step[1], step[2])
    elif what == "complete":
        # a paid order completes once (one refunded in full never does)
        open_orders = [o for o in world.orders if flows.completable(o)]
        if open_orders:
            order = open_orders[step[1] % len(open_orders)]
            flows.complete(order, at=world.now)
            world.completed.add(order.pk)
    elif what == "refund" and world.orders:
        order = world.orders[step[1] % len(world.orders)]
        order.refresh_from_db()
        left = order.total - order.refunded_amount
        if left:
            flows.refund(order, amount=max(1, left * step[2] // 100), at=world.now)
    elif what == "settle":
        _settle(world, step[1], step[2])
    elif what in ("mark_paid", "mark_failed"):
        _mark(world, step[1], paid=what == "mark_paid")
    elif what == "adjust":
        _adjust(world, step[1], step[2], step[3])


# --- Invariants ---------------------------------------------------------------------------------


def _sum(lines, field: str) -> int:
    return lines.aggregate(s=Sum(field))["s"] or 0


def _check_money_adds_up(world: World) -> None:
    for partner in world.payees:
        lines = LedgerLine.objects.filter(partner=partner, currency=world.currency)
        earned = _sum(lines.filter(kind=EntryKind.SALE), "credit")
        refunded = _sum(lines.filter(kind=EntryKind.REFUND), "debit")
        adjusted = _sum(
            Adjustment.objects.filter(partner=partner, currency=world.currency), "amount"
        )
        (balance,) = [
            row for row in partner_balances(partner=partner) if row["currency"] == world.currency
        ] or [{"pending": 0, "available": 0, "in_payout": 0, "paid_out": 0, "owed": 0}]
        total = balance["pending"] + balance["available"] + balance["in_payout"]
        assert total + balance["paid_out"] == earned - refunded + adjusted, partner.kind
        assert balance["owed"] == max(0, -balance["available"])


def _check_no_line_settled_twice(world: World) -> None:
    for partner in world.payees:
        settlements = list(
            Settlement.objects.filter(partner=partner, currency=world.currency).order_by(
                "after_line_id"
            )
        )
        for before, after in itertools.pairwise(settlements):
            assert after.after_line_id >= before.to_line_id, "two settlements cover one line"
        for settlement in settlements:
            covered = LedgerLine.objects.filter(
                account_id=settlement.account_id,
                id__gt=settlement.after_line_id,
                id__lte=settlement.to_line_id,
            ).exclude(kind=EntryKind.SETTLEMENT)
            assert _sum(covered, "credit") - _sum(covered, "debit") == settlement.net_payout


def _check_nothing_left_unsettled(world: World, run: SettlementRun) -> None:
    """After a completed run: what it could settle of each due payee is settled, unless what
    is left nets to zero or less (a payee that owes waits for new earnings)."""
    for partner in world.payees:
        last = (
            Settlement.objects.filter(partner=partner, currency=world.currency)
            .order_by("-to_line_id")
            .values_list("to_line_id", flat=True)
            .first()
            or 0
        )
        left = LedgerLine.objects.filter(
            partner=partner,
            currency=world.currency,
            purpose=P.PARTNER_AVAILABLE,
            id__gt=last,
            id__lte=run.watermark_line_id,
            created__lt=day_end(run.period_end),
        ).exclude(kind=EntryKind.SETTLEMENT)
        assert _sum(left, "credit") - _sum(left, "debit") <= 0, (partner.kind, run.trigger)


def _check_no_payout_while_owed(world: World) -> None:
    report = reconciliation_report(
        currency=world.currency, date_from=world.start.date(), date_to=world.now.date()
    )
    assert not [d for d in report.differences if d.check == "payout_while_owed"]
    assert not [d for d in report.differences if d.check.startswith("settlement_payout")]


def _held(partner, currency: str, as_of: datetime) -> int:
    rows = [r for r in partner_balances(partner=partner, as_of=as_of) if r["currency"] == currency]
    return sum(rows[0][name] for name in ("pending", "available", "in_payout")) if rows else 0


def _check_statements(world: World) -> None:
    for partner in world.payees:
        statement = statement_build(
            partner=partner,
            currency=world.currency,
            date_from=world.start.date(),
            date_to=world.now.date(),
        )
        end = day_start(world.now.date() + timedelta(days=1)) - timedelta(microseconds=1)
        assert statement.opening == _held(partner, world.currency, world.start)
        assert statement.closing == _held(partner, world.currency, end)
        balance = statement.opening
        for line in statement.lines:
            balance += line["amount"]
            assert line["balance"] == balance
            assert _held(partner, world.currency, line["created"]) == balance


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(currency=st.sampled_from(["USD", "JPY"]), plan=plans())
def test_money_that_comes_back_stays_exact(currency, plan, settings):
    settings.SETTLEMENT_POST_BATCH = 1  # a crash leaves some payees posted, others not
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(CRASH_TRIGGER)
        factories.CommissionPlanFactory(
            effective_from=datetime.now(UTC) - timedelta(days=365), fulfillment_fee_fixed=0
        )
        world = World(currency)
        for step in plan:
            _apply(world, step)
            world.tick()
            _check_money_adds_up(world)
            _check_no_line_settled_twice(world)
        if any(available_balance(partner_id=p.pk, currency=currency) < 0 for p in world.payees):
            event("a payee owes at the end")
        _check_no_payout_while_owed(world)
        _check_statements(world)
        transaction.set_rollback(True)


def test_the_crash_trigger_crashes(settings, db):
    """The fault the property injects is real: a run crashes at the chosen entry."""
    settings.SETTLEMENT_POST_BATCH = 1
    with connection.cursor() as cursor:
        cursor.execute(CRASH_TRIGGER)
        cursor.execute("SELECT set_config('test.crash_at', '0', false)")
    try:
        factories.CommissionPlanFactory(effective_from=datetime.now(UTC) - timedelta(days=365))
        world = World("USD")
        _sell(world, 10_000, True)
        flows.complete(world.orders[0], at=world.now)
        world.now += timedelta(days=2)
        with world.clock():
            run, _ = settlement_run_request(period_end=world.now.date(), currency="USD")
            with pytest.raises(Exception, match="worker lost"):
                settlement_run_execute(run_id=run.pk)
        run.refresh_from_db()
        assert run.status == SettlementRunStatus.FAILED
        assert Settlement.objects.filter(run=run, entry__isnull=True).exists()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('test.crash_at', '', false)")
