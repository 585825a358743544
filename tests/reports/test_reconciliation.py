"""Reconciliation: ledger vs orders for a period, the API, and the daily task that alerts."""

import logging
from datetime import date

from django.db.models import F

from commissions.models import Settlement, SettlementRun
from commissions.reports.reconciliation import MISMATCH_EVENT, reconciliation_report
from commissions.settlements.payouts import settlement_mark_failed, settlement_mark_paid
from commissions.settlements.runs import settlement_run_execute
from commissions.tasks import reconcile_ledger
from livecommerce.money import to_decimal_string
from orders.choices import OrderStatus
from orders.models import Order, Refund
from partners.models import Event
from tests.conftest import client_for
from tests.flows import complete, make_order, pay, refund
from tests.reports.conftest import at

URL = "/api/v1/reports/reconciliation"
MARCH = {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "USD"}


def checks(report) -> list[tuple[str, str]]:
    return sorted((d["check"], d["object"]) for d in report["differences"])


def test_a_consistent_ledger_reconciles(finance, scenario):
    response = finance.get(URL, MARCH)

    assert response.status_code == 200
    report = response.json()
    assert report["consistent"] is True
    assert report["differences"] == []
    # o1, o2, o4 were paid or refunded in March in USD (o3 is JPY; o5 is April's)
    assert report["orders_checked"] == 3
    assert report["entries_checked"] == 6  # three sales, two refunds, one release
    assert report["settlements_checked"] == 0
    assert report["truncated"] is False


def test_an_order_paid_without_a_sale_entry_is_listed(finance, scenario, parties):
    # given an order marked paid by a hand-made change, with no ledger posting
    with at("2026-03-10T10:00:00"):
        order = make_order(brand=parties["brand_a"], host_app=parties["host_a"], items=[(10000, 1)])
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID, paid_at=F("created"))

    report = finance.get(URL, MARCH).json()

    assert report["consistent"] is False
    assert report["differences"] == [
        {
            "check": "sale_posting",
            "object": order.pk,
            "expected": "100.00",
            "actual": "0.00",
            "detail": "The order (paid) says the buyer paid 100.00; its sale entry debited buyer "
            "funds 0.00.",
        }
    ]


def test_a_refund_not_posted_to_the_ledger_is_listed(scenario):
    # given a refund recorded on o4 (and its refunded amount) but never posted
    o4 = scenario["o4"]
    with at("2026-03-20T10:00:00"):
        Refund.objects.create(order=o4, amount=500, reason="posted by hand")
        Order.objects.filter(pk=o4.pk).update(refunded_amount=F("refunded_amount") + 500)

    report = reconciliation_report(
        currency="USD", date_from=date(2026, 3, 20), date_to=date(2026, 3, 20)
    )

    # o4's whole life is compared: 10.00 refunded in April is posted, these 5.00 are not
    assert [(d.check, d.object_id, d.expected, d.actual) for d in report.differences] == [
        ("refund_posting", o4.pk, 1500, 1000)
    ]


def test_refund_records_that_do_not_add_up_are_listed(scenario):
    o2 = scenario["o2"]
    Order.objects.filter(pk=o2.pk).update(refunded_amount=9000)

    report = reconciliation_report(
        currency="USD", date_from=date(2026, 3, 5), date_to=date(2026, 3, 5)
    )

    assert sorted((d.check, d.expected, d.actual) for d in report.differences) == [
        ("refund_posting", 9000, 10000),
        ("refund_records", 9000, 10000),
    ]


def test_ledger_lines_naming_other_parties_than_their_order_are_listed(finance, scenario):
    # given o1's creator changed after its sale was posted (the ledger still names the old one)
    o1 = scenario["o1"]
    Order.objects.filter(pk=o1.pk).update(creator=None)

    report = finance.get(URL, MARCH).json()

    assert checks(report) == [("attribution", o1.pk)]
    assert report["differences"][0]["expected"] is None


def test_reconciliation_validates_its_query(finance):
    response = finance.get(URL, {"date_from": "2026-03-01", "date_to": "2026-03-31"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "currency"


def test_the_daily_task_alerts_once_with_a_staff_only_event(scenario, parties, caplog):
    # given yesterday (03-10) an order was marked paid without its sale posting
    with at("2026-03-10T10:00:00"):
        order = make_order(brand=parties["brand_a"], host_app=parties["host_a"], items=[(10000, 1)])
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID, paid_at=F("created"))

    # when the periodic task runs on 03-11, twice (a retried task)
    with at("2026-03-11T03:00:00"), caplog.at_level(logging.ERROR):
        first = reconcile_ledger()
        second = reconcile_ledger()

    # then it logged the difference and published one event, to no partner
    assert first == second == {"USD": 1}
    assert any(
        r.levelno == logging.ERROR and "2026-03-10 USD" in r.getMessage() for r in caplog.records
    )
    # (one event per new finding: the contract's "publishes reconciliation.mismatch for each
    # new finding"; it was one event per day and currency)
    (event,) = Event.objects.filter(type=MISMATCH_EVENT)
    assert event.object_id.startswith("rcf_")
    assert not event.recipients.exists()
    assert event.data["check"] == "sale_posting"
    assert event.data["object"] == order.pk
    assert (event.data["expected"], event.data["actual"]) == ("100.00", "0.00")
    assert event.data["date_from"] == event.data["date_to"] == "2026-03-10"


def test_the_daily_task_is_quiet_when_everything_agrees(scenario, caplog):
    with caplog.at_level(logging.ERROR):
        result = reconcile_ledger("2026-03-05")

    assert result == {"USD": 0}
    assert not Event.objects.filter(type=MISMATCH_EVENT).exists()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_daily_task_reconciles_each_currency_that_moved(scenario):
    assert reconcile_ledger("2026-03-02") == {"JPY": 0, "USD": 0}
    assert reconcile_ledger("2026-02-01") == {}


def test_mismatch_events_are_for_staff_not_partners(scenario, parties, finance):
    with at("2026-03-10T10:00:00"):
        order = make_order(brand=parties["brand_a"], host_app=parties["host_a"], items=[(10000, 1)])
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID, paid_at=F("created"))
    reconcile_ledger("2026-03-10")
    brand = client_for(partner=parties["brand_a"])

    def mismatch_events(client) -> list[dict]:
        response = client.get("/api/v1/events", {"page_size": 200})
        assert response.status_code == 200
        return [e for e in response.json()["results"] if e["type"] == MISMATCH_EVENT]

    # finance reads the alert on GET /events; the order's brand hears nothing of the books
    (event,) = mismatch_events(finance)
    assert event["data"]["check"] == "sale_posting"
    assert mismatch_events(brand) == []


def test_refund_then_full_cancel_reconciles(plan, parties):
    with at("2026-07-01T10:00:00"):
        order = pay(
            make_order(
                brand=parties["brand_a"],
                host_app=parties["host_a"],
                items=[(10000, 1)],
                shipping=500,
            )
        )
        refund(order, amount=300)
        refund(order, amount=order.total - 300)

    report = reconciliation_report(
        currency="USD", date_from=date(2026, 7, 1), date_to=date(2026, 7, 1)
    )

    assert report.consistent, report.differences
    assert report.orders_checked == 1


# --- Settlements ---------------------------------------------------------------------------------


def settle(period_end: str) -> list[Settlement]:
    run = SettlementRun.objects.create(period_end=date.fromisoformat(period_end), currency="USD")
    settlement_run_execute(run_id=run.pk)
    return list(Settlement.objects.filter(run=run).order_by("partner_id"))


def test_settlements_reconcile_with_the_ledger(plan, parties):
    # given an order released on 08-15, settled on 08-16 and paid out (or failed) on 08-17
    with at("2026-08-01T10:00:00"):
        order = pay(
            make_order(brand=parties["brand_a"], host_app=parties["host_a"], items=[(10000, 1)])
        )
    with at("2026-08-15T10:00:00"):
        complete(order)
    with at("2026-08-16T02:00:00"):
        settlements = settle("2026-08-15")
    with at("2026-08-17T09:00:00"):
        settlement_mark_paid(settlement=settlements[0], payout_reference="wire-1")
        settlement_mark_failed(settlement=settlements[1], reason="bank closed")

    # then each day reconciles, settlements included
    for day in ("2026-08-16", "2026-08-17"):
        report = reconciliation_report(
            currency="USD", date_from=date.fromisoformat(day), date_to=date.fromisoformat(day)
        )
        assert report.consistent, report.differences
        # the brand and its fulfillment partner are paid for the order
        assert report.settlements_checked == 2


def test_a_settlement_that_disagrees_with_the_ledger_is_listed(finance, plan, parties):
    with at("2026-08-01T10:00:00"):
        order = pay(
            make_order(brand=parties["brand_a"], host_app=parties["host_a"], items=[(10000, 1)])
        )
    with at("2026-08-15T10:00:00"):
        complete(order)
    with at("2026-08-16T02:00:00"):
        settlement, _ = settle("2026-08-15")
    # a hand-made edit (the figures still add up) after the entry was posted
    Settlement.objects.filter(pk=settlement.pk).update(
        net_payout=F("net_payout") + 100, adjustments=F("adjustments") + 100
    )

    report = finance.get(
        URL, {"date_from": "2026-08-16", "date_to": "2026-08-16", "currency": "USD"}
    ).json()

    net = to_decimal_string(settlement.net_payout + 100, "USD")
    posted = to_decimal_string(settlement.net_payout, "USD")
    assert [
        (d["check"], d["object"], d["expected"], d["actual"]) for d in report["differences"]
    ] == [
        ("settlement_entry", settlement.pk, net, posted),
        ("settlement_coverage", settlement.pk, net, posted),
    ]


def test_reconciliation_is_json_only(finance):
    response = finance.get(URL, {**MARCH, "format": "csv"})

    assert response.status_code == 400
    (item,) = response.json()["errors"]
    assert (item["code"], item["attr"], item["detail"]) == ("invalid_choice", "format", "Use json.")
