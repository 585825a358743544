"""Placing orders: catalog prices, reserved inventory, one brand and currency, attribution."""

import pytest

from orders.models import Order
from partners.choices import BrandAccess
from partners.models import Event
from tests import factories
from tests.conftest import client_for
from tests.orders.helpers import act, codes, order_in, place_order

pytestmark = pytest.mark.django_db


def _post(client, lines, **extra):
    return client.post("/api/v1/orders", {"lines": lines, **extra}, format="json")


def test_an_order_takes_catalog_prices_and_reserves_inventory(
    host_client, host_app, brand, fulfillment, product
):
    response = _post(
        host_client,
        [{"product": product.pk, "quantity": 3}],
        buyer={"reference": "viewer-1", "email": "ana@example.com"},
        shipping_address={"city": "Austin", "country": "US"},
        shipping_amount="4.99",
        tax_amount="0.5",
    )
    # a price is not an input: prices come from the catalog, and a field the endpoint does not
    # take is refused by name rather than dropped
    priced = _post(host_client, [{"product": product.pk, "quantity": 1}], unit_price="0.01")
    assert priced.status_code == 400
    assert [(e["code"], e["attr"]) for e in priced.json()["errors"]] == [
        ("unknown_field", "unit_price")
    ]

    assert response.status_code == 201, response.json()
    order = response.json()
    assert order["id"].startswith("ord_")
    assert order["status"] == "pending_payment"
    assert (order["host_app"], order["brand"], order["fulfillment_partner"]) == (
        host_app.pk,
        brand.pk,
        fulfillment.pk,
    )
    assert order["live_session"] is None
    assert order["creator"] is None
    assert order["currency"] == "USD"
    assert order["subtotal"] == "59.97"
    assert order["shipping_amount"] == "4.99"
    assert order["tax_amount"] == "0.50"
    assert order["total"] == "65.46"
    assert order["refunded_amount"] == "0.00"
    assert order["buyer"] == {"reference": "viewer-1", "email": "ana@example.com"}
    assert order["shipping_address"] == {"city": "Austin", "country": "US"}
    [line] = order["lines"]
    assert line["id"].startswith("oln_")
    assert (line["product"], line["sku"], line["quantity"]) == (product.pk, product.sku, 3)
    assert (line["unit_price"], line["subtotal"], line["refunded_quantity"]) == (
        "19.99",
        "59.97",
        0,
    )
    product.refresh_from_db()
    assert product.inventory == 97
    created = Event.objects.get(object_id=order["id"])
    assert created.type == "order.created"
    assert created.data == order


def test_an_order_from_a_live_show_is_attributed_to_its_creator(
    host_client, creator, live_session, product
):
    order = place_order(host_client, product, live_session=live_session)

    assert order["live_session"] == live_session.pk
    assert order["creator"] == creator.pk
    assert client_for(partner=creator).get(f"/api/v1/orders/{order['id']}").status_code == 200


def test_a_show_must_be_broadcast_on_the_host_app(host_client, product):
    elsewhere = factories.LiveSessionFactory()  # produced by and broadcast on another host app

    response = _post(
        host_client, [{"product": product.pk, "quantity": 1}], live_session=elsewhere.pk
    )

    assert response.status_code == 400
    assert codes(response) == ["invalid_reference"]
    assert response.json()["errors"][0]["attr"] == "live_session"


def test_a_show_broadcast_on_several_host_apps_attributes_orders_from_each(
    fulfillment, brand, product, creator
):
    host_apps = factories.HostAppFactory.create_batch(2)
    session = factories.LiveSessionFactory(
        producer=fulfillment, creator=creator, host_apps=host_apps
    )

    orders = [
        place_order(client_for(partner=h), product, quantity=1, live_session=session)
        for h in host_apps
    ]

    assert [o["creator"] for o in orders] == [creator.pk, creator.pk]
    assert {o["host_app"] for o in orders} == {h.pk for h in host_apps}


def test_lines_naming_the_same_product_are_merged(host_client, product):
    response = _post(
        host_client,
        [{"product": product.pk, "quantity": 1}, {"product": product.pk, "quantity": 2}],
    )

    assert response.status_code == 201
    [line] = response.json()["lines"]
    assert line["quantity"] == 3
    assert response.json()["subtotal"] == "59.97"


def test_several_products_of_one_brand(host_client, brand, product):
    other = factories.ProductFactory(brand=brand, price=500)

    response = _post(
        host_client,
        [{"product": other.pk, "quantity": 2}, {"product": product.pk, "quantity": 1}],
    )

    assert response.status_code == 201
    assert [line["product"] for line in response.json()["lines"]] == [other.pk, product.pk]
    assert response.json()["subtotal"] == "29.99"


def test_one_brand_and_one_currency_per_order(host_client, brand, product):
    other_brand = factories.ProductFactory()
    other_currency = factories.ProductFactory(brand=brand, currency="EUR")

    for other in (other_brand, other_currency):
        response = _post(
            host_client,
            [{"product": product.pk, "quantity": 1}, {"product": other.pk, "quantity": 1}],
        )
        assert response.status_code == 422
        assert codes(response) == ["mixed_order"]
    product.refresh_from_db()
    assert product.inventory == 100
    assert not Order.objects.exists()


def test_an_order_that_would_oversell_is_409(host_client, brand, product):
    scarce = factories.ProductFactory(brand=brand, inventory=2)

    response = _post(
        host_client,
        [{"product": product.pk, "quantity": 1}, {"product": scarce.pk, "quantity": 3}],
    )

    assert response.status_code == 409
    assert codes(response) == ["insufficient_inventory"]
    assert response.json()["errors"][0]["attr"] == "lines.1.quantity"
    # nothing was reserved
    product.refresh_from_db()
    scarce.refresh_from_db()
    assert (product.inventory, scarce.inventory) == (100, 2)


def test_products_a_host_app_may_not_sell_answer_like_unknown_ones(product):
    invite_only = factories.HostAppFactory(brand_access=BrandAccess.INVITE_ONLY)
    client = client_for(partner=invite_only)

    not_enrolled = _post(client, [{"product": product.pk, "quantity": 1}])
    unknown = _post(client, [{"product": "prd_nope", "quantity": 1}])
    factories.EnrollmentFactory(host_app=invite_only, brand=product.brand)
    enrolled = _post(client, [{"product": product.pk, "quantity": 1}])

    assert not_enrolled.status_code == unknown.status_code == 400
    assert not_enrolled.json()["errors"] == [
        {**unknown.json()["errors"][0], "detail": not_enrolled.json()["errors"][0]["detail"]}
    ]
    assert codes(not_enrolled) == ["invalid_reference"]
    assert not_enrolled.json()["errors"][0]["attr"] == "lines.0.product"
    assert enrolled.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"lines": []},
        {"lines": [{"product": "x", "quantity": 0}]},
        {"lines": [{"product": "x"}]},
        {"lines": "x"},
        {"lines": [{"product": "PRODUCT", "quantity": 1}], "shipping_amount": "1.001"},
        {"lines": [{"product": "PRODUCT", "quantity": 1}], "tax_amount": "-1"},
        {"lines": [{"product": "PRODUCT", "quantity": 1}], "shipping_amount": 4.99},
        {"lines": [{"product": "PRODUCT", "quantity": 1}], "buyer": {"email": "nope"}},
    ],
)
def test_bad_input_is_400(host_client, product, body):
    if "lines" in body and isinstance(body["lines"], list):
        body["lines"] = [
            {**line, "product": product.pk} if line.get("product") == "PRODUCT" else line
            for line in body["lines"]
        ]

    response = host_client.post("/api/v1/orders", body, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["type"] == "validation_error"
    product.refresh_from_db()
    assert product.inventory == 100


def test_malformed_json_is_400(host_client):
    response = host_client.post(
        "/api/v1/orders", data='{"lines": [', content_type="application/json"
    )

    assert response.status_code == 400


@pytest.mark.parametrize("role", ["fulfillment", "brand", "creator", "ops", "finance"])
def test_only_host_apps_place_orders(role, roles, product):
    response = _post(roles[role], [{"product": product.pk, "quantity": 1}])

    assert response.status_code == 403


class TestMoneyEdgeCases:
    def test_a_yen_order(self, host_client, brand):
        yen = factories.ProductFactory(brand=brand, currency="JPY", price=1999)

        order = place_order(host_client, yen, quantity=3, shipping_amount="500", tax_amount="0")
        wrong = act(host_client, order["id"], "pay", {"amount": "6497.0", "payment_reference": "p"})
        paid = act(host_client, order["id"], "pay", {"amount": "6497", "payment_reference": "p"})

        assert order["currency"] == "JPY"
        assert (order["subtotal"], order["shipping_amount"], order["total"]) == (
            "5997",
            "500",
            "6497",
        )
        assert order["lines"][0]["unit_price"] == "1999"
        assert codes(wrong) == ["too_many_decimal_places"]
        assert paid.status_code == 200
        assert paid.json()["status"] == "paid"

    def test_a_dinar_order(self, host_client, brand):
        dinar = factories.ProductFactory(brand=brand, currency="KWD", price=12345)

        order = place_order(host_client, dinar, quantity=2, tax_amount="0.001")
        response = host_client.post(
            "/api/v1/orders",
            {"lines": [{"product": dinar.pk, "quantity": 1}], "shipping_amount": "0.0001"},
            format="json",
        )

        assert (order["subtotal"], order["tax_amount"], order["total"]) == (
            "24.690",
            "0.001",
            "24.691",
        )
        assert response.status_code == 400
        assert codes(response) == ["too_many_decimal_places"]


class TestPay:
    def test_the_amount_must_be_the_total(self, host_client, product):
        order = place_order(host_client, product, quantity=1)

        short = act(host_client, order["id"], "pay", {"amount": "19.98", "payment_reference": "p"})
        bad = act(host_client, order["id"], "pay", {"amount": "19.999", "payment_reference": "p"})
        missing = act(host_client, order["id"], "pay", {"amount": "19.99"})
        padded = act(
            host_client, order["id"], "pay", {"amount": "19.990", "payment_reference": "p"}
        )

        assert short.status_code == 422
        assert codes(short) == ["amount_mismatch"]
        assert bad.status_code == 400
        assert missing.status_code == 400
        assert padded.status_code == 400
        assert Order.objects.get(pk=order["id"]).status == "pending_payment"

    def test_payment_records_the_reference(self, host_client, product):
        order = place_order(host_client, product, quantity=1)

        paid = act(
            host_client, order["id"], "pay", {"amount": "19.99", "payment_reference": "pi_9"}
        )

        assert paid.json()["payment_reference"] == "pi_9"
        assert paid.json()["paid_at"] is not None


def test_ship_needs_a_carrier_and_tracking_number(roles, product):
    order_id = order_in("accepted", roles, product)

    response = act(roles["fulfillment"], order_id, "ship", {"carrier": "UPS"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "tracking_number"
    assert Order.objects.get(pk=order_id).status == "accepted"


def test_outsiders_get_404_for_everything_about_an_order(outsiders, roles, product, live_session):
    order_id = order_in("paid", roles, product, live_session=live_session)
    paths = ["", "/events", "/refunds"]

    for role, client in outsiders.items():
        for path in paths:
            assert client.get(f"/api/v1/orders/{order_id}{path}").status_code == 404, (role, path)
        assert client.get("/api/v1/orders").json()["results"] == []
    assert act(outsiders["host_app"], order_id, "cancel").status_code == 404
    assert act(outsiders["fulfillment"], order_id, "accept").status_code == 404
    assert act(outsiders["host_app"], order_id, "refunds").status_code == 404
    assert Order.objects.get(pk=order_id).status == "paid"


def test_each_party_lists_its_orders(roles, product, live_session):
    with_session = place_order(roles["host_app"], product, live_session=live_session)
    without = place_order(roles["host_app"], product)

    def listed(role):
        return {o["id"] for o in roles[role].get("/api/v1/orders").json()["results"]}

    assert (
        listed("host_app")
        == listed("brand")
        == listed("fulfillment")
        == listed("ops")
        == {
            with_session["id"],
            without["id"],
        }
    )
    assert listed("creator") == {with_session["id"]}


def test_filters(roles, product, live_session, brand):
    host = roles["host_app"]
    from_show = order_in("paid", roles, product, live_session=live_session)
    pending = place_order(host, product)["id"]
    other_host = place_order(client_for(partner=factories.HostAppFactory()), product)["id"]
    created = Order.objects.get(pk=pending).created.isoformat().replace("+00:00", "Z")

    def ids(client, query):
        response = client.get("/api/v1/orders", {**query})
        assert response.status_code == 200, response.json()
        return {o["id"] for o in response.json()["results"]}

    assert ids(host, {"status": "paid"}) == {from_show}
    assert ids(host, {"live_session": live_session.pk}) == {from_show}
    assert ids(host, {"creator": live_session.creator_id}) == {from_show}
    assert ids(roles["ops"], {"host_app": roles["host_app"].partner.pk}) == {from_show, pending}
    assert ids(roles["ops"], {"brand": brand.pk}) == {from_show, pending, other_host}
    assert ids(host, {"created_after": created}) == {pending}
    assert ids(host, {"created_before": created}) == {from_show}
    assert host.get("/api/v1/orders", {"status": "lost"}).status_code == 400


def test_pagination_walks_every_order_once(host_client, product):
    placed = {place_order(host_client, product, quantity=1)["id"] for _ in range(5)}

    seen, url = [], "/api/v1/orders?page_size=2"
    while url:
        page = host_client.get(url).json()
        seen += [o["id"] for o in page["results"]]
        url = page["next"]

    assert len(seen) == 5
    assert set(seen) == placed


@pytest.mark.parametrize("size", [2, 25])
def test_lists_run_a_fixed_number_of_queries(
    size, roles, product, live_session, django_assert_num_queries
):
    # given ``size`` orders, the last one paid and refunded ``size - 1`` times
    host = roles["host_app"]
    orders = [
        place_order(host, product, quantity=2, live_session=live_session) for _ in range(size)
    ]
    last = orders[-1]["id"]
    act(host, last, "pay")
    for _ in range(size - 1):
        assert act(host, last, "refunds", {"amount": "0.01"}).status_code == 201
    for client in roles.values():
        client.get("/api/v1/orders")  # each key's first use is recorded once

    # the API key, the page, its lines
    with django_assert_num_queries(3):
        response = roles["brand"].get("/api/v1/orders")
    assert len(response.json()["results"]) == size
    # the API key, the order, its history
    with django_assert_num_queries(3):
        response = roles["creator"].get(f"/api/v1/orders/{last}/events")
    assert len(response.json()["results"]) == 2 + size - 1
    # the API key, the order, the refunds, their lines
    with django_assert_num_queries(4):
        response = roles["finance"].get(f"/api/v1/orders/{last}/refunds")
    assert len(response.json()["results"]) == size - 1
