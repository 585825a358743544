"""Settlement runs on a REAL Celery worker with Redis, started the way beat starts them.

The worker is a subprocess (``celery -A livecommerce worker -Q default,webhooks,settlements``)
on this test's Redis database and the PostgreSQL test database; the test sends
``commissions.tasks.settlement_run_scheduled`` by name with no arguments, as beat does at
02:00, and watches the database.
"""

import time
from datetime import timedelta

import pytest
from django.db import connection

from commissions.choices import EntryKind
from commissions.models import LedgerEntry, Settlement, SettlementRun
from partners.choices import PayoutSchedule
from partners.models import Event
from tests import factories, flows
from tests.settlements.conftest import Parties, date_ago, day, run_settlements, send_task
from tests.settlements.test_runs import CRASH_AFTER_TWO_SETTLEMENTS

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

SCHEDULED_TASK = "commissions.tasks.settlement_run_scheduled"


def wait_for(condition, timeout: float = 60, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message}")


def completed_run():
    return SettlementRun.objects.filter(
        period_end=date_ago(1), currency="USD", status="completed"
    ).first()


def payees_with_money(parties: Parties, brands: int) -> list:
    """``brands`` brands (plus the fulfiller and the creator) with sales released yesterday."""
    all_brands = [parties.brand] + [
        factories.BrandFactory(fulfillment_partner=parties.fulfillment) for _ in range(brands - 1)
    ]
    for brand in all_brands:
        flows.sell(
            Parties(parties.host_app, parties.fulfillment, brand, parties.creator),
            items=((4200, 1),),
            at=day(1, hour=1),
            released_at=day(1, hour=2),
        )
    return [*all_brands, parties.fulfillment, parties.creator]


def broker_idle(broker) -> bool:
    """No task waiting in a queue, none taken and not yet acknowledged (tasks ack late)."""
    queued = sum(broker.llen(queue) for queue in ("default", "webhooks", "settlements"))
    return queued == 0 and broker.hlen("unacked") == 0


def stays_idle(broker, checks: int = 3) -> bool:
    for _ in range(checks):
        time.sleep(0.1)
        if not broker_idle(broker):
            return False
    return True


def test_the_daily_run_settles_everyone_on_a_real_worker(parties, broker, celery_worker):
    payees = payees_with_money(parties, brands=2)
    owed = {p.pk: flows.available(p) for p in payees}

    send_task(SCHEDULED_TASK)

    run = wait_for(completed_run, message="the scheduled run to complete")
    assert run.trigger == "schedule"
    assert run.settlement_count == len(payees)
    for payee in payees:
        settlement = Settlement.objects.get(partner=payee)
        assert settlement.net_payout == owed[payee.pk]
        assert flows.available(payee) == 0
        assert Event.objects.filter(type="settlement.created", object_id=settlement.pk).exists()
    # beat firing again the same day changes nothing
    send_task(SCHEDULED_TASK)
    send_task("commissions.tasks.settlement_run", run_id=run.pk)
    wait_for(
        lambda: broker_idle(broker) and stays_idle(broker),
        message="the worker to have done both tasks",
    )
    assert Settlement.objects.count() == len(payees)
    assert LedgerEntry.objects.filter(kind=EntryKind.SETTLEMENT).count() == len(payees)


SLOW_SETTLEMENT_ENTRIES = """
CREATE OR REPLACE FUNCTION test_slow_settlement() RETURNS trigger AS $$
BEGIN
    IF NEW.kind = 'settlement' THEN
        PERFORM pg_sleep(0.4);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER test_slow_settlement BEFORE INSERT ON commissions_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION test_slow_settlement();
"""
DROP_SLOW = """
DROP TRIGGER IF EXISTS test_slow_settlement ON commissions_ledgerentry;
DROP FUNCTION IF EXISTS test_slow_settlement();
"""


def has_advisory_locks() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        )
        return bool(cursor.fetchone()[0])


def settled_entries() -> int:
    return LedgerEntry.objects.filter(kind=EntryKind.SETTLEMENT).count()


def test_a_worker_killed_in_the_middle_of_a_run_and_the_run_started_again_pays_everyone_once(
    parties, worker_factory
):
    payees = payees_with_money(parties, brands=6)
    owed = {p.pk: flows.available(p) for p in payees}
    with connection.cursor() as cursor:
        cursor.execute(SLOW_SETTLEMENT_ENTRIES)  # each settlement entry takes a moment
    try:
        first = worker_factory("tests.settlements.worker_settings")  # one payee per transaction
        send_task(SCHEDULED_TASK)
        wait_for(lambda: settled_entries() >= 2, message="the run to be under way")

        first.kill()  # SIGKILL in the middle of the run

        run = SettlementRun.objects.get()
        assert run.status == "running"
        assert 2 <= settled_entries() < len(payees)
        # PostgreSQL ends the dead worker's session: its transaction and run lock go with it
        wait_for(lambda: not has_advisory_locks(), message="the dead worker's session to end")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(DROP_SLOW)

    # beat (or an operator) starts the period again; a new worker finishes the run
    worker_factory()
    send_task(SCHEDULED_TASK)
    run = wait_for(completed_run, message="the run to be finished")

    assert run.attempts == 2
    assert run.settlement_count == len(payees)
    assert settled_entries() == len(payees)
    for payee in payees:
        settlement = Settlement.objects.get(partner=payee)
        assert settlement.net_payout == owed[payee.pk]
        assert settlement.entry_id is not None
        assert flows.available(payee) == 0
        assert flows.in_payout(payee) == owed[payee.pk]
        events = Event.objects.filter(type="settlement.created", object_id=settlement.pk)
        assert events.count() == 1


# --- Catch-up: failed runs and missed periods ---------------------------------------------------


def _run_of(period_end, status: str = "completed"):
    return SettlementRun.objects.filter(
        period_end=period_end, currency="USD", trigger="schedule", status=status
    ).first()


def test_a_run_that_failed_mid_way_is_completed_by_the_next_scheduled_run(parties, worker_factory):
    # given money released two days ago, and a database that refuses the third settlement entry
    payees = payees_with_money(parties, brands=3)
    owed = {p.pk: flows.available(p) for p in payees}
    worker_factory("tests.settlements.worker_settings")  # one payee per transaction
    with connection.cursor() as cursor:
        cursor.execute(CRASH_AFTER_TWO_SETTLEMENTS)
    try:
        # when the schedule's run for yesterday fails part way on the worker
        send_task(SCHEDULED_TASK, period_end=date_ago(1).isoformat())
        failed = wait_for(lambda: _run_of(date_ago(1), "failed"), message="the run to fail")
        assert "worker lost" in failed.error
        assert settled_entries() == 2
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_crash_third_settlement ON commissions_ledgerentry")
            cursor.execute("DROP FUNCTION test_crash_third_settlement()")

    # then the next scheduled run (today's period, as beat sends it tomorrow) completes it
    send_task(SCHEDULED_TASK, period_end=date_ago(0).isoformat())
    run = wait_for(lambda: _run_of(date_ago(1)), message="the failed run to be completed")

    assert run.pk == failed.pk and run.attempts == 2
    assert run.settlement_count == len(payees)
    assert wait_for(lambda: _run_of(date_ago(0)), message="today's run").settlement_count == 0
    for payee in payees:
        settlement = Settlement.objects.get(partner=payee)
        assert settlement.net_payout == owed[payee.pk]
        assert flows.available(payee) == 0
        assert flows.in_payout(payee) == owed[payee.pk]


def test_a_missed_scheduled_period_catches_up_on_a_real_worker(parties, celery_worker):
    # given the schedule last ran four days ago, then beat was down for three nights
    run_settlements(date_ago(4), scheduled=True)
    parties.creator.payout_schedule = PayoutSchedule.MONTHLY
    parties.creator.save()
    flows.sell(parties, items=((10000, 1),), at=day(4), released_at=day(3))

    # when beat sends the daily task again (yesterday's period, by the database's clock)
    send_task(SCHEDULED_TASK)

    # then the periods that never ran ran too, oldest first, each settling its own days
    for days_ago in (3, 2, 1):
        wait_for(lambda d=days_ago: _run_of(date_ago(d)), message=f"the run of {days_ago} ago")
    brand = Settlement.objects.get(partner=parties.brand)
    assert brand.run == _run_of(date_ago(3))
    assert flows.available(parties.brand) == 0 and flows.available(parties.fulfillment) == 0
    # the monthly creator was settled only if a month ended in the missed days
    month_ended = any((date_ago(d) + timedelta(days=1)).day == 1 for d in (3, 2, 1))
    assert (flows.available(parties.creator) == 0) == month_ended
