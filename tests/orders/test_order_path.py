"""The order path's shortcuts keep their outcomes: the inventory taken all or nothing by one
statement, and a payment deciding on the caller's unlocked copy of the order, then under the
lock its UPDATE takes."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from commissions.models import CommissionApplication, LedgerEntry
from livecommerce.errors import AppError
from livecommerce.models import IdempotencyRecord
from orders.models import Order, Product
from orders.services import order_cancel, order_pay
from orders.services.placing import _take_all_or_nothing
from tests import factories
from tests.orders.helpers import codes, place_order

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement take")
def test_one_product_short_takes_nothing_of_the_others(brand):
    plenty = factories.ProductFactory(brand=brand, inventory=5)
    short = factories.ProductFactory(brand=brand, inventory=1)
    quantities = {plenty.pk: 2, short.pk: 3}

    with pytest.raises(AppError) as refused, transaction.atomic():
        _take_all_or_nothing(quantities, {plenty.pk: 0, short.pk: 1})

    assert refused.value.code == "insufficient_inventory"
    assert refused.value.extra == {"available": 1}
    assert refused.value.attr == "lines.1.quantity"
    assert dict(Product.objects.values_list("pk", "inventory")) == {plenty.pk: 5, short.pk: 1}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement take")
def test_the_take_answers_each_products_units_before_and_after(brand):
    a = factories.ProductFactory(brand=brand, inventory=5)
    b = factories.ProductFactory(brand=brand, inventory=1)

    with transaction.atomic():
        changes = _take_all_or_nothing({a.pk: 2, b.pk: 1}, {a.pk: 0, b.pk: 1})

    assert changes == {a.pk: (5, 3), b.pk: (1, 0)}
    assert dict(Product.objects.values_list("pk", "inventory")) == {a.pk: 3, b.pk: 0}


def test_a_refused_order_keeps_its_idempotent_answer(host_client, brand):
    """No savepoint around the order's writes: a refusal must leave the request's transaction
    usable, so the 409 is kept under the key and replayed."""
    plenty = factories.ProductFactory(brand=brand, inventory=5)
    short = factories.ProductFactory(brand=brand, inventory=1)
    body = {"lines": [{"product": plenty.pk, "quantity": 1}, {"product": short.pk, "quantity": 2}]}
    key = uuid.uuid4().hex

    first = host_client.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    again = host_client.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert first.status_code == again.status_code == 409
    assert codes(first) == ["insufficient_inventory"]
    assert again.json() == first.json()
    assert IdempotencyRecord.objects.get(key=key).status_code == 409
    assert not Order.objects.exists()
    assert dict(Product.objects.values_list("pk", "inventory")) == {plenty.pk: 5, short.pk: 1}


def _pay(order):
    from livecommerce import money

    return order_pay(
        order=order,
        amount=money.to_decimal_string(order.total, order.currency),
        payment_reference="pi_stale",
        actor="test",
    )


def _nothing_of_a_payment(order_id):
    assert not LedgerEntry.objects.filter(order_id=order_id).exists()
    assert not CommissionApplication.objects.filter(order_id=order_id).exists()
    assert Order.objects.get(pk=order_id).paid_at is None


def test_a_stale_copy_of_an_order_canceled_since_is_refused_under_the_lock(host_client, product):
    order_id = place_order(host_client, product)["id"]
    stale = Order.objects.get(pk=order_id)
    order_cancel(order=Order.objects.get(pk=order_id), actor="test")

    with pytest.raises(AppError) as refused:
        _pay(stale)

    assert refused.value.code == "invalid_transition"
    assert Order.objects.get(pk=order_id).status == "canceled"
    _nothing_of_a_payment(order_id)


def test_a_stale_copy_of_an_order_whose_hold_ended_since_is_order_expired(host_client, product):
    order_id = place_order(host_client, product)["id"]
    stale = Order.objects.get(pk=order_id)
    Order.objects.filter(pk=order_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(AppError) as refused:
        _pay(stale)

    assert refused.value.code == "order_expired"
    _nothing_of_a_payment(order_id)


def test_a_copy_refused_in_memory_is_decided_again_on_the_row(host_client, product):
    """The caller's copy says the order cannot be paid; the row says it can: the row wins, as
    when the checks were made under the lock only."""
    order_id = place_order(host_client, product)["id"]
    copy = Order.objects.get(pk=order_id)
    copy.status = "expired"

    paid = _pay(copy)

    assert paid.status == "paid"
    assert Order.objects.get(pk=order_id).status == "paid"
    assert LedgerEntry.objects.filter(order_id=order_id, kind="sale").count() == 1
