"""The order path's statement budget (issue 14): what placing and paying an order costs in SQL
statements, through the real HTTP API (an API key, an ``Idempotency-Key``, a live show, a
webhook endpoint subscribed to every event), counted, never timed.

Everything a create and a pay must do is inside the count: the key's authentication, the
idempotency record, the order and its lines, the inventory, the history, the partner events
with their recipients and outbox rows, and (pay) the commission plan and the sale's ledger
entry. A change that adds a statement per request shows here before it shows in a benchmark.
"""

import uuid

import pytest

from commissions.models import LedgerEntry
from partners.models import Event
from partners.webhooks import signing
from partners.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests import factories

pytestmark = pytest.mark.django_db

# Counted inside the test's transaction, so the request's own transaction shows as a SAVEPOINT
# and its RELEASE (BEGIN and COMMIT in production): issue 14 asks for 10 and 15; 29 and 46 before
# it, 13 and 17 half-way.
# Create (10): the key's authentication; the idempotency lock and record (one statement); the
# products with their brand; the live session; ONE statement taking every product's units, all
# or nothing (the rows locked in id order), so no savepoint: every refusal is decided before the
# first write; the recipients and their endpoints; ONE insert of the order, its lines, its
# history, its event, the event's recipients and outbox rows; the idempotency answer.
CREATE_BUDGET = 10
# Pay (15): the key; the idempotency lock and record; the order read (permissions); the plans in
# force; the lines; ONE conditional UPDATE marking the order paid, which takes its lock (no
# second read of the order); the lines' rates; the commission application; the ledger accounts;
# ONE insert of the sale's entry and its lines; the recipients and endpoints; ONE insert of the
# history, the event, its recipients and outbox rows; the idempotency answer. No savepoint:
# every refusal is decided before the first write.
PAY_BUDGET = 15


@pytest.fixture
def show(host_app, brand, creator):
    """Two products of a live show that is live, and a webhook endpoint of the host app."""
    products = [
        factories.ProductFactory(brand=brand, price=1999, currency="USD", inventory=100)
        for _ in range(2)
    ]
    session = factories.LiveSessionFactory(
        producer=host_app, creator=creator, host_apps=[host_app], status="live"
    )
    session.products.set(products)
    WebhookEndpoint.objects.create(
        partner=host_app, url="https://example.com/hook", events=["*"], secret=signing.new_secret()
    )
    return products, session


def _create(client, products, session):
    return client.post(
        "/api/v1/orders",
        {
            "lines": [
                {"product": products[0].pk, "quantity": 2},
                {"product": products[1].pk, "quantity": 1},
            ],
            "live_session": session.pk,
            "buyer": {"reference": "viewer-1", "email": "ana@example.com"},
            "shipping_address": {"line1": "1 Main St", "city": "Austin", "country": "US"},
            "shipping_amount": "4.99",
            "tax_amount": "3.20",
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )


def _pay(client, order):
    return client.post(
        f"/api/v1/orders/{order['id']}/pay",
        {"amount": order["total"], "payment_reference": "pi_budget"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )


def test_placing_a_two_line_order_stays_within_its_statement_budget(
    host_client, show, django_assert_max_num_queries
):
    products, session = show
    _create(host_client, products, session)  # warm: the ledger accounts, caches
    with django_assert_max_num_queries(CREATE_BUDGET):
        response = _create(host_client, products, session)
    assert response.status_code == 201, response.json()
    order = response.json()
    assert len(order["lines"]) == 2
    assert Event.objects.filter(object_id=order["id"], type="order.created").count() == 1
    assert WebhookDelivery.objects.filter(event__object_id=order["id"]).count() == 1


def test_paying_an_order_stays_within_its_statement_budget(
    host_client, show, django_assert_max_num_queries
):
    products, session = show
    warm = _create(host_client, products, session).json()
    assert _pay(host_client, warm).status_code == 200  # the ledger accounts exist from now on
    order = _create(host_client, products, session).json()
    with django_assert_max_num_queries(PAY_BUDGET):
        response = _pay(host_client, order)
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "paid"
    assert LedgerEntry.objects.filter(order_id=order["id"], kind="sale").count() == 1
    assert Event.objects.filter(object_id=order["id"], type="order.paid").count() == 1
    assert WebhookDelivery.objects.filter(event__object_id=order["id"]).count() == 2


def test_the_answer_is_the_serializers_representation_and_the_events_data(
    host_client, show, creator_client
):
    """The representation a create and a pay build once is what ``OrderSerializer`` (lists,
    reads) shows of the order, and what the order's event carries."""
    products, session = show
    created = _create(host_client, products, session).json()
    paid = _pay(host_client, created).json()
    for answer, event_type in ((created, "order.created"), (paid, "order.paid")):
        assert answer == Event.objects.get(object_id=answer["id"], type=event_type).data
    assert host_client.get(f"/api/v1/orders/{paid['id']}").json() == paid
    assert creator_client.get(f"/api/v1/orders/{paid['id']}").json()["buyer"] is None
