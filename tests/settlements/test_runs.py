"""Settlement runs against what the ledger really posts (PostgreSQL)."""

import threading
import time
from datetime import date, timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.db.models import Sum

from commissions.choices import AccountPurpose, EntryKind, Share
from commissions.models import LedgerEntry, LedgerLine, Settlement, SettlementRun
from commissions.settlements.periods import schedules_due
from commissions.settlements.runs import settlement_run_execute
from commissions.settlements.scheduling import settlement_run_request
from commissions.settlements.selectors import settlement_lines
from partners.choices import PartnerStatus, PayoutSchedule
from partners.models import Event
from tests import factories, flows
from tests.settlements.conftest import Parties, date_ago, day, run_settlements

P = AccountPurpose


def covered_amount(settlement: Settlement) -> tuple[int, int]:
    """(credit - debit, number of lines) over the ledger lines the settlement lists."""
    lines = list(settlement_lines(settlement=settlement))
    return sum(line.credit - line.debit for line in lines), len(lines)


def order_share(orders, share: str) -> int:
    """What the orders' ledger lines of ``share`` add up to, net of reversals."""
    sums = LedgerLine.objects.filter(order__in=orders, share=share).aggregate(
        d=Sum("debit"), c=Sum("credit")
    )
    return (sums["c"] or 0) - (sums["d"] or 0)


def test_each_payee_gets_one_settlement_whose_totals_equal_the_lines_it_covers(parties):
    # given: two orders released before the period end, one refunded in part before release
    first = flows.sell(parties, items=((1999, 2), (500, 1)), shipping=700, at=day(6))
    second = flows.sell(parties, items=((12345, 1),), at=day(6), released_at=day(5))
    line = first.lines.get(position=0)
    flows.refund(first, units={line: 1}, at=day(6, hour=15))
    flows.complete(first, at=day(5))
    payees = (parties.brand, parties.creator, parties.fulfillment)
    before = {p.pk: flows.available(p) for p in payees}

    # when
    run = run_settlements(date_ago(4))

    # then: one settlement per payee, paying exactly its available balance
    assert run.status == "completed"
    settlements = {s.partner_id: s for s in Settlement.objects.filter(run=run)}
    assert set(settlements) == set(before)
    for partner_id, settlement in settlements.items():
        net, count = covered_amount(settlement)
        assert settlement.net_payout == net == before[partner_id] > 0
        assert settlement.line_count == count
        assert settlement.net_payout == (
            settlement.gross
            - settlement.platform_commission
            - settlement.creator_commission
            - settlement.fulfillment_fees
            - settlement.refunds
            + settlement.adjustments
        )
    # the brand's statement: its sales, what was taken off them, and the refund
    brand = settlements[parties.brand.pk]
    assert brand.gross == 1999 * 2 + 500 + 12345
    assert brand.refunds == 1999
    assert brand.platform_commission == order_share([first, second], Share.PLATFORM_COMMISSION)
    assert brand.creator_commission == order_share([first, second], Share.CREATOR_COMMISSION)
    assert brand.fulfillment_fees == order_share([first, second], Share.FULFILLMENT_FEE)
    assert brand.net_payout == order_share([first, second], Share.BRAND_NET)
    # the fulfillment partner earned its fees and the shipping; the creator its commission
    fulfiller = settlements[parties.fulfillment.pk]
    assert (
        fulfiller.gross
        == fulfiller.net_payout
        == (order_share([first, second], Share.FULFILLMENT_FEE) + 700)
    )
    assert settlements[parties.creator.pk].net_payout == order_share(
        [first, second], Share.CREATOR_COMMISSION
    )
    # the money moved: nothing left available, all of it in payout, and the run adds it up
    for partner in (parties.brand, parties.creator, parties.fulfillment):
        assert flows.available(partner) == 0
        assert flows.in_payout(partner) == before[partner.pk]
    assert run.settlement_count == 3
    assert run.net_payout == sum(before.values())
    assert run.line_count == sum(s.line_count for s in settlements.values())
    assert LedgerEntry.objects.filter(kind=EntryKind.SETTLEMENT).count() == 3


def test_running_a_period_again_changes_nothing(parties):
    flows.sell(parties, at=day(6), released_at=day(5))
    run = run_settlements(date_ago(4))
    entries = LedgerEntry.objects.count()
    events = Event.objects.count()

    again, queued = settlement_run_request(period_end=date_ago(4), currency="USD")
    executed = settlement_run_execute(run_id=run.pk)

    assert again.pk == executed.pk == run.pk
    assert queued is False
    assert executed.attempts == 1  # a completed run is not executed again
    assert Settlement.objects.count() == 3
    assert LedgerEntry.objects.count() == entries
    assert Event.objects.count() == events
    # and a later period with nothing new settles nothing
    later = run_settlements(date_ago(3))
    assert later.status == "completed"
    assert later.settlement_count == 0
    assert Settlement.objects.count() == 3


def test_lines_after_the_period_end_wait_for_the_next_period(parties):
    flows.sell(parties, items=((1000, 1),), at=day(8), released_at=day(7))
    late = flows.sell(parties, items=((3000, 1),), at=day(8), released_at=day(3))

    first = run_settlements(date_ago(5))
    second = run_settlements(date_ago(2))

    brand_first = Settlement.objects.get(run=first, partner=parties.brand)
    brand_second = Settlement.objects.get(run=second, partner=parties.brand)
    assert brand_first.gross == 1000
    assert brand_second.gross == 3000
    # the second range starts where the first ended: no line skipped, none twice
    assert brand_second.after_line_id == brand_first.to_line_id
    covered = [
        line.pk for s in (brand_first, brand_second) for line in settlement_lines(settlement=s)
    ]
    available_lines = LedgerLine.objects.filter(
        partner=parties.brand, purpose=P.PARTNER_AVAILABLE
    ).exclude(kind=EntryKind.SETTLEMENT)
    assert sorted(covered) == sorted(available_lines.values_list("pk", flat=True))
    assert {line.order_id for line in settlement_lines(settlement=brand_second)} == {late.pk}
    assert flows.available(parties.brand) == 0


def test_a_refund_after_settlement_is_netted_off_in_the_next_settlement(parties):
    # given: a settled order
    order = flows.sell(parties, items=((10000, 1),), at=day(9), released_at=day(8))
    run_settlements(date_ago(7))
    first = Settlement.objects.get(partner=parties.brand)
    # when: it is refunded in part after settlement: the brand's available balance goes negative
    flows.refund(order, amount=4000, at=day(6))
    assert flows.available(parties.brand) < 0

    # then: no payout while the balance is negative ...
    negative = run_settlements(date_ago(5))
    assert not Settlement.objects.filter(run=negative).exists()
    assert negative.non_positive_count == 3  # brand, creator and fulfillment all gave some back

    # ... and the next sale nets it off, with no clawback by hand
    later = flows.sell(parties, items=((20000, 1),), at=day(4), released_at=day(3))
    expected = flows.available(parties.brand)
    netted = run_settlements(date_ago(2))
    brand = Settlement.objects.get(run=netted, partner=parties.brand)
    assert brand.net_payout == expected == covered_amount(brand)[0]
    assert brand.gross == 20000
    assert brand.refunds == 4000
    # the refund's reversal of the commissions is given back to the brand
    refund_entry = LedgerEntry.objects.get(kind=EntryKind.REFUND)
    reversed_platform = refund_entry.lines.filter(share=Share.PLATFORM_COMMISSION).get().debit
    assert brand.platform_commission == 1600 - reversed_platform
    kinds = {line.kind for line in settlement_lines(settlement=brand)}
    assert kinds == {EntryKind.RELEASE, EntryKind.REFUND}
    assert brand.after_line_id == first.to_line_id
    assert flows.available(parties.brand) == 0
    # over both settlements the brand was paid exactly its net of both orders after the refund
    paid = Settlement.objects.filter(partner=parties.brand).aggregate(s=Sum("net_payout"))["s"]
    assert paid == order_share([order, later], Share.BRAND_NET)


CRASH_AFTER_TWO_SETTLEMENTS = """
CREATE FUNCTION test_crash_third_settlement() RETURNS trigger AS $$
BEGIN
    IF NEW.kind = 'settlement'
       AND (SELECT count(*) FROM commissions_ledgerentry WHERE kind = 'settlement') >= 2 THEN
        RAISE EXCEPTION 'worker lost in the middle of the run';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER test_crash_third_settlement BEFORE INSERT ON commissions_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION test_crash_third_settlement();
"""


def test_a_run_that_crashed_in_the_middle_pays_every_payee_exactly_once_when_run_again(
    parties, settings
):
    settings.SETTLEMENT_POST_BATCH = 2  # two payees' entries per transaction
    # given: six payees with money available (four brands, the fulfiller, the creator)
    brands = [parties.brand] + [
        factories.BrandFactory(fulfillment_partner=parties.fulfillment) for _ in range(3)
    ]
    for brand in brands:
        flows.sell(
            Parties(parties.host_app, parties.fulfillment, brand, parties.creator),
            items=((2500, 1),),
            at=day(4),
            released_at=day(3),
        )
    payees = [*brands, parties.fulfillment, parties.creator]
    owed = {p.pk: flows.available(p) for p in payees}
    # the database fails the third settlement entry, as a worker dying mid-run would leave it
    with connection.cursor() as cursor:
        cursor.execute(CRASH_AFTER_TWO_SETTLEMENTS)

    # when
    run, _ = settlement_run_request(period_end=date_ago(2), currency="USD")
    with pytest.raises(Exception, match="worker lost"):
        settlement_run_execute(run_id=run.pk)

    # then: the run failed part way: the first batch of two payees is settled, the others not
    run.refresh_from_db()
    assert run.status == "failed"
    assert "worker lost" in run.error
    assert Settlement.objects.filter(entry__isnull=False).count() == 2
    assert sum(1 for p in payees if flows.available(p) == 0) == 2

    # when: it is started again once the cause is gone
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_crash_third_settlement ON commissions_ledgerentry")
    again, queued = settlement_run_request(period_end=date_ago(2), currency="USD")
    assert queued is True and again.pk == run.pk
    finished = settlement_run_execute(run_id=run.pk)

    # then: every payee paid exactly once, what it was owed
    assert finished.status == "completed"
    assert finished.attempts == 2
    assert finished.settlement_count == len(payees)
    for payee in payees:
        settlement = Settlement.objects.get(partner=payee)
        assert settlement.net_payout == owed[payee.pk]
        assert settlement.entry.kind == EntryKind.SETTLEMENT
        assert flows.available(payee) == 0
        assert flows.in_payout(payee) == owed[payee.pk]
        assert Event.objects.filter(type="settlement.created", object_id=settlement.pk).count() == 1
    assert LedgerEntry.objects.filter(kind=EntryKind.SETTLEMENT).count() == len(payees)


def test_schedules_due_by_period_end():
    wednesday, sunday, month_end = date(2026, 11, 18), date(2026, 11, 22), date(2026, 11, 30)
    assert schedules_due(wednesday) == ["daily"]
    assert schedules_due(sunday) == ["daily", "weekly"]
    assert schedules_due(month_end) == ["daily", "monthly"]
    assert schedules_due(date(2026, 5, 31)) == ["daily", "weekly", "monthly"]  # a Sunday


def test_the_scheduled_run_settles_each_payee_on_its_schedule(parties):
    # a Sunday at least two days ago, and the Wednesday before it
    sunday = date_ago(2)
    while sunday.weekday() != 6:
        sunday -= timedelta(days=1)
    wednesday = sunday - timedelta(days=4)
    parties.creator.payout_schedule = PayoutSchedule.WEEKLY
    parties.creator.save()
    parties.fulfillment.payout_schedule = PayoutSchedule.MONTHLY
    parties.fulfillment.save()
    released = day((date_ago(0) - wednesday).days + 1)
    flows.sell(parties, at=released - timedelta(hours=2), released_at=released)

    midweek = run_settlements(wednesday, scheduled=True)
    settled = set(Settlement.objects.filter(run=midweek).values_list("partner_id", flat=True))
    assert settled == {parties.brand.pk}

    weekend = run_settlements(sunday, scheduled=True)
    settled = set(Settlement.objects.filter(run=weekend).values_list("partner_id", flat=True))
    month_end = (sunday + timedelta(days=1)).day == 1
    assert settled == {parties.creator.pk} | ({parties.fulfillment.pk} if month_end else set())
    assert flows.available(parties.creator) == 0
    assert (flows.available(parties.fulfillment) == 0) is month_end


def test_a_balance_below_the_minimum_payout_rolls_over(parties):
    parties.brand.minimum_payout = {"USD": 100_000}  # 1,000.00
    parties.brand.save()
    flows.sell(parties, items=((50000, 1),), at=day(6), released_at=day(5))

    first = run_settlements(date_ago(4))
    assert not Settlement.objects.filter(run=first, partner=parties.brand).exists()
    assert first.below_minimum_count == 1
    kept = flows.available(parties.brand)
    assert kept > 0

    flows.sell(parties, items=((90000, 1),), at=day(3), released_at=day(3))
    second = run_settlements(date_ago(2))
    brand = Settlement.objects.get(run=second, partner=parties.brand)
    assert brand.gross == 140000  # both sales: the first rolled over
    assert brand.after_line_id == 0
    assert flows.available(parties.brand) == 0


def test_a_suspended_payee_is_not_paid_until_reactivated(parties):
    parties.brand.status = PartnerStatus.SUSPENDED
    parties.brand.save()
    flows.sell(parties, at=day(6), released_at=day(5))

    run = run_settlements(date_ago(4))

    assert not Settlement.objects.filter(run=run, partner=parties.brand).exists()
    assert flows.available(parties.brand) > 0


@pytest.mark.django_db(transaction=True)
def test_a_posting_in_flight_when_the_run_starts_is_settled_not_skipped(plan):
    """Line ids are taken at insert, not at commit: the run waits for open postings."""
    fulfillment = factories.FulfillmentFactory()
    parties = Parties(
        host_app=factories.HostAppFactory(),
        fulfillment=fulfillment,
        brand=factories.BrandFactory(fulfillment_partner=fulfillment),
        creator=factories.CreatorFactory(),
    )
    flows.sell(parties, items=((1000, 1),), at=day(3), released_at=day(3))  # accounts exist
    order_in_flight = flows.make_order(brand=parties.brand, host_app=parties.host_app)
    inserted, commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def posting_in_flight():
        try:
            with transaction.atomic():
                flows.pay(order_in_flight)
                flows.complete(order_in_flight)
                inserted.set()
                assert commit.wait(30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            inserted.set()
        finally:
            close_old_connections()
            connection.close()

    def run():
        try:
            run_settlements(date_ago(0))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    poster = threading.Thread(target=posting_in_flight)
    poster.start()
    assert inserted.wait(30)
    # a later posting commits first: its lines have higher ids. Another brand's (with its own
    # fulfillment partner and creator): a release holds its payees' available-account locks to
    # the commit, so one for this brand would wait for the posting in flight
    other_fulfillment = factories.FulfillmentFactory()
    others = Parties(
        host_app=parties.host_app,
        fulfillment=other_fulfillment,
        brand=factories.BrandFactory(fulfillment_partner=other_fulfillment),
        creator=factories.CreatorFactory(),
    )
    flows.complete(flows.sell(others, items=((3000, 1),)))
    runner = threading.Thread(target=run)
    runner.start()
    wait_for_lock_wait()
    commit.set()
    poster.join(30)
    runner.join(60)
    assert not errors

    # every line was settled: nothing is left available, and the run covered the late commit
    brand = Settlement.objects.get(partner=parties.brand)
    assert order_in_flight.pk in {line.order_id for line in settlement_lines(settlement=brand)}
    assert flows.available(parties.brand) == 0
    assert SettlementRun.objects.get().status == "completed"


def wait_for_lock_wait(timeout: float = 30) -> None:
    """Until some session waits for a lock on the ledger lines (the run's watermark)."""

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query ILIKE 'LOCK TABLE%%'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the run never waited for the posting in flight")


def test_the_batch_posting_keeps_the_ledgers_rules(parties):
    from commissions.ledger.posting import NewEntry, Posting, UnbalancedEntry, ledger_post_many

    def entry(key: str, debit: int, credit: int) -> NewEntry:
        return NewEntry(
            kind=EntryKind.ADJUSTMENT,
            currency="USD",
            postings=[
                Posting(P.PARTNER_AVAILABLE, debit=debit, partner_id=parties.brand.pk),
                Posting(P.PARTNER_IN_PAYOUT, credit=credit, partner_id=parties.brand.pk),
            ],
            idempotency_key=key,
        )

    with pytest.raises(UnbalancedEntry):
        ledger_post_many(entries=[entry("a", 100, 100), entry("b", 100, 99)])
    assert not LedgerEntry.objects.filter(idempotency_key__in=["a", "b"]).exists()

    first = ledger_post_many(entries=[entry("a", 100, 100), entry("b", 5, 5)])
    again = ledger_post_many(entries=[entry("b", 5, 5), entry("c", 7, 7)])

    assert again[0].pk == first[1].pk  # posted once, returned again
    assert LedgerEntry.objects.filter(idempotency_key__in=["a", "b", "c"]).count() == 3
    assert LedgerLine.objects.filter(entry__idempotency_key="c").count() == 2


def test_publishing_events_in_a_batch_numbers_them_like_one_by_one(parties):
    from partners.events import event_publish, event_publish_many
    from partners.webhooks.models import WebhookDelivery, WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(
        partner=parties.brand,
        url="https://example.com/hook",
        events=["settlement.paid"],
        secret="whsec_test",
    )
    with transaction.atomic():
        event_publish(type="settlement.created", object_id="stl_x", data={}, partner_ids=[])
        events = event_publish_many(
            events=[
                ("settlement.paid", "stl_x", {"n": 1}, [parties.brand.pk]),
                ("settlement.created", "stl_y", {"n": 2}, [parties.brand.pk, None]),
            ]
        )

    assert [(e.object_id, e.sequence) for e in events] == [("stl_x", 2), ("stl_y", 1)]
    assert all(e.body and f'"id":"{e.pk}"' in e.body for e in Event.objects.filter(pk__in=events))
    assert list(WebhookDelivery.objects.values_list("event_id", "endpoint_id")) == [
        (events[0].pk, endpoint.pk)
    ]


def test_the_run_settlements_command_runs_what_the_schedule_would(parties):
    from io import StringIO

    from django.core.management import CommandError, call_command

    parties.creator.payout_schedule = PayoutSchedule.MONTHLY
    parties.creator.save()
    flows.sell(parties, at=day(5), released_at=day(4))
    period_end = date_ago(3)
    if (period_end + timedelta(days=1)).day == 1:  # a month's last day: monthly payees are due
        period_end = date_ago(4)
    out = StringIO()

    call_command("run_settlements", "--period-end", period_end.isoformat(), stdout=out)

    run = SettlementRun.objects.get()
    assert run.trigger == "schedule" and run.status == "completed"
    assert set(Settlement.objects.values_list("partner_id", flat=True)) == {
        parties.brand.pk,
        parties.fulfillment.pk,
    }
    assert (
        f"{run.pk} USD up to {period_end.isoformat()}: completed, 2 settlements" in out.getvalue()
    )
    # again: the completed run is left as it is
    call_command("run_settlements", "--period-end", period_end.isoformat(), stdout=StringIO())
    assert Settlement.objects.count() == 2
    with pytest.raises(CommandError):
        call_command("run_settlements", "--period-end", period_end.isoformat(), "--currency", "usd")
