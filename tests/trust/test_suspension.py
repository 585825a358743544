"""Finding 3 of issue 18: a suspended brand still sold, and its webhooks still carried buyers'
addresses. Suspension now stops selling, events and deliveries to the suspended partner."""

import pytest
from django.db import transaction

from livecommerce.errors import AppError
from partners.events import event_publish_many
from partners.models import Event
from partners.webhooks import services
from partners.webhooks.models import WebhookDelivery
from tests.conftest import client_for
from tests.orders.helpers import act, codes, place_order
from tests.webhooks.helpers import make_endpoint, publish

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_urls_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True


def suspend(ops, partner):
    response = ops.patch(f"/api/v1/partners/{partner.pk}", {"status": "suspended"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "suspended"


def test_a_suspended_brands_products_cannot_be_ordered(ops, host_client, brand, product):
    place_order(host_client, product)  # sells while active
    suspend(ops, brand)

    response = host_client.post(
        "/api/v1/orders",
        {"lines": [{"product": product.pk, "quantity": 1}]},
        format="json",
    )

    assert response.status_code == 409
    assert codes(response) == ["brand_suspended"]
    product.refresh_from_db()
    assert product.inventory == 98  # nothing reserved by the refused order

    ops.patch(f"/api/v1/partners/{brand.pk}", {"status": "active"}, format="json")
    assert place_order(host_client, product)["status"] == "pending_payment"


def test_no_event_nor_delivery_is_addressed_to_a_suspended_partner(
    ops, host_client, host_app, brand, product, receiver
):
    brand_hook = make_endpoint(brand, receiver.url)
    host_hook = make_endpoint(host_app, receiver.url)
    order = place_order(
        host_client, product, shipping_address={"line1": "1 Main St", "city": "Austin"}
    )
    suspend(ops, brand)

    # the host app cancels: the brand would have been told, with the buyer's address
    assert act(host_client, order["id"], "cancel").status_code == 200

    canceled = Event.objects.get(object_id=order["id"], type="order.canceled")
    told = set(canceled.recipients.values_list("partner_id", flat=True))
    assert host_app.pk in told and brand.pk not in told
    assert not WebhookDelivery.objects.filter(event=canceled, endpoint=brand_hook).exists()
    assert WebhookDelivery.objects.filter(event=canceled, endpoint=host_hook).exists()
    # and event_publish_many (settlement runs) follows the same rule
    with transaction.atomic():
        [many] = event_publish_many(
            events=[("order.refunded", order["id"], {"id": order["id"]}, [brand.pk, host_app.pk])]
        )
    assert set(many.recipients.values_list("partner_id", flat=True)) == {host_app.pk}
    assert not WebhookDelivery.objects.filter(event=many, endpoint=brand_hook).exists()


def test_suspending_fails_what_was_pending_and_nothing_is_sent_after(
    ops, brand, host_app, receiver
):
    hook = make_endpoint(brand, receiver.url)
    event = publish(partners=[brand], data={"id": "ord_x", "shipping_address": {"l": "1 Main"}})
    delivery = WebhookDelivery.objects.get(event=event, endpoint=hook)

    suspend(ops, brand)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("failed", "partner suspended")
    # a task queued before the suspension, a retry, the sweeper: nothing goes out
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="pending", next_attempt_at=event.created, enqueued_at=None
    )
    assert services.webhook_deliveries_sweep() == 0
    assert services.webhook_delivery_attempt(delivery_id=delivery.pk) == "partner_suspended"
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    with pytest.raises(AppError) as refused:
        services.webhook_delivery_retry(delivery=delivery)
    assert refused.value.code == "partner_suspended"
    assert receiver.received == []


def test_a_suspended_partners_keys_are_refused(ops, brand):
    brand_client = client_for(partner=brand)
    suspend(ops, brand)
    assert brand_client.get("/api/v1/events").status_code == 403
