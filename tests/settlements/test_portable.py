"""The SQLite path of settlement runs computes what PostgreSQL's statement computes.

``commissions.settlements.sql`` is one text of the figures with two endings: the rows selected
(SQLite's path, ``payee_figures``) or inserted in the same statement (PostgreSQL's). Here, on
PostgreSQL, each run's payees are computed with the selecting ending first (read-only) and then
the run executes for real with the inserting one: every settlement written (range, figures, line
count) and every payee left out (below its minimum, nothing positive) must be what the selecting
path says. The embedded default running it on SQLite end to end is
tests/test_embedded_default.py.
"""

import os
import signal
import subprocess
import sys

import time_machine

from commissions.models import Settlement
from commissions.settlements import portable, sql
from commissions.settlements.models import SettlementRunTrigger
from commissions.settlements.payouts import settlement_mark_failed, settlement_mark_paid
from commissions.settlements.periods import run_schedules
from commissions.settlements.runs import settlement_run_execute
from commissions.settlements.scheduling import settlement_run_request
from partners.choices import PartnerStatus, PayoutSchedule
from tests import factories, flows
from tests.settlements.conftest import Parties, date_ago, day

FIGURES = (
    "partner_id",
    "account_id",
    "after_line_id",
    "to_line_id",
    "gross",
    "platform_commission",
    "creator_commission",
    "fulfillment_fees",
    "refunds",
    "adjustments",
    "line_count",
)


def _written(settlement: Settlement) -> tuple:
    return (*(getattr(settlement, name) for name in FIGURES), settlement.net_payout)


def _computed(payee: sql.PayeeFigures) -> tuple:
    return (*(getattr(payee, name) for name in FIGURES), payee.net)


def settle_both_ways(period_end, *, scheduled: bool = False):
    """The portable figures of the run, then the run on PostgreSQL; both must agree."""
    trigger = SettlementRunTrigger.SCHEDULE if scheduled else SettlementRunTrigger.REQUEST
    run, _ = settlement_run_request(period_end=period_end, currency="USD", trigger=trigger)
    # What the run fixes first (nothing is posting here, so MAX(id) is the watermark).
    run.watermark_line_id = portable.watermark()
    run.save(update_fields=["watermark_line_id"])
    payees = sql.payee_figures(run=run, schedules=run_schedules(run))

    run = settlement_run_execute(run_id=run.pk)

    assert run.status == "completed"
    written = sorted(_written(s) for s in Settlement.objects.filter(run=run))
    assert written == sorted(_computed(p) for p in payees if p.settles)
    assert run.below_minimum_count == sum(1 for p in payees if 0 < p.net < p.minimum)
    assert run.non_positive_count == sum(1 for p in payees if p.net <= 0)
    return run, payees


def test_the_portable_figures_equal_postgresqls_run_after_run(parties):
    second_brand = factories.BrandFactory(fulfillment_partner=parties.fulfillment)
    other = Parties(parties.host_app, parties.fulfillment, second_brand, parties.creator)

    # run 1: two brands' orders, one partly refunded before release, shipping to the fulfiller
    first = flows.sell(parties, items=((1999, 2), (500, 3)), shipping=700, at=day(14))
    flows.refund(first, units={first.lines.get(position=0): 1}, at=day(14, hour=15))
    flows.complete(first, at=day(13))
    flows.sell(other, items=((12345, 1),), at=day(14), released_at=day(13))
    flows.sell(parties, items=((777, 1),), at=day(12), released_at=day(11))  # a later period
    flows.sell(parties, currency="JPY", items=((3000, 1),), at=day(14), released_at=day(13))
    run, payees = settle_both_ways(date_ago(12))
    assert {p.partner_id for p in payees if p.settles} == {
        parties.brand.pk,
        second_brand.pk,
        parties.creator.pk,
        parties.fulfillment.pk,
    }
    brand = Settlement.objects.get(run=run, partner=parties.brand)
    assert brand.gross == 1999 * 2 + 500 * 3 and brand.refunds == 1999

    # run 2: a refund after settlement (negative balances), a failed payout returned to the
    # creator (an adjustment), the second brand under a minimum it has not reached
    for settlement in Settlement.objects.filter(run=run).exclude(partner=parties.creator):
        settlement_mark_paid(settlement=settlement, payout_reference="wire")
    # Within run 2's period: a period never covers a line stamped after it (the range ends
    # before the account's first line of a later day).
    with time_machine.travel(day(10, hour=9), tick=True):
        settlement_mark_failed(
            settlement=Settlement.objects.get(run=run, partner=parties.creator), reason="R02"
        )
    flows.refund(first, units={first.lines.get(position=1): 2}, at=day(10))
    second_brand.minimum_payout = {"USD": 1_000_000}
    second_brand.save()
    flows.sell(other, items=((2000, 1),), at=day(10), released_at=day(9))
    run, payees = settle_both_ways(date_ago(9))
    assert run.non_positive_count >= 1  # the brand gave back more than it earned since
    assert run.below_minimum_count == 1
    creator = Settlement.objects.get(run=run, partner=parties.creator)
    assert creator.adjustments > 0 and creator.after_line_id > 0

    # run 3, the schedule's: a weekly creator (paid on Sundays only), a suspended fulfiller,
    # and the brand's negative balance netted off by a new sale
    parties.creator.payout_schedule = PayoutSchedule.WEEKLY
    parties.creator.save()
    parties.fulfillment.status = PartnerStatus.SUSPENDED
    parties.fulfillment.save()
    flows.sell(parties, items=((40000, 1),), at=day(8), released_at=day(7))
    run, payees = settle_both_ways(date_ago(6), scheduled=True)
    assert parties.fulfillment.pk not in {p.partner_id for p in payees}
    netted = Settlement.objects.get(run=run, partner=parties.brand)
    assert netted.refunds >= 1000 and netted.gross >= 40000

    # run 4, finance's: everyone active, whatever is left
    parties.fulfillment.status = PartnerStatus.ACTIVE
    parties.fulfillment.save()
    second_brand.minimum_payout = {}
    second_brand.save()
    run, payees = settle_both_ways(date_ago(1))
    assert run.settlement_count >= 2


def test_a_run_file_lock_is_held_by_one_holder_until_released():
    first = portable.RunFileLock("settlement_run:run_test_lock")
    second = portable.RunFileLock("settlement_run:run_test_lock")
    elsewhere = portable.RunFileLock("settlement_run:run_other")

    assert first.acquire() is True
    try:
        assert second.acquire() is False
        assert elsewhere.acquire() is True
    finally:
        first.release()
        elsewhere.release()
    assert second.acquire() is True
    second.release()


def test_a_run_file_lock_dies_with_the_process_holding_it(tmp_path):
    lock = portable.RunFileLock(f"settlement_run:run_{os.getpid()}_dies")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'a+b'); fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True); time.sleep(120)",
            str(lock.path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert lock.acquire() is False  # a worker is executing the run

        holder.send_signal(signal.SIGKILL)  # ... and dies in the middle of it
        holder.wait(timeout=10)

        assert lock.acquire() is True
    finally:
        lock.release()
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
