"""The settlements API: runs, settlements, their lines as JSON and CSV, payouts, payout terms."""

import csv
import io

import pytest

from commissions.choices import EntryKind
from commissions.models import LedgerEntry, Settlement, SettlementRun
from livecommerce import money
from livecommerce.money import to_decimal_string
from orders.models import Order
from partners.models import Event
from tests import factories, flows
from tests.conftest import client_for
from tests.settlements.conftest import Parties, date_ago, day, run_settlements


@pytest.fixture
def settled(parties):
    """Two orders sold and released, settled by a run up to three days ago."""
    flows.sell(parties, items=((1999, 2), (500, 3)), shipping=700, at=day(5), released_at=day(4))
    flows.sell(parties, items=((12000, 1),), at=day(5), released_at=day(4))
    run_settlements(date_ago(3))
    return parties


def brand_settlement(parties) -> Settlement:
    return Settlement.objects.get(partner=parties.brand)


# --- Runs ---------------------------------------------------------------------------------------


def test_finance_starts_a_run_in_the_background_and_polls_it(
    parties, finance, django_capture_on_commit_callbacks
):
    flows.sell(parties, at=day(3), released_at=day(2))
    body = {"period_end": date_ago(1).isoformat(), "currency": "USD"}

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = finance.post("/api/v1/settlements/run", body, format="json")
    assert response.status_code == 202, response.content
    run = response.json()
    assert run["status"] == "queued"
    assert run["period_end"] == body["period_end"] and run["currency"] == "USD"
    assert run["id"].startswith("run_")
    assert len(callbacks) == 1  # the task is queued after commit, not run by the view
    assert not Settlement.objects.exists()

    callbacks[0]()  # the queued task runs (eagerly here: no broker in this test)

    polled = finance.get(f"/api/v1/settlement-runs/{run['id']}").json()
    assert polled["status"] == "completed"
    assert polled["settlement_count"] == 3
    assert polled["net_payout"] == flows_total_net()
    # the same period again is the same run, and nothing is queued
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = finance.post("/api/v1/settlements/run", body, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == run["id"]
    assert callbacks == []
    listed = finance.get("/api/v1/settlement-runs", {"currency": "USD"}).json()["results"]
    assert [r["id"] for r in listed] == [run["id"]]


def flows_total_net() -> str:
    return money.to_decimal_string(sum(s.net_payout for s in Settlement.objects.all()), "USD")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"period_end": "2999-01-01", "currency": "USD"}, "period_end_in_future"),
        ({"period_end": "2026-01-01", "currency": "usd"}, "invalid_currency"),
        ({"period_end": "2026-01-01", "currency": "XXX"}, "invalid_currency"),
        ({"period_end": "yesterday", "currency": "USD"}, "invalid"),
        ({"currency": "USD"}, "required"),
    ],
)
def test_a_run_with_bad_input_is_a_400(finance, body, code):
    response = finance.post("/api/v1/settlements/run", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code
    assert not SettlementRun.objects.exists()


def test_only_finance_runs_settlements(db, ops, host_client, brand_client, api_client):
    body = {"period_end": date_ago(1).isoformat(), "currency": "USD"}
    for client in (ops, host_client, brand_client):
        assert client.post("/api/v1/settlements/run", body, format="json").status_code == 403
        assert client.get("/api/v1/settlement-runs").status_code == 403
    assert api_client.post("/api/v1/settlements/run", body, format="json").status_code == 401


# --- Reading settlements ------------------------------------------------------------------------


def test_finance_reads_every_settlement_and_a_payee_only_its_own(settled, finance):
    brand = client_for(partner=settled.brand)
    creator = client_for(partner=settled.creator)
    other_brand = client_for(partner=factories.BrandFactory())

    everything = finance.get("/api/v1/settlements").json()["results"]
    assert {s["partner"] for s in everything} == {
        settled.brand.pk,
        settled.creator.pk,
        settled.fulfillment.pk,
    }
    own = brand.get("/api/v1/settlements").json()["results"]
    assert [s["partner"] for s in own] == [settled.brand.pk]
    settlement = brand_settlement(settled)
    assert brand.get(f"/api/v1/settlements/{settlement.pk}").status_code == 200
    # another partner's settlement does not exist for them
    for client in (creator, other_brand):
        assert client.get(f"/api/v1/settlements/{settlement.pk}").status_code == 404
        assert client.get(f"/api/v1/settlements/{settlement.pk}/lines").status_code == 404
    assert other_brand.get("/api/v1/settlements").json()["results"] == []


def test_roles_that_are_never_paid_may_not_read_settlements(settled, ops, host_client, api_client):
    settlement = brand_settlement(settled)
    for client in (ops, host_client):
        assert client.get("/api/v1/settlements").status_code == 403
        assert client.get(f"/api/v1/settlements/{settlement.pk}").status_code == 403
    assert api_client.get("/api/v1/settlements").status_code == 401


def test_a_settlement_as_json(settled, finance):
    settlement = brand_settlement(settled)

    body = finance.get(f"/api/v1/settlements/{settlement.pk}").json()

    assert body == {
        "id": settlement.pk,
        "run": settlement.run_id,
        "partner": settled.brand.pk,
        "currency": "USD",
        "period_end": date_ago(3).isoformat(),
        "status": "pending",
        "gross": "174.98",  # 2 x 19.99 + 3 x 5.00 + 120.00
        "platform_commission": "14.00",  # 8% of each line, rounded half-even: 3.20+1.20+9.60
        "creator_commission": "8.75",  # 5%: 2.00 + 0.75 + 6.00
        "fulfillment_fees": "5.25",  # 3%: 1.20 + 0.45 + 3.60
        "refunds": "0.00",
        "adjustments": "0.00",
        "net_payout": "146.98",
        "line_count": 2,
        "ledger_entry": settlement.entry_id,
        "payout_entry": None,
        "payout_reference": None,
        "failure_reason": None,
        "created": body["created"],
        "paid_at": None,
        "failed_at": None,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "pending"}, 3),
        ({"status": "paid"}, 0),
        ({"currency": "USD"}, 3),
        ({"currency": "JPY"}, 0),
        ({"period_end": "PERIOD"}, 3),
        ({"period_end_before": "BEFORE"}, 0),
    ],
)
def test_settlement_filters(settled, finance, query, expected):
    query = {
        key: {"PERIOD": date_ago(3).isoformat(), "BEFORE": date_ago(4).isoformat()}.get(v, v)
        for key, v in query.items()
    }
    response = finance.get("/api/v1/settlements", query)
    assert response.status_code == 200
    assert len(response.json()["results"]) == expected


def test_settlement_filters_by_partner_and_run(settled, finance):
    settlement = brand_settlement(settled)
    by_partner = finance.get("/api/v1/settlements", {"partner": settled.brand.pk}).json()
    assert [s["id"] for s in by_partner["results"]] == [settlement.pk]
    by_run = finance.get("/api/v1/settlements", {"run": settlement.run_id}).json()
    assert len(by_run["results"]) == 3


def test_listing_settlements_takes_a_fixed_number_of_queries(
    parties, finance, django_assert_max_num_queries
):
    flows.sell(parties, at=day(5), released_at=day(4))
    run_settlements(date_ago(3))
    with django_assert_max_num_queries(6) as few:
        assert len(finance.get("/api/v1/settlements").json()["results"]) == 3
    for _ in range(4):
        brand = factories.BrandFactory(fulfillment_partner=parties.fulfillment)
        flows.sell(
            Parties(parties.host_app, parties.fulfillment, brand, parties.creator),
            at=day(3),
            released_at=day(2),
        )
    run_settlements(date_ago(1))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(finance.get("/api/v1/settlements").json()["results"]) == 9


# --- Lines, JSON and CSV ------------------------------------------------------------------------


def all_json_lines(client, settlement_id: str) -> list[dict]:
    lines, url = [], f"/api/v1/settlements/{settlement_id}/lines?page_size=2"
    while url:
        page = client.get(url).json()
        lines.extend(page["results"])
        url = page["next"]
    return lines


def test_the_lines_as_csv_equal_the_lines_as_json(settled, finance):
    # a refund after settlement and a second settlement with more lines than a page
    order = Order.objects.filter(brand=settled.brand).order_by("created").first()
    flows.refund(order, units={order.lines.first(): 1}, at=day(2))
    for _ in range(3):
        flows.sell(settled, at=day(2), released_at=day(2))
    run_settlements(date_ago(1))
    brand = client_for(partner=settled.brand)
    settlement = Settlement.objects.get(partner=settled.brand, period_end=date_ago(1))

    as_json = all_json_lines(brand, settlement.pk)
    response = brand.get(f"/api/v1/settlements/{settlement.pk}/lines", {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(as_json[0])  # same columns, in order
    assert rows == [
        {key: "" if value is None else str(value) for key, value in line.items()}
        for line in as_json
    ]
    assert len(rows) == settlement.line_count == 4
    assert {row["kind"] for row in rows} == {"release", "refund"}
    assert all(row["order"] for row in rows)
    assert sum(int(row["amount"].replace(".", "")) for row in rows) == settlement.net_payout


def test_lines_list_every_ledger_line_with_its_order(settled, finance):
    settlement = brand_settlement(settled)
    lines = all_json_lines(finance, settlement.pk)
    assert len(lines) == settlement.line_count
    assert all(line["kind"] == "release" and line["order"] for line in lines)
    assert all(line["share"] == "brand_net" for line in lines)
    total = sum(int(line["amount"].replace(".", "")) for line in lines)
    assert total == settlement.net_payout


def test_csv_of_lines_for_finance_has_a_header_row(settled, finance):
    settlement = Settlement.objects.get(partner=settled.fulfillment)
    response = finance.get(f"/api/v1/settlements/{settlement.pk}/lines", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header == [
        "id",
        "entry",
        "kind",
        "share",
        "order",
        "order_line",
        "created",
        "currency",
        "debit",
        "credit",
        "amount",
    ]
    assert len(rows) == settlement.line_count


# --- Paying out ---------------------------------------------------------------------------------


def test_mark_paid_moves_the_money_to_paid_out_and_tells_the_payee(settled, finance):
    settlement = brand_settlement(settled)
    url = f"/api/v1/settlements/{settlement.pk}/mark-paid"

    response = finance.post(url, {"payout_reference": "wire-42"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "paid"
    assert body["payout_reference"] == "wire-42"
    assert body["paid_at"]
    assert flows.in_payout(settled.brand) == 0
    assert flows.paid_out(settled.brand) == settlement.net_payout
    payout = LedgerEntry.objects.get(pk=body["payout_entry"])
    assert payout.kind == EntryKind.PAYOUT
    event = Event.objects.get(type="settlement.paid", object_id=settlement.pk)
    assert list(event.recipients.values_list("partner_id", flat=True)) == [settled.brand.pk]
    assert event.data == body
    # it is no longer pending: paying or failing it again is refused, and nothing moves
    again = finance.post(url, {"payout_reference": "wire-43"}, format="json")
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "settlement_not_pending"
    failed = finance.post(
        f"/api/v1/settlements/{settlement.pk}/mark-failed", {"reason": "x"}, format="json"
    )
    assert failed.status_code == 409
    assert flows.paid_out(settled.brand) == settlement.net_payout


def test_mark_failed_returns_the_funds_and_the_next_run_pays_them(settled, finance):
    settlement = brand_settlement(settled)

    response = finance.post(
        f"/api/v1/settlements/{settlement.pk}/mark-failed",
        {"reason": "Account closed (R02)"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "failed"
    assert response.json()["failure_reason"] == "Account closed (R02)"
    assert flows.in_payout(settled.brand) == 0
    assert flows.available(settled.brand) == settlement.net_payout
    event = Event.objects.get(type="settlement.failed", object_id=settlement.pk)
    assert event.data["status"] == "failed"
    # the returned funds are settled again by the next run, shown as an adjustment
    run_settlements(date_ago(0))
    retry = Settlement.objects.get(partner=settled.brand, period_end=date_ago(0))
    assert retry.net_payout == retry.adjustments == settlement.net_payout
    assert retry.gross == 0
    assert flows.available(settled.brand) == 0


def test_only_finance_marks_payouts_and_bad_input_is_a_400(settled, finance, ops):
    settlement = brand_settlement(settled)
    brand = client_for(partner=settled.brand)
    url = f"/api/v1/settlements/{settlement.pk}/mark-paid"
    assert ops.post(url, {"payout_reference": "x"}, format="json").status_code == 403
    assert brand.post(url, {"payout_reference": "x"}, format="json").status_code == 403
    missing = finance.post(url, {}, format="json")
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["attr"] == "payout_reference"
    assert (
        finance.post(
            "/api/v1/settlements/stl_nope/mark-paid", {"payout_reference": "x"}, format="json"
        ).status_code
        == 404
    )


def test_the_created_event_carries_the_settlement_as_the_api_shows_it(settled, finance):
    settlement = brand_settlement(settled)
    event = Event.objects.get(type="settlement.created", object_id=settlement.pk)
    assert event.sequence == 1
    assert list(event.recipients.values_list("partner_id", flat=True)) == [settled.brand.pk]
    assert event.data == finance.get(f"/api/v1/settlements/{settlement.pk}").json()


# --- Payout terms on the partner ----------------------------------------------------------------


def test_ops_sets_a_payees_payout_schedule_and_minimum_payout(brand, ops, finance):
    response = ops.patch(
        f"/api/v1/partners/{brand.pk}",
        {"payout_schedule": "weekly", "minimum_payout": {"USD": "25.00", "JPY": "3000"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["payout_schedule"] == "weekly"
    assert response.json()["minimum_payout"] == {"JPY": "3000", "USD": "25.00"}
    brand.refresh_from_db()
    assert brand.minimum_payout == {"USD": 2500, "JPY": 3000}
    shown = finance.get(f"/api/v1/partners/{brand.pk}").json()
    assert shown["minimum_payout"] == {"JPY": "3000", "USD": "25.00"}
    assert (
        finance.patch(
            f"/api/v1/partners/{brand.pk}", {"minimum_payout": {}}, format="json"
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("minimum", "code"),
    [
        ({"USD": "25.001"}, "too_many_decimal_places"),
        ({"JPY": "1.5"}, "too_many_decimal_places"),
        ({"XXX": "1"}, "invalid_currency"),
        ({"USD": "-1.00"}, "negative_amount"),
        ({"USD": 25}, "invalid_amount"),
        ("25.00", "invalid"),
    ],
)
def test_a_bad_minimum_payout_is_a_400(brand, ops, minimum, code):
    response = ops.patch(f"/api/v1/partners/{brand.pk}", {"minimum_payout": minimum}, format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == code
    assert error["attr"] == "minimum_payout"


def test_ops_onboards_a_payee_with_its_payout_terms(ops):
    response = ops.post(
        "/api/v1/partners",
        {
            "kind": "creator",
            "name": "Ana",
            "payout_schedule": "monthly",
            "minimum_payout": {"USD": "50.00"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["minimum_payout"] == {"USD": "50.00"}


def test_lines_and_runs_lists_take_a_fixed_number_of_queries(
    settled, finance, django_assert_max_num_queries
):
    settlement = brand_settlement(settled)
    url = f"/api/v1/settlements/{settlement.pk}/lines"
    with django_assert_max_num_queries(6) as few:
        assert len(finance.get(url).json()["results"]) == 2
    for _ in range(5):
        flows.sell(settled, at=day(2), released_at=day(2))
    run_settlements(date_ago(1))
    later = Settlement.objects.get(partner=settled.brand, period_end=date_ago(1))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(finance.get(f"/api/v1/settlements/{later.pk}/lines").json()["results"]) == 5
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(finance.get("/api/v1/settlement-runs").json()["results"]) == 2


def test_the_payees_balance_shows_money_in_payout_until_it_is_paid(settled, finance):
    # given a brand whose available balance a run has moved into a pending settlement
    settlement = brand_settlement(settled)
    brand = client_for(partner=settled.brand)
    amount = to_decimal_string(settlement.net_payout, settlement.currency)

    before = _balance(brand.get("/api/v1/balances").json(), settlement.currency)
    finance.post(
        f"/api/v1/settlements/{settlement.pk}/mark-paid", {"payout_reference": "w"}, format="json"
    )
    after = _balance(brand.get("/api/v1/balances").json(), settlement.currency)

    # then the balance says where the money is at each step, to the cent
    assert settlement.net_payout > 0
    assert (before["in_payout"], before["paid_out"]) == (amount, _zero(settlement.currency))
    assert (after["in_payout"], after["paid_out"]) == (_zero(settlement.currency), amount)


def _balance(rows: list[dict], currency: str) -> dict:
    return next(row for row in rows if row["currency"] == currency)


def _zero(currency: str) -> str:
    return to_decimal_string(0, currency)
