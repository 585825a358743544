"""The commissions API: plans, an order's breakdown, ledger entries and balances."""

from decimal import Decimal

import pytest

from commissions.models import CommissionPlan, LedgerEntry
from tests import factories, flows
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def codes(response) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


# --- Commission plans ------------------------------------------------------------------------


def test_ops_creates_a_plan_and_finance_reads_it(ops, finance, brand):
    body = {
        "name": "Glow US",
        "platform_rate_bps": 800,
        "creator_rate_bps": 500,
        "fulfillment_rate_bps": 300,
        "fulfillment_fee_fixed": "1.50",
        "currency": "USD",
        "brand": brand.pk,
        "effective_from": "2026-01-01T00:00:00Z",
    }
    response = ops.post("/api/v1/commission-plans", body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["id"].startswith("cpl_")
    assert created["fulfillment_fee_fixed"] == "1.50"
    assert (created["brand"], created["currency"], created["host_app"]) == (brand.pk, "USD", None)
    assert CommissionPlan.objects.get().fulfillment_fee_fixed == 150

    listed = finance.get("/api/v1/commission-plans", {"brand": brand.pk}).json()["results"]
    assert [p["id"] for p in listed] == [created["id"]]
    assert finance.get(f"/api/v1/commission-plans/{created['id']}").json() == created


@pytest.mark.parametrize(
    ("body", "code", "attr"),
    [
        ({"platform_rate_bps": 6000, "creator_rate_bps": 4001}, "rates_exceed_100_percent", None),
        ({"platform_rate_bps": 10001}, "max_value", "platform_rate_bps"),
        ({"platform_rate_bps": -1}, "min_value", "platform_rate_bps"),
        ({"platform_rate_bps": 800, "fulfillment_fee_fixed": "2"}, "currency_required", None),
        (
            {"platform_rate_bps": 800, "fulfillment_fee_fixed": "1.5", "currency": "JPY"},
            "too_many_decimal_places",
            "fulfillment_fee_fixed",
        ),
        (
            {"platform_rate_bps": 800, "fulfillment_fee_fixed": "-1", "currency": "USD"},
            "negative_amount",
            "fulfillment_fee_fixed",
        ),
        ({"platform_rate_bps": 800, "currency": "usd"}, "invalid_currency", "currency"),
        ({"platform_rate_bps": 800, "brand": "prt_nope"}, "invalid_reference", "brand"),
        (
            {
                "platform_rate_bps": 800,
                "effective_from": "2026-02-01T00:00:00Z",
                "effective_to": "2026-01-01T00:00:00Z",
            },
            "invalid_effective_range",
            "effective_to",
        ),
    ],
)
def test_invalid_plans_are_400(ops, body, code, attr):
    response = ops.post("/api/v1/commission-plans", body, format="json")

    assert response.status_code == 400, response.json()
    assert code in codes(response)
    if attr:
        assert attr in [e["attr"] for e in response.json()["errors"]]
    assert not CommissionPlan.objects.exists()


def test_a_host_app_scope_must_name_a_host_app(ops, brand):
    response = ops.post(
        "/api/v1/commission-plans", {"platform_rate_bps": 1, "host_app": brand.pk}, format="json"
    )
    assert response.status_code == 400
    assert codes(response) == ["invalid_reference"]


def test_ops_edits_a_plan_within_the_rules(ops):
    plan = factories.CommissionPlanFactory()
    url = f"/api/v1/commission-plans/{plan.pk}"

    response = ops.patch(url, {"creator_rate_bps": 1000}, format="json")
    assert response.status_code == 200
    assert response.json()["creator_rate_bps"] == 1000

    response = ops.patch(url, {"platform_rate_bps": 9000}, format="json")
    assert response.status_code == 400
    assert codes(response) == ["rates_exceed_100_percent"]
    plan.refresh_from_db()
    assert (plan.platform_rate_bps, plan.creator_rate_bps) == (800, 1000)


def test_who_may_touch_plans(finance, brand_client, host_client):
    plan = factories.CommissionPlanFactory()
    body = {"platform_rate_bps": 100}
    assert finance.post("/api/v1/commission-plans", body, format="json").status_code == 403
    assert finance.patch(f"/api/v1/commission-plans/{plan.pk}", body).status_code == 403
    assert brand_client.get("/api/v1/commission-plans").status_code == 403
    assert host_client.get(f"/api/v1/commission-plans/{plan.pk}").status_code == 403


# --- Breakdown -----------------------------------------------------------------------------------


@pytest.fixture
def paid_order(brand, host_app, creator, plan):
    """19.99 x 2 + 24.50, shipping 5.00, tax 5.16 under 8/5/3%, then one lipstick refunded."""
    factories.CommissionPlanFactory(currency="USD", fulfillment_fee_fixed=150, brand=brand)
    order = flows.pay(
        flows.make_order(
            brand=brand,
            host_app=host_app,
            creator=creator,
            items=[(1999, 2, "beauty"), (2450, 1, "beauty")],
            shipping=500,
            tax=516,
        )
    )
    flows.refund(order, units={order.lines.get(position=0): 1})
    return order


def test_the_breakdown_shows_where_the_money_went(brand_client, paid_order):
    response = brand_client.get(f"/api/v1/orders/{paid_order.pk}/breakdown")

    assert response.status_code == 200
    body = response.json()
    lipstick = paid_order.lines.get(position=0)
    assert body["order"] == paid_order.pk
    assert body["currency"] == "USD"
    assert body["plan"]["fulfillment_fee_fixed"] == "1.50"
    assert body["lines"][0] == {
        "line": lipstick.pk,
        "sku": lipstick.sku,
        "quantity": 2,
        "paid": "39.98",
        "platform_commission": "3.20",
        "creator_commission": "2.00",
        "fulfillment_fee": "2.13",
        "brand_net": "32.65",
        "refunded": "19.99",
        "rates": {
            "plan": paid_order.commission_plan_id,
            "platform_rate_bps": 800,
            "creator_rate_bps": 500,
            "fulfillment_rate_bps": 300,
        },
    }
    assert body["lines"][1]["paid"] == "24.50"
    assert body["totals"] == {
        "paid": "74.64",
        "refunded": "19.99",
        "platform_commission": "3.56",  # 3.20 + 1.96 - 1.60
        "creator_commission": "2.22",  # 2.00 + 1.22 - 1.00
        "fulfillment_fees": "2.38",  # 2.13 + 1.31 - 1.06
        "shipping": "5.00",
        "tax": "5.16",
        "brand_net": "36.33",  # 32.65 + 20.01 - 16.33
    }
    [refund] = body["refunds"]
    assert refund["refund"] == paid_order.refunds.get().pk
    assert (refund["amount"], refund["brand_net"], refund["shipping"]) == ("19.99", "16.33", "0.00")
    assert refund["lines"] == [
        {
            "line": lipstick.pk,
            "amount": "19.99",
            "platform_commission": "1.60",
            "creator_commission": "1.00",
            "fulfillment_fee": "1.06",
            "brand_net": "16.33",
        }
    ]


def test_every_party_of_the_order_and_staff_see_its_breakdown(
    paid_order, finance, ops, host_client, creator_client, fulfillment_client
):
    url = f"/api/v1/orders/{paid_order.pk}/breakdown"
    for client in (finance, ops, host_client, creator_client, fulfillment_client):
        assert client.get(url).status_code == 200


def test_another_partners_breakdown_is_404(paid_order):
    url = f"/api/v1/orders/{paid_order.pk}/breakdown"
    for partner in (
        factories.BrandFactory(),
        factories.HostAppFactory(),
        factories.CreatorFactory(),
        factories.FulfillmentFactory(),
    ):
        response = client_for(partner=partner).get(url)
        assert response.status_code == 404
        assert codes(response) == ["not_found"]
    assert (
        client_for(partner=factories.BrandFactory())
        .get("/api/v1/orders/ord_missing/breakdown")
        .status_code
        == 404
    )


def test_an_unpaid_order_breaks_down_to_nothing(brand_client, brand, host_app):
    order = flows.make_order(brand=brand, host_app=host_app, currency="JPY", items=[(1000, 1, "x")])
    body = brand_client.get(f"/api/v1/orders/{order.pk}/breakdown").json()
    assert body["plan"] is None
    assert body["totals"]["paid"] == "0"
    assert body["lines"][0]["rates"]["platform_rate_bps"] is None


# --- Ledger entries and balances -----------------------------------------------------------------


def test_finance_reads_every_entry_with_all_its_lines(finance, paid_order):
    body = finance.get("/api/v1/ledger/entries", {"order": paid_order.pk}).json()

    assert [e["kind"] for e in body["results"]] == ["refund", "sale"]
    sale = body["results"][1]
    assert set(sale) == {"id", "kind", "order", "created", "currency", "lines"}
    assert set(sale["lines"][0]) == {"account", "partner", "debit", "credit"}
    debits = sum(Decimal(line["debit"]) for line in sale["lines"])
    credits = sum(Decimal(line["credit"]) for line in sale["lines"])
    assert debits == credits == Decimal("74.64")
    assert any(line["partner"] is None for line in sale["lines"])  # the platform's accounts


def test_a_partner_sees_only_its_own_lines(paid_order, brand, brand_client, creator_client):
    other = flows.pay(
        flows.make_order(brand=factories.BrandFactory(), host_app=paid_order.host_app)
    )

    body = brand_client.get("/api/v1/ledger/entries").json()

    assert {e["order"] for e in body["results"]} == {paid_order.pk}
    for entry in body["results"]:
        assert {line["partner"] for line in entry["lines"]} == {brand.pk}
    sale = next(e for e in body["results"] if e["kind"] == "sale")
    assert [line["credit"] for line in sale["lines"]] == ["32.65", "20.01"]

    assert creator_client.get("/api/v1/ledger/entries", {"order": other.pk}).json()["results"] == []
    assert (
        brand_client.get("/api/v1/ledger/entries", {"partner": other.brand_id}).json()["results"]
        == []
    )


def test_ledger_filters(finance, paid_order, brand):
    flows.complete(paid_order)
    release = LedgerEntry.objects.get(kind="release")
    account = release.lines.filter(partner=brand, credit__gt=0).get().account_id

    def ids(**params):
        return [e["id"] for e in finance.get("/api/v1/ledger/entries", params).json()["results"]]

    assert ids(kind="release") == [release.pk]
    assert ids(account=account) == [release.pk]
    assert ids(created_after=release.created.isoformat()) == [release.pk]
    assert len(ids(partner=brand.pk)) == 3
    assert ids(kind="payout") == []
    assert finance.get("/api/v1/ledger/entries", {"kind": "nope"}).status_code == 400


def test_ledger_list_runs_a_fixed_number_of_queries(
    finance, brand, brand_client, host_app, plan, django_assert_max_num_queries
):
    flows.pay(flows.make_order(brand=brand, host_app=host_app))
    with django_assert_max_num_queries(8):
        assert len(finance.get("/api/v1/ledger/entries").json()["results"]) == 1
    with django_assert_max_num_queries(8):
        assert len(brand_client.get("/api/v1/ledger/entries").json()["results"]) == 1
    for _ in range(6):
        flows.refund_by_amount(flows.pay(flows.make_order(brand=brand, host_app=host_app)), 100)
    with django_assert_max_num_queries(8):
        assert len(finance.get("/api/v1/ledger/entries").json()["results"]) == 13
    with django_assert_max_num_queries(8):
        assert len(brand_client.get("/api/v1/ledger/entries").json()["results"]) == 13


def test_ops_may_not_read_the_ledger(ops):
    assert ops.get("/api/v1/ledger/entries").status_code == 403
    assert ops.get("/api/v1/balances").status_code == 403


def test_balances_per_currency(paid_order, brand, brand_client, finance, host_app):
    jpy = flows.pay(
        flows.make_order(
            brand=brand, host_app=host_app, currency="JPY", items=[(1000, 1, "beauty")]
        )
    )
    flows.complete(jpy)

    assert brand_client.get("/api/v1/balances").json() == [
        {
            "currency": "JPY",
            "pending": "0",
            "available": "890",
            "in_payout": "0",
            "paid_out": "0",
            "owed": "0",
        },
        {
            "currency": "USD",
            "pending": "36.33",
            "available": "0.00",
            "in_payout": "0.00",
            "paid_out": "0.00",
            "owed": "0.00",
        },
    ]
    assert finance.get("/api/v1/balances", {"partner": brand.pk}).json() == (
        brand_client.get("/api/v1/balances").json()
    )


def test_balances_who_asks_for_whom(brand_client, finance):
    response = finance.get("/api/v1/balances")
    assert response.status_code == 400
    assert codes(response) == ["required"]
    assert finance.get("/api/v1/balances", {"partner": "prt_nope"}).status_code == 400
    other = factories.BrandFactory()
    assert brand_client.get("/api/v1/balances", {"partner": other.pk}).status_code == 404
    assert brand_client.get("/api/v1/balances", {"partner": brand_client.partner.pk}).json() == []


def test_breakdown_runs_a_fixed_number_of_queries(
    brand, host_app, brand_client, plan, django_assert_max_num_queries
):
    small = flows.pay(flows.make_order(brand=brand, host_app=host_app))
    big = flows.pay(
        flows.make_order(brand=brand, host_app=host_app, items=[(999, 2, "beauty")] * 8)
    )
    for line in big.lines.all()[:4]:
        flows.refund(big, units={line: 1})

    for order in (small, big):
        with django_assert_max_num_queries(7):
            assert brand_client.get(f"/api/v1/orders/{order.pk}/breakdown").status_code == 200
