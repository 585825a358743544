"""Refunds: by line or by amount, restocking, never more than paid, and the refunded status."""

import pytest

from orders.models import Order, Refund
from partners.models import Event
from tests import factories
from tests.orders.helpers import act, actor_of, codes, order_in, place_order, walk_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(roles, brand, product):
    """A paid order: 2 x 19.99 and 1 x 5.00, shipping 4.00, tax 2.00 (total 50.98)."""
    strap = factories.ProductFactory(brand=brand, price=500, inventory=10)
    placed = (
        roles["host_app"]
        .post(
            "/api/v1/orders",
            {
                "lines": [
                    {"product": product.pk, "quantity": 2},
                    {"product": strap.pk, "quantity": 1},
                ],
                "shipping_amount": "4.00",
                "tax_amount": "2.00",
            },
            format="json",
        )
        .json()
    )
    return walk_to("paid", placed["id"], roles)


def _refund(client, order, **body):
    return client.post(f"/api/v1/orders/{order['id']}/refunds", body, format="json")


def _get(client, order):
    return client.get(f"/api/v1/orders/{order['id']}").json()


def test_a_line_refund_returns_its_units_and_can_restock(roles, order, product):
    lipstick = order["lines"][0]

    response = _refund(
        roles["fulfillment"],
        order,
        lines=[{"line": lipstick["id"], "quantity": 1}],
        reason="wrong shade",
        restock=True,
    )

    assert response.status_code == 201, response.json()
    refund = response.json()
    assert refund["id"].startswith("rfd_")
    assert (refund["amount"], refund["shipping_amount"], refund["tax_amount"]) == (
        "19.99",
        "0.00",
        "0.00",
    )
    assert refund["lines"] == [{"line": lipstick["id"], "quantity": 1, "amount": "19.99"}]
    assert refund["restock"] is True
    assert refund["reason"] == "wrong shade"
    assert refund["created_by"] == actor_of(roles["fulfillment"])
    after = _get(roles["host_app"], order)
    assert after["status"] == "paid"
    assert after["refunded_amount"] == "19.99"
    assert after["lines"][0]["refunded_quantity"] == 1
    assert after["lines"][0]["refunded_amount"] == "19.99"
    product.refresh_from_db()
    assert product.inventory == 100 - 2 + 1


def test_without_restock_the_units_stay_sold(roles, order, product):
    _refund(roles["host_app"], order, lines=[{"line": order["lines"][0]["id"], "quantity": 2}])

    product.refresh_from_db()
    assert product.inventory == 98


def test_an_amount_refund_covers_merchandise_first(roles, order):
    response = _refund(roles["finance"], order, amount="10.00", reason="late")

    refund = response.json()
    assert response.status_code == 201
    assert (refund["shipping_amount"], refund["tax_amount"]) == ("0.00", "0.00")
    # spread over what is left of each line: 39.98 and 5.00
    assert [(line["amount"], line["quantity"]) for line in refund["lines"]] == [
        ("8.89", 0),
        ("1.11", 0),
    ]
    assert sum(int(line["amount"].replace(".", "")) for line in refund["lines"]) == 1000


def test_an_amount_past_the_merchandise_returns_shipping_and_tax(roles, order):
    response = _refund(roles["ops"], order, amount="47.98")

    refund = response.json()
    assert response.status_code == 201
    # 44.98 of merchandise, then 3.00 over shipping (4.00) and tax (2.00) in proportion
    assert (refund["shipping_amount"], refund["tax_amount"]) == ("2.00", "1.00")
    assert _get(roles["host_app"], order)["status"] == "paid"


def test_refunding_everything_moves_the_order_to_refunded(roles, order):
    first = _refund(
        roles["host_app"], order, lines=[{"line": order["lines"][0]["id"], "quantity": 2}]
    )
    rest = _refund(roles["host_app"], order, amount="11.00")
    more = _refund(roles["host_app"], order, amount="0.01")

    assert first.status_code == rest.status_code == 201
    after = _get(roles["host_app"], order)
    assert after["status"] == "refunded"
    assert after["refunded_amount"] == after["total"] == "50.98"
    assert rest.json()["shipping_amount"] == "4.00"
    assert rest.json()["tax_amount"] == "2.00"
    assert more.status_code == 409
    assert codes(more) == ["invalid_transition"]
    types = list(
        Event.objects.filter(object_id=order["id"])
        .order_by("sequence")
        .values_list("type", flat=True)
    )
    assert types == ["order.created", "order.paid", "order.refunded", "order.refunded"]
    history = roles["host_app"].get(f"/api/v1/orders/{order['id']}/events").json()["results"]
    assert [(e["type"], e["from_status"], e["to_status"]) for e in history[-2:]] == [
        ("refunded", "paid", "paid"),
        ("refunded", "paid", "refunded"),
    ]


def test_never_more_than_was_paid(roles, order):
    too_much = _refund(roles["host_app"], order, amount="50.99")
    too_many = _refund(
        roles["host_app"], order, lines=[{"line": order["lines"][1]["id"], "quantity": 2}]
    )
    _refund(roles["host_app"], order, amount="50.00")
    past_the_rest = _refund(roles["host_app"], order, amount="0.99")

    for response in (too_much, too_many, past_the_rest):
        assert response.status_code == 409, response.json()
        assert codes(response) == ["refund_exceeds_paid"]
    assert _get(roles["host_app"], order)["refunded_amount"] == "50.00"


def test_a_line_refund_after_an_amount_refund_is_capped_at_what_is_left(roles, order):
    strap = order["lines"][1]  # 1 x 5.00
    _refund(roles["host_app"], order, amount="44.98")  # all the merchandise, by amount

    response = _refund(roles["host_app"], order, lines=[{"line": strap["id"], "quantity": 1}])

    # the line has nothing left to refund
    assert response.status_code == 409
    assert codes(response) == ["refund_exceeds_paid"]


def test_lines_must_belong_to_the_order(roles, order, product):
    other = place_order(roles["host_app"], product, quantity=1)

    response = _refund(
        roles["host_app"], order, lines=[{"line": other["lines"][0]["id"], "quantity": 1}]
    )

    assert response.status_code == 400
    assert codes(response) == ["invalid_reference"]
    assert response.json()["errors"][0]["attr"] == "lines.0.line"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"amount": "1.00", "lines": [{"line": "oln_x", "quantity": 1}]},
        {"amount": "0.00"},
        {"amount": "1.001"},
        {"amount": 1},
        {"amount": "1.00", "restock": True},
        {"lines": [{"line": "oln_x", "quantity": 0}]},
    ],
)
def test_bad_refund_requests_are_400(roles, order, body):
    response = _refund(roles["host_app"], order, **body)

    assert response.status_code == 400, response.json()
    assert not Refund.objects.exists()


def test_refunds_after_completion_are_allowed(roles, product):
    order_id = order_in("completed", roles, product)

    response = roles["host_app"].post(
        f"/api/v1/orders/{order_id}/refunds", {"amount": "39.98"}, format="json"
    )

    assert response.status_code == 201
    assert Order.objects.get(pk=order_id).status == "refunded"


def test_a_canceled_order_with_partial_refunds_is_refunded_in_full(roles, order, product):
    _refund(roles["host_app"], order, lines=[{"line": order["lines"][0]["id"], "quantity": 1}])

    canceled = act(roles["fulfillment"], order["id"], "cancel").json()

    assert canceled["status"] == "canceled"
    assert canceled["refunded_amount"] == "50.98"
    refunds = roles["host_app"].get(f"/api/v1/orders/{order['id']}/refunds").json()["results"]
    assert [r["amount"] for r in refunds] == ["19.99", "30.99"]
    product.refresh_from_db()
    assert product.inventory == 100  # every unit back on sale


def test_brands_and_creators_read_refunds_but_do_not_make_them(roles, order):
    _refund(roles["host_app"], order, amount="1.00")

    for role in ("brand", "creator"):
        # the creator of this order is none: it was not sold in a show
        listed = roles[role].get(f"/api/v1/orders/{order['id']}/refunds")
        assert listed.status_code == (200 if role == "brand" else 404)
        assert _refund(roles[role], order, amount="1.00").status_code == 403
