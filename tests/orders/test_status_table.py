"""The contract's status table, walked through the API by every role.

The expectations below are written out from the contract (shared/API.md), not read from the
code's own table, so that a wrong entry in either shows up here.
"""

import pytest

from orders.models import Order
from partners.models import Event
from tests.orders.helpers import (
    act,
    actor_of,
    close_return_windows,
    codes,
    order_in,
    place_order,
    walk_to,
)

pytestmark = pytest.mark.django_db

STATUSES = [
    "pending_payment",
    "paid",
    "accepted",
    "shipped",
    "delivered",
    "completed",
    "canceled",
    "refunded",
    "expired",
]
ROLES = ["host_app", "fulfillment", "brand", "creator", "ops", "finance"]

# action -> roles that may ever do it
MAY_ACT = {
    "pay": {"host_app"},
    "cancel": {"host_app", "fulfillment"},
    "accept": {"fulfillment"},
    "ship": {"fulfillment"},
    "deliver": {"fulfillment"},
    "refunds": {"host_app", "fulfillment", "ops", "finance"},
}
# action -> {from status: to status}; a partial refund leaves the status as it was
LEGAL = {
    "pay": {"pending_payment": "paid"},
    "cancel": {"pending_payment": "canceled", "paid": "canceled"},
    "accept": {"paid": "accepted"},
    "ship": {"accepted": "shipped"},
    "deliver": {"shipped": "delivered"},
    "refunds": {s: s for s in ("paid", "accepted", "shipped", "delivered", "completed")},
}
CASES = [(status, action) for status in STATUSES for action in MAY_ACT]


@pytest.mark.parametrize(("status", "action"), CASES, ids=[f"{s}-{a}" for s, a in CASES])
def test_every_role_and_every_move_from_every_status(status, action, roles, product, live_session):
    # given an order in ``status`` that every role can see
    order_id = order_in(status, roles, product, live_session=live_session)

    # then a role that may never do the action gets 403, whatever the status
    for role in sorted(set(ROLES) - MAY_ACT[action]):
        response = act(roles[role], order_id, action)
        assert response.status_code == 403, (role, response.json())
        assert codes(response) == ["permission_denied"]
    assert Order.objects.get(pk=order_id).status == status

    target = LEGAL[action].get(status)
    if status == "expired" and action == "pay":
        # paying after the hold ended is refused with its own code (contract: "Live drops")
        response = act(roles["host_app"], order_id, action)
        assert response.status_code == 409, response.json()
        assert codes(response) == ["order_expired"]
        assert Order.objects.get(pk=order_id).status == status
        return
    if target is None:
        # and an illegal move is 409 invalid_transition for every role that may act
        for role in sorted(MAY_ACT[action]):
            response = act(roles[role], order_id, action)
            assert response.status_code == 409, (role, response.json())
            assert codes(response) == ["invalid_transition"]
        assert Order.objects.get(pk=order_id).status == status
        return

    # and a legal move succeeds for each role that may do it (each on an order of its own)
    for index, role in enumerate(sorted(MAY_ACT[action])):
        if index:
            order_id = order_in(status, roles, product, live_session=live_session)
        response = act(roles[role], order_id, action)
        assert response.status_code in (200, 201), (role, response.json())
        order = roles["host_app"].get(f"/api/v1/orders/{order_id}").json()
        assert order["status"] == target, role
        history = roles[role].get(f"/api/v1/orders/{order_id}/events").json()["results"]
        assert history[-1]["from_status"] == status
        assert history[-1]["to_status"] == target
        assert history[-1]["actor"] == actor_of(roles[role])


def test_the_happy_path_from_order_to_completion(roles, product, live_session, creator):
    host, fulfiller = roles["host_app"], roles["fulfillment"]

    order = place_order(
        host,
        product,
        quantity=2,
        live_session=live_session,
        shipping_amount="4.99",
        tax_amount="3.20",
    )
    assert order["status"] == "pending_payment"
    assert order["creator"] == creator.pk
    assert order["total"] == "48.17"

    assert (
        act(host, order["id"], "pay", {"amount": "48.17", "payment_reference": "pi_1"}).json()[
            "status"
        ]
        == "paid"
    )
    assert act(fulfiller, order["id"], "accept").json()["status"] == "accepted"
    shipped = act(fulfiller, order["id"], "ship", {"carrier": "DHL", "tracking_number": "JD01"})
    assert shipped.json()["status"] == "shipped"
    assert shipped.json()["carrier"] == "DHL"
    assert shipped.json()["tracking_number"] == "JD01"
    assert act(fulfiller, order["id"], "deliver").json()["status"] == "delivered"

    # before the window closes nothing happens; after it, the order completes
    assert "Completed 0" in close_return_windows(days=1)
    assert "Completed 1" in close_return_windows()

    final = roles["brand"].get(f"/api/v1/orders/{order['id']}").json()
    assert final["status"] == "completed"
    for stamp in ("paid_at", "accepted_at", "shipped_at", "delivered_at", "completed_at"):
        assert final[stamp] is not None
    assert final["canceled_at"] is None

    history = roles["creator"].get(f"/api/v1/orders/{order['id']}/events").json()["results"]
    assert [(e["type"], e["to_status"]) for e in history] == [
        ("created", "pending_payment"),
        ("paid", "paid"),
        ("accepted", "accepted"),
        ("shipped", "shipped"),
        ("delivered", "delivered"),
        ("completed", "completed"),
    ]
    assert history[-1]["actor"] == "system"

    events = Event.objects.filter(object_id=order["id"]).order_by("sequence")
    assert [(e.type, e.sequence) for e in events] == [
        ("order.created", 1),
        ("order.paid", 2),
        ("order.accepted", 3),
        ("order.shipped", 4),
        ("order.delivered", 5),
        ("order.completed", 6),
    ]
    assert events.last().data["status"] == "completed"
    parties = {r.partner_id for r in events.last().recipients.all()}
    assert parties == {
        roles["host_app"].partner.pk,
        roles["brand"].partner.pk,
        roles["fulfillment"].partner.pk,
        creator.pk,
    }


def test_cancel_of_a_pending_order_releases_its_inventory(roles, product):
    order = place_order(roles["host_app"], product, quantity=3)
    product.refresh_from_db()
    assert product.inventory == 97

    response = act(roles["fulfillment"], order["id"], "cancel", {"reason": "out of stock"})

    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert response.json()["refunded_amount"] == "0.00"
    product.refresh_from_db()
    assert product.inventory == 100
    types = list(Event.objects.filter(object_id=order["id"]).values_list("type", flat=True))
    assert sorted(types) == ["order.canceled", "order.created"]


def test_cancel_of_a_paid_order_refunds_it_in_full_and_restocks(roles, product):
    order = place_order(
        roles["host_app"], product, quantity=2, shipping_amount="5.00", tax_amount="1.00"
    )
    walk_to("paid", order["id"], roles)

    response = act(roles["host_app"], order["id"], "cancel")

    assert response.status_code == 200
    canceled = response.json()
    assert canceled["status"] == "canceled"
    assert canceled["refunded_amount"] == canceled["total"] == "45.98"
    assert canceled["lines"][0]["refunded_quantity"] == 2
    refunds = roles["host_app"].get(f"/api/v1/orders/{order['id']}/refunds").json()["results"]
    assert len(refunds) == 1
    assert refunds[0]["amount"] == "45.98"
    assert refunds[0]["shipping_amount"] == "5.00"
    assert refunds[0]["tax_amount"] == "1.00"
    product.refresh_from_db()
    assert product.inventory == 100
    types = list(
        Event.objects.filter(object_id=order["id"])
        .order_by("sequence")
        .values_list("type", flat=True)
    )
    assert types == ["order.created", "order.paid", "order.refunded", "order.canceled"]


def test_there_is_no_endpoint_to_complete_an_order_by_hand(roles, product):
    order = place_order(roles["host_app"], product)
    walk_to("delivered", order["id"], roles)

    for client in roles.values():
        response = client.post(f"/api/v1/orders/{order['id']}/complete", {}, format="json")
        assert response.status_code == 404
    assert Order.objects.get(pk=order["id"]).status == "delivered"
