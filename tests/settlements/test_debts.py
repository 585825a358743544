"""Money that comes back: a refund after payout makes the payee owe; mark-paid refuses to pay
a payee that owes; adjustments; statements; balances as of a moment; settlement catch-up;
reconciliation of debts. Through the API where a user would go, the services elsewhere."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from audit.models import AuditEntry
from commissions.choices import AccountPurpose as P
from commissions.choices import EntryKind
from commissions.ledger.posting import Posting, ledger_post
from commissions.models import Adjustment, LedgerEntry, Settlement, SettlementRun
from commissions.reports.reconciliation import (
    MISMATCH_EVENT,
    reconciliation_report,
    reconciliation_run,
)
from commissions.settlements.payouts import settlement_mark_failed, settlement_mark_paid
from commissions.settlements.runs import settlement_run_execute
from commissions.settlements.scheduling import settlement_run_request, settlement_runs_for_schedule
from partners.choices import PartnerStatus, PayoutSchedule
from partners.models import Event
from tests import factories, flows
from tests.conftest import client_for
from tests.settlements.conftest import date_ago, day, run_settlements
from tests.settlements.test_runs import CRASH_AFTER_TWO_SETTLEMENTS

pytestmark = pytest.mark.django_db


def _creator_paid_then_refunded(parties):
    """A creator paid its 5.00 commission (settled and paid on day 4) on an order that is then
    refunded in full on day 3: it owes 5.00."""
    order = flows.sell(parties, items=((10000, 1),), at=day(6), released_at=day(5))
    period_end = date_ago(5)
    with time_machine.travel(day(4), tick=True):
        run = run_settlements(period_end)
        settlement = Settlement.objects.get(run=run, partner=parties.creator)
        settlement_mark_paid(settlement=settlement, payout_reference="wire-1")
    flows.refund(order, units={order.lines.get(): 1}, at=day(3))
    return order, settlement


def _balances(client, **params):
    response = client.get("/api/v1/balances", params)
    assert response.status_code == 200, response.json()
    return {row["currency"]: row for row in response.json()}


# --- Debts and payouts --------------------------------------------------------------------------


def test_a_refund_after_payout_makes_the_payee_owe(parties):
    _creator_paid_then_refunded(parties)

    creator = client_for(partner=parties.creator)
    assert _balances(creator)["USD"] == {
        "currency": "USD",
        "pending": "0.00",
        "available": "-5.00",
        "in_payout": "0.00",
        "paid_out": "5.00",
        "owed": "5.00",
    }


def test_mark_paid_refuses_a_payee_that_owes_and_the_next_run_nets_the_debt(parties, finance):
    # given a creator settled 15.00 (5.00 + 10.00, pending), then one order is refunded in full
    flows.sell(parties, items=((10000, 1),), at=day(8), released_at=day(7))
    other = flows.sell(parties, items=((20000, 1),), at=day(8), released_at=day(7))
    settlement = Settlement.objects.get(run=run_settlements(date_ago(7)), partner=parties.creator)
    assert settlement.net_payout == 1500
    flows.refund(other, units={other.lines.get(): 1}, at=day(5))
    assert flows.available(parties.creator) == -1000

    # when finance marks the payout paid: 409 payee_owes, nothing moves
    response = finance.post(
        f"/api/v1/settlements/{settlement.pk}/mark-paid",
        {"payout_reference": "wire-2"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "payee_owes"
    assert flows.paid_out(parties.creator) == 0
    assert flows.in_payout(parties.creator) == 1500

    # then finance marks it failed: the funds return to available, net of the debt
    response = finance.post(
        f"/api/v1/settlements/{settlement.pk}/mark-failed", {"reason": "owes"}, format="json"
    )
    assert response.status_code == 200
    assert flows.available(parties.creator) == 500
    # and the next run pays what was earned less what is owed
    netted = Settlement.objects.get(run=run_settlements(date_ago(0)), partner=parties.creator)
    assert netted.net_payout == 500
    assert (netted.refunds, netted.adjustments) == (1000, 1500)
    settlement_mark_paid(settlement=netted, payout_reference="wire-3")
    assert flows.paid_out(parties.creator) == 500


def test_failed_funds_return_as_before(parties):
    flows.sell(parties, items=((10000, 1),), at=day(4), released_at=day(3))
    settlement = Settlement.objects.get(run=run_settlements(date_ago(3)), partner=parties.brand)

    settlement_mark_failed(settlement=settlement, reason="R02")

    assert flows.available(parties.brand) == settlement.net_payout
    assert flows.in_payout(parties.brand) == 0


# --- Adjustments ------------------------------------------------------------------------------


def _adjust(client, partner, amount, kind, reason="test"):
    return client.post(
        "/api/v1/adjustments",
        {
            "partner": partner.pk,
            "currency": "USD",
            "amount": amount,
            "kind": kind,
            "reason": reason,
        },
        format="json",
    )


def test_a_write_off_clears_a_debt_with_a_balanced_entry_and_an_audit_entry(parties, finance):
    _creator_paid_then_refunded(parties)

    too_much = _adjust(finance, parties.creator, "5.01", "write_off")
    response = _adjust(finance, parties.creator, "5.00", "write_off", reason="Creator left")

    assert too_much.status_code == 409
    assert too_much.json()["errors"][0]["code"] == "adjustment_exceeds_owed"
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "write_off" and body["amount"] == "5.00"
    assert body["reason"] == "Creator left" and body["id"].startswith("adj_")
    entry = LedgerEntry.objects.get(pk=body["ledger_entry"])
    assert entry.kind == EntryKind.ADJUSTMENT
    lines = list(entry.lines.values_list("purpose", "partner_id", "debit", "credit"))
    assert sorted(lines) == [
        ("partner_available", parties.creator.pk, 0, 500),
        ("platform_write_offs", None, 500, 0),
    ]
    assert _balances(finance, partner=parties.creator.pk)["USD"]["owed"] == "0.00"
    audit = AuditEntry.objects.get(object_id=body["id"])
    assert audit.action == "adjustment.write_off"
    assert audit.changes["reason"] == [None, "Creator left"]
    assert audit.actor == "staff:finance"
    # and nothing is left to write off
    assert _adjust(finance, parties.creator, "0.01", "write_off").status_code == 409


def test_repayment_and_credit(parties, finance):
    _creator_paid_then_refunded(parties)

    repaid = _adjust(finance, parties.creator, "2.00", "repayment")
    credit = _adjust(finance, parties.creator, "10.00", "credit", reason="Sorry for the delay")

    assert repaid.status_code == credit.status_code == 201
    assert _adjust(finance, parties.creator, "3.01", "repayment").status_code == 409
    balances = _balances(finance, partner=parties.creator.pk)["USD"]
    assert (balances["available"], balances["owed"]) == ("7.00", "0.00")
    listed = finance.get("/api/v1/adjustments", {"partner": parties.creator.pk}).json()
    assert [a["kind"] for a in listed["results"]] == ["credit", "repayment"]
    assert finance.get("/api/v1/adjustments", {"kind": "credit"}).json()["results"][0][
        "amount"
    ] == ("10.00")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": "0.00"}, "invalid_amount"),
        ({"amount": "-1.00"}, "negative_amount"),
        ({"amount": "1.001"}, "too_many_decimal_places"),
        ({"currency": "usd"}, "invalid_currency"),
        ({"kind": "gift"}, "invalid_choice"),
        ({"partner": "prt_nobody"}, "invalid_reference"),
        ({"reason": ""}, "blank"),
    ],
)
def test_bad_adjustments_are_400(parties, finance, body, code):
    base = {
        "partner": parties.creator.pk,
        "currency": "USD",
        "amount": "1.00",
        "kind": "credit",
        "reason": "r",
    }
    response = finance.post("/api/v1/adjustments", {**base, **body}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code
    assert not Adjustment.objects.exists()


@pytest.mark.parametrize("kind", ["credit", "write_off"])
def test_an_adjustment_names_a_payee_not_a_host_app(parties, finance, kind):
    # a host app is paid nothing by the ledger: it can owe nothing and be credited nothing
    response = _adjust(finance, parties.host_app, "1.00", kind)

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["code"], error["attr"]) == ("invalid_reference", "partner")
    assert not Adjustment.objects.exists()
    # every payee kind is accepted
    for payee in (parties.brand, parties.creator, parties.fulfillment):
        assert _adjust(finance, payee, "1.00", "credit").status_code == 201


def test_only_finance_adjusts(parties, ops):
    creator = client_for(partner=parties.creator)
    for client in (ops, creator):
        assert _adjust(client, parties.creator, "1.00", "credit").status_code == 403
        assert client.get("/api/v1/adjustments").status_code == 403


def test_adjustments_are_never_edited(parties, finance):
    adjustment = _adjust(finance, parties.creator, "1.00", "credit").json()
    url = "/api/v1/adjustments"
    assert finance.patch(url, {"amount": "2.00"}, format="json").status_code == 405
    assert finance.delete(url).status_code == 405
    # and the database refuses an edit or a deletion by hand, as it does for the ledger
    for change in (
        lambda rows: rows.update(amount=200),
        lambda rows: rows.delete(),
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            change(Adjustment.objects.filter(pk=adjustment["id"]))
    assert Adjustment.objects.get(pk=adjustment["id"]).amount == 100


# --- Statements and balances as of a moment ------------------------------------------------


def _statement(client, partner, date_from, date_to, **extra):
    return client.get(
        "/api/v1/statements",
        {
            "partner": partner.pk,
            "currency": "USD",
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
            **extra,
        },
    )


def _held(row) -> str:
    return str(sum(Decimal(row[name]) for name in ("pending", "available", "in_payout")))


def test_a_statement_follows_the_balance_line_by_line(parties, finance):
    _creator_paid_then_refunded(parties)
    flows.sell(parties, items=((4000, 1),), at=day(2))  # creator +2.00 pending
    creator = client_for(partner=parties.creator)

    response = _statement(creator, parties.creator, date_ago(6), date_ago(0))

    assert response.status_code == 200, response.json()
    statement = response.json()
    assert statement["opening"] == "0.00"
    kinds = [(line["kind"], line["amount"], line["balance"]) for line in statement["lines"]]
    assert kinds == [
        ("sale", "5.00", "5.00"),
        ("payout", "-5.00", "0.00"),
        ("refund", "-5.00", "-5.00"),
        ("sale", "2.00", "-3.00"),
    ]
    assert statement["closing"] == "-3.00"
    payout = statement["lines"][1]
    assert payout["settlement"] == Settlement.objects.get(partner=parties.creator).pk
    assert payout["order"] is None
    assert statement["lines"][2]["order"] is not None
    # every balance is the balance as of that moment; the closing that of the period's end
    for line in statement["lines"]:
        as_of = _balances(finance, partner=parties.creator.pk, as_of=line["created"])["USD"]
        assert _held(as_of) == line["balance"]
    end = datetime.combine(date_ago(0), datetime.max.time(), tzinfo=UTC).isoformat()
    closing = _balances(finance, partner=parties.creator.pk, as_of=end)["USD"]
    assert _held(closing) == statement["closing"]
    # a later statement opens where this one closed
    later = _statement(creator, parties.creator, date_ago(3), date_ago(0)).json()
    assert later["opening"] == "0.00" and later["closing"] == "-3.00"


def test_a_statement_as_csv(parties, finance):
    _creator_paid_then_refunded(parties)

    response = _statement(finance, parties.creator, date_ago(6), date_ago(0), format="csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "entry",
        "created",
        "kind",
        "order",
        "settlement",
        "description",
        "amount",
        "balance",
    ]
    assert rows[1][2] == "opening" and rows[1][7] == "0.00"
    assert [row[2] for row in rows[2:-1]] == ["sale", "payout", "refund"]
    assert rows[-1][2] == "closing" and rows[-1][7] == "-5.00"


def test_statements_are_a_payees_own(parties, finance, host_app):
    other_brand = client_for(partner=factories.BrandFactory())
    host = client_for(partner=host_app)

    assert _statement(other_brand, parties.creator, date_ago(1), date_ago(0)).status_code == 404
    assert _statement(host, parties.creator, date_ago(1), date_ago(0)).status_code == 403
    without_partner = finance.get(
        "/api/v1/statements",
        {"currency": "USD", "date_from": "2026-01-01", "date_to": "2026-01-31"},
    )
    assert without_partner.status_code == 400
    assert without_partner.json()["errors"][0]["attr"] == "partner"
    bad = _statement(finance, parties.creator, date_ago(0), date_ago(1))
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "invalid_period"


def test_balances_as_of_a_past_moment(parties, finance):
    flows.sell(parties, items=((10000, 1),), at=day(6), released_at=day(5))

    before_sale = _balances(
        finance, partner=parties.creator.pk, as_of=(day(6) - timedelta(hours=1)).isoformat()
    )
    pending = _balances(finance, partner=parties.creator.pk, as_of=day(5, hour=6).isoformat())
    bad = finance.get("/api/v1/balances", {"partner": parties.creator.pk, "as_of": "yesterday"})

    assert before_sale == {}
    assert (pending["USD"]["pending"], pending["USD"]["available"]) == ("5.00", "0.00")
    assert bad.status_code == 400 and bad.json()["errors"][0]["attr"] == "as_of"


@pytest.mark.parametrize(
    ("as_of", "code"),
    [
        ("1969-12-31T23:59:59Z", "min_value"),
        ("0900-07-26T19:43:38.7+22:29", "min_value"),  # found by schemathesis
        ("0001-01-01T00:00:00+01:00", "overflow"),  # before year 1 in UTC
    ],
)
def test_balances_as_of_before_1970_is_refused_like_every_time_input(finance, as_of, code):
    response = finance.get("/api/v1/balances", {"as_of": as_of})

    assert response.status_code == 400
    assert [(e["code"], e["attr"]) for e in response.json()["errors"]] == [(code, "as_of")]


# --- Settlement catch-up ------------------------------------------------------------------------


def test_the_next_scheduled_run_completes_a_run_that_failed_mid_way(parties, settings):
    settings.SETTLEMENT_POST_BATCH = 1
    brands = [parties.brand, factories.BrandFactory(fulfillment_partner=parties.fulfillment)]
    for brand in brands:
        flows.sell(flows_parties(parties, brand), items=((2500, 1),), at=day(5), released_at=day(4))
    with connection.cursor() as cursor:
        cursor.execute(CRASH_AFTER_TWO_SETTLEMENTS)
    run, _ = settlement_run_request(period_end=date_ago(4), currency="USD")
    with pytest.raises(Exception, match="worker lost"):
        settlement_run_execute(run_id=run.pk)
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_crash_third_settlement ON commissions_ledgerentry")

    # the next day's schedule queues the failed run of another period (finance's) again
    runs = {
        r.pk: to_execute for r, to_execute in settlement_runs_for_schedule(period_end=date_ago(1))
    }
    assert runs[run.pk] is True
    for run_id, to_execute in runs.items():
        if to_execute:
            settlement_run_execute(run_id=run_id)

    run.refresh_from_db()
    assert run.status == "completed"
    payees = [*brands, parties.fulfillment, parties.creator]
    for payee in payees:
        assert flows.available(payee) == 0
        assert Settlement.objects.filter(partner=payee, entry__isnull=False).count() == 1


def flows_parties(parties, brand):
    return type(parties)(parties.host_app, parties.fulfillment, brand, parties.creator)


def test_a_missed_scheduled_period_catches_up(parties):
    # the schedule ran 5 days ago, then the scheduler was down for three days
    parties.creator.payout_schedule = PayoutSchedule.WEEKLY
    parties.creator.save()
    run_settlements(date_ago(5), scheduled=True)
    flows.sell(parties, items=((10000, 1),), at=day(5), released_at=day(4))

    runs = settlement_runs_for_schedule(period_end=date_ago(1))

    periods = sorted(r.period_end for r, _ in runs if r.trigger == "schedule")
    assert periods == [date_ago(4), date_ago(3), date_ago(2), date_ago(1)]
    for run, to_execute in runs:
        assert to_execute
        settlement_run_execute(run_id=run.pk)
    assert flows.available(parties.brand) == 0
    # the weekly creator was settled by the missed Sunday's run, if one was among them
    sundays = [p for p in periods if p.weekday() == 6]
    assert (flows.available(parties.creator) == 0) == bool(sundays)


def test_a_run_by_hand_never_takes_the_schedules_place(parties):
    # finance settles "today" by hand; the night's scheduled run for the same day still runs
    parties.creator.payout_schedule = PayoutSchedule.WEEKLY
    parties.creator.save()
    by_hand = run_settlements(date_ago(2))
    flows.sell(parties, items=((10000, 1),), at=day(2, hour=20), released_at=day(2, hour=21))

    scheduled = run_settlements(date_ago(2), scheduled=True)

    assert scheduled.pk != by_hand.pk and scheduled.trigger == "schedule"
    assert SettlementRun.objects.filter(period_end=date_ago(2)).count() == 2
    assert Settlement.objects.filter(run=scheduled, partner=parties.brand).exists()
    weekly_due = date_ago(2).weekday() == 6
    assert Settlement.objects.filter(run=scheduled, partner=parties.creator).exists() == weekly_due


def test_a_period_never_covers_a_line_stamped_after_it(parties):
    # a line stamped the next day gets a lower id than one stamped in the period (app servers'
    # clocks disagree around midnight)
    flows.sell(parties, items=((10000, 1),), at=day(4), released_at=day(2, hour=0))
    flows.sell(parties, items=((20000, 1),), at=day(4), released_at=day(3, hour=23))

    run = run_settlements(date_ago(3))

    # the brand's range would have to reach over the next day's line: it waits
    assert not Settlement.objects.filter(run=run, partner=parties.brand).exists()
    assert flows.available(parties.brand) > 0
    # and the next period's run covers both lines, once
    later = Settlement.objects.get(run=run_settlements(date_ago(2)), partner=parties.brand)
    assert later.line_count == 2
    assert flows.available(parties.brand) == 0


# --- Reconciliation --------------------------------------------------------------------------


def test_reconciliation_flags_a_payee_that_owes_once(parties):
    _creator_paid_then_refunded(parties)

    report = reconciliation_report(currency="USD", date_from=date_ago(3), date_to=date_ago(3))
    owes = {d.object_id: d.actual for d in report.differences if d.check == "payee_owes"}
    # every payee of the refunded order was settled, so each owes its share back
    assert owes == {parties.creator.pk: -500, parties.fulfillment.pk: -300, parties.brand.pk: -8400}

    reconciliation_run(day=date_ago(3))
    reconciliation_run(day=date_ago(3))  # a retried task: nothing new
    events = Event.objects.filter(type=MISMATCH_EVENT)
    assert sorted((e.data["check"], e.data["object"], e.data["actual"]) for e in events) == sorted(
        [
            ("payee_owes", parties.creator.pk, "-5.00"),
            ("payee_owes", parties.fulfillment.pk, "-3.00"),
            ("payee_owes", parties.brand.pk, "-84.00"),
        ]
    )
    assert not any(event.recipients.exists() for event in events)


def test_reconciliation_flags_a_payout_made_while_its_payee_owed(parties):
    # a settlement made, then its order refunded, then the payout recorded anyway (by hand,
    # as before mark-paid refused it)
    order = flows.sell(parties, items=((10000, 1),), at=day(6), released_at=day(5))
    period_end = date_ago(5)
    with time_machine.travel(day(4), tick=True):
        settlement = Settlement.objects.get(
            run=run_settlements(period_end), partner=parties.creator
        )
    flows.refund(order, units={order.lines.get(): 1}, at=day(3))
    entry = ledger_post(
        kind=EntryKind.PAYOUT,
        currency="USD",
        postings=[
            Posting(P.PARTNER_IN_PAYOUT, debit=500, partner_id=parties.creator.pk),
            Posting(P.PARTNER_PAID_OUT, credit=500, partner_id=parties.creator.pk),
        ],
        idempotency_key=f"payout:{settlement.pk}",
        reference=settlement.pk,
    )
    Settlement.objects.filter(pk=settlement.pk).update(
        status="paid", payout_entry=entry, paid_at=entry.created
    )
    today = datetime.now(UTC).date()

    report = reconciliation_report(currency="USD", date_from=today, date_to=today)

    flagged = [(d.check, d.object_id) for d in report.differences]
    assert ("payout_while_owed", settlement.pk) in flagged
    assert ("payee_owes", parties.creator.pk) in flagged


def test_reconciliation_flags_a_failed_runs_settlement_without_its_entry(parties, settings):
    settings.SETTLEMENT_POST_BATCH = 1
    for _ in range(2):
        flows.sell(parties, items=((2500, 1),), at=day(5), released_at=day(4))
    with connection.cursor() as cursor:
        cursor.execute(CRASH_AFTER_TWO_SETTLEMENTS)
    run, _ = settlement_run_request(period_end=date_ago(4), currency="USD")
    with pytest.raises(Exception, match="worker lost"):
        settlement_run_execute(run_id=run.pk)
    today = datetime.now(UTC).date()

    report = reconciliation_report(currency="USD", date_from=today, date_to=today)

    unposted = Settlement.objects.filter(run=run, entry__isnull=True)
    assert unposted.exists()
    flagged = {d.object_id for d in report.differences if d.check == "settlement_entry"}
    assert flagged == set(unposted.values_list("pk", flat=True))


def test_a_suspended_payee_that_owes_stays_owed(parties):
    _creator_paid_then_refunded(parties)
    parties.creator.status = PartnerStatus.SUSPENDED
    parties.creator.save()

    run_settlements(date_ago(1))

    assert flows.available(parties.creator) == -500
