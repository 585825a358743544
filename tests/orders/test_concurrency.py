"""Races on PostgreSQL with real threads, each on its own database connection and real locks."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from commissions.models import CommissionApplication, LedgerEntry
from livecommerce import money
from orders.models import Order, OrderEvent, OrderLine, Product, Refund
from orders.services import order_expire_due
from partners.models import Event
from tests import factories
from tests.conftest import KeyedClient
from tests.orders.helpers import act, codes, order_in, place_order

pytestmark = pytest.mark.django_db(transaction=True)


def race(*calls):
    """Run the calls at the same moment, one thread each; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list = []

    def run(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as exc:  # surfaced in the test's own thread below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    assert not errors, errors
    return results


def fresh(client) -> KeyedClient:
    """A client of its own for one thread (the test client is not thread-safe)."""
    return KeyedClient(client.key, partner=client.partner, role=client.role)


def test_twenty_buyers_racing_for_the_last_five_units_buy_exactly_five(host_client, brand):
    product = factories.ProductFactory(brand=brand, inventory=5, price=1000)

    def buy():
        return fresh(host_client).post(
            "/api/v1/orders", {"lines": [{"product": product.pk, "quantity": 1}]}, format="json"
        )

    responses = race(*[buy] * 20)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 5, 409: 15}
    assert all(codes(r) == ["insufficient_inventory"] for r in responses if r.status_code == 409)
    product.refresh_from_db()
    assert product.inventory == 0
    assert Order.objects.count() == 5
    assert sum(OrderLine.objects.values_list("quantity", flat=True)) == 5


def test_buyers_of_overlapping_products_never_deadlock_or_oversell(host_client, brand):
    a = factories.ProductFactory(brand=brand, inventory=6)
    b = factories.ProductFactory(brand=brand, inventory=6)

    def buy(first, second):
        def call():
            return fresh(host_client).post(
                "/api/v1/orders",
                {
                    "lines": [
                        {"product": first.pk, "quantity": 1},
                        {"product": second.pk, "quantity": 1},
                    ]
                },
                format="json",
            )

        return call

    # half name the products in one order, half in the other
    responses = race(*[buy(a, b), buy(b, a)] * 5)

    assert Counter(r.status_code for r in responses) == {201: 6, 409: 4}
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.inventory, b.inventory) == (0, 0)


@pytest.mark.parametrize("attempt", range(4))
def test_a_cancel_racing_the_fulfiller_leaves_one_consistent_outcome(attempt, roles, product):
    order_id = order_in("paid", roles, product)  # 2 units of 19.99

    def fulfil():
        client = fresh(roles["fulfillment"])
        accepted = act(client, order_id, "accept")
        shipped = act(client, order_id, "ship") if accepted.status_code == 200 else None
        return accepted, shipped

    def cancel():
        return act(fresh(roles["host_app"]), order_id, "cancel")

    (accepted, shipped), canceled = race(fulfil, cancel)

    order = Order.objects.get(pk=order_id)
    product.refresh_from_db()
    if canceled.status_code == 200:
        assert accepted.status_code == 409
        assert codes(accepted) == ["invalid_transition"]
        assert shipped is None
        assert order.status == "canceled"
        assert order.refunded_amount == order.total
        assert Refund.objects.filter(order=order).count() == 1
        assert product.inventory == 100
    else:
        assert canceled.status_code == 409
        assert codes(canceled) == ["invalid_transition"]
        assert (accepted.status_code, shipped.status_code) == (200, 200)
        assert order.status == "shipped"
        assert order.refunded_amount == 0
        assert not Refund.objects.filter(order=order).exists()
        assert product.inventory == 98


def test_a_cancel_racing_a_ship_of_an_accepted_order_loses(roles, product):
    order_id = order_in("accepted", roles, product)

    shipped, canceled = race(
        lambda: act(fresh(roles["fulfillment"]), order_id, "ship"),
        lambda: act(fresh(roles["host_app"]), order_id, "cancel"),
    )

    assert shipped.status_code == 200
    assert canceled.status_code == 409
    assert Order.objects.get(pk=order_id).status == "shipped"


def test_ten_concurrent_partial_refunds_never_exceed_what_was_paid(roles, brand):
    product = factories.ProductFactory(brand=brand, price=10000, inventory=1)  # 100.00
    order = place_order(roles["host_app"], product, quantity=1)
    assert act(roles["host_app"], order["id"], "pay").status_code == 200
    clients = [roles["host_app"], roles["fulfillment"], roles["ops"], roles["finance"]]

    def refund(index):
        def call():
            return fresh(clients[index % len(clients)]).post(
                f"/api/v1/orders/{order['id']}/refunds", {"amount": "15.00"}, format="json"
            )

        return call

    responses = race(*[refund(i) for i in range(10)])

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 6, 409: 4}
    assert all(codes(r) == ["refund_exceeds_paid"] for r in responses if r.status_code == 409)
    paid = Order.objects.get(pk=order["id"])
    assert paid.refunded_amount == 9000
    assert sum(Refund.objects.filter(order=paid).values_list("amount", flat=True)) == 9000
    assert paid.lines.get().refunded_amount == 9000
    assert paid.status == "paid"
    assert Product.objects.get(pk=product.pk).inventory == 0


def test_the_buyers_who_miss_a_sell_out_hear_nothing_is_left_and_it_is_announced_once(
    host_client, brand, fulfillment
):
    product = factories.ProductFactory(brand=brand, inventory=5, price=1000)

    def buy():
        return fresh(host_client).post(
            "/api/v1/orders", {"lines": [{"product": product.pk, "quantity": 1}]}, format="json"
        )

    responses = race(*[buy] * 12)

    refused = [r.json()["errors"][0] for r in responses if r.status_code == 409]
    assert len(refused) == 7
    assert {(e["code"], e["available"], e["attr"]) for e in refused} == {
        ("insufficient_inventory", 0, "lines.0.quantity")
    }
    sold_out = Event.objects.filter(object_id=product.pk)
    assert [e.type for e in sold_out] == ["product.sold_out"]
    assert {r.partner_id for r in sold_out.get().recipients.all()} == {fulfillment.pk}


def test_two_expiry_runs_at_once_expire_each_order_once(host_client, brand):
    product = factories.ProductFactory(brand=brand, inventory=100, price=1000)
    for _ in range(40):
        response = host_client.post(
            "/api/v1/orders", {"lines": [{"product": product.pk, "quantity": 2}]}, format="json"
        )
        assert response.status_code == 201
    later = timezone.now() + timedelta(seconds=901)

    counts = race(*[lambda: order_expire_due(now=later, batch_size=7)] * 2)

    assert sum(counts) == 40
    assert Order.objects.filter(status="expired").count() == 40
    assert OrderEvent.objects.filter(type="expired").count() == 40
    assert Event.objects.filter(type="order.expired").count() == 40
    product.refresh_from_db()
    assert product.inventory == 100


@pytest.mark.parametrize("attempt", range(3))
def test_a_pay_racing_an_expiry_and_a_cancel_of_a_pending_order_leaves_one_outcome(
    attempt, roles, product
):
    """The payment locks the order by the UPDATE that marks it paid, after reading it without
    a lock: an expiry or a cancel that wins the race leaves that UPDATE nothing to change, and
    the payment is refused, with nothing of it written."""
    order_id = place_order(roles["host_app"], product)["id"]
    Order.objects.filter(pk=order_id).update(expires_at=timezone.now() + timedelta(seconds=1))
    total = Order.objects.get(pk=order_id).total

    def pay():
        return fresh(roles["host_app"]).post(
            f"/api/v1/orders/{order_id}/pay",
            {"amount": money.to_decimal_string(total, "USD"), "payment_reference": "pi_race"},
            format="json",
        )

    def cancel():
        return act(fresh(roles["host_app"]), order_id, "cancel")

    def expire():
        return order_expire_due(now=timezone.now() + timedelta(seconds=2))

    paid, _, _ = race(pay, cancel, expire)

    order = Order.objects.get(pk=order_id)
    sales = LedgerEntry.objects.filter(order_id=order_id, kind="sale").count()
    applications = CommissionApplication.objects.filter(order_id=order_id).count()
    if paid.status_code == 200:
        assert order.paid_at is not None
        assert (sales, applications) == (1, 1)
        assert order.status in ("paid", "canceled")  # a cancel after the payment refunds it
    else:
        assert paid.status_code == 409
        assert codes(paid)[0] in ("invalid_transition", "order_expired")
        assert (sales, applications) == (0, 0)
        assert order.paid_at is None
        assert order.status in ("canceled", "expired")
    assert OrderEvent.objects.filter(order_id=order_id, type="paid").count() == sales
