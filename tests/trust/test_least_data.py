"""Finding 4 of issue 18: a creator's order view, events and webhooks carried the buyer's
email, shipping address and payment reference, and its breakdown the brand's net and the
platform's commission. A creator now sees what it earns on, and nothing of the buyer."""

import json

import pytest

from partners.webhooks import services
from partners.webhooks.models import WebhookDelivery
from tests.conftest import client_for
from tests.orders.helpers import act, place_order
from tests.webhooks.helpers import make_endpoint

pytestmark = pytest.mark.django_db

EMAIL = "ana@example.com"
STREET = "1 Main St"
PAYMENT = "pi_secret_reference"


@pytest.fixture(autouse=True)
def _private_urls_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def paid_order(host_client, creator, live_session, product):
    order = place_order(
        host_client,
        product,
        live_session=live_session,
        buyer={"reference": "viewer-1", "email": EMAIL},
        shipping_address={"line1": STREET, "city": "Austin"},
    )
    pay = act(
        host_client, order["id"], "pay", {"amount": order["total"], "payment_reference": PAYMENT}
    )
    assert pay.status_code == 200, pay.json()
    return pay.json()


def _no_buyer_data(text: str) -> None:
    for secret in (EMAIL, STREET, PAYMENT):
        assert secret not in text


def test_a_creator_reads_its_orders_without_the_buyer(creator_client, host_client, paid_order):
    order_id = paid_order["id"]
    for response in (
        creator_client.get(f"/api/v1/orders/{order_id}"),
        creator_client.get("/api/v1/orders"),
        creator_client.get(f"/api/v1/orders/{order_id}/events"),
        creator_client.get("/api/v1/events"),
    ):
        assert response.status_code == 200
        _no_buyer_data(response.content.decode())

    mine = creator_client.get(f"/api/v1/orders/{order_id}").json()
    assert (mine["buyer"], mine["shipping_address"], mine["payment_reference"]) == (None,) * 3
    # what it earns on is all there
    assert mine["id"] == order_id and mine["total"] == paid_order["total"]
    assert [line["id"] for line in mine["lines"]] == [line["id"] for line in paid_order["lines"]]
    # the host app still sees everything
    full = host_client.get(f"/api/v1/orders/{order_id}").json()
    assert full["buyer"]["email"] == EMAIL and full["payment_reference"] == PAYMENT
    assert full["shipping_address"]["line1"] == STREET


def test_a_creators_breakdown_shows_its_commission_not_the_other_shares(
    creator_client, brand_client, paid_order
):
    order_id = paid_order["id"]

    mine = creator_client.get(f"/api/v1/orders/{order_id}/breakdown").json()
    brands = brand_client.get(f"/api/v1/orders/{order_id}/breakdown").json()

    assert mine["totals"]["creator_commission"] == brands["totals"]["creator_commission"]
    assert mine["totals"]["creator_commission"] != "0.00"
    for hidden in ("platform_commission", "fulfillment_fees", "brand_net"):
        assert mine["totals"][hidden] is None
        assert brands["totals"][hidden] is not None
    for line in mine["lines"]:
        assert (line["platform_commission"], line["fulfillment_fee"], line["brand_net"]) == (
            None,
            None,
            None,
        )
        assert line["rates"]["platform_rate_bps"] is None
        assert line["creator_commission"] is not None


def test_a_creators_webhook_carries_no_buyer_data_and_verifies(
    creator, host_app, host_client, live_session, product, receiver
):
    creator_hook = make_endpoint(creator, receiver.url)
    receiver.secrets = [creator_hook.secret]
    order = place_order(
        host_client,
        product,
        live_session=live_session,
        buyer={"reference": "viewer-2", "email": EMAIL},
        shipping_address={"line1": STREET},
    )
    delivery = WebhookDelivery.objects.get(endpoint=creator_hook, event__object_id=order["id"])

    services.webhook_delivery_attempt(delivery_id=delivery.pk)

    [received] = receiver.wait_for_requests(1)
    assert received.verified_with == [creator_hook.secret]
    _no_buyer_data(received.body)
    data = json.loads(received.body)["data"]
    assert data["id"] == order["id"] and data["buyer"] is None
    # the host app's own endpoint still gets the whole order
    host_hook = make_endpoint(host_app, receiver.url)
    receiver.secrets = [host_hook.secret]
    act(host_client, order["id"], "cancel")
    host_delivery = WebhookDelivery.objects.get(
        endpoint=host_hook, event__object_id=order["id"], event__type="order.canceled"
    )
    services.webhook_delivery_attempt(delivery_id=host_delivery.pk)
    received = receiver.wait_for_requests(2)[-1]
    assert EMAIL in received.body


def test_a_creator_never_reads_the_buyer_of_an_order_it_did_not_earn_on(
    creator, host_client, product
):
    order = place_order(host_client, product, buyer={"email": EMAIL})  # no live session
    assert client_for(partner=creator).get(f"/api/v1/orders/{order['id']}").status_code == 404
