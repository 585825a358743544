"""The database going away at the worst moment of an idempotent POST, made to happen on purpose.

The system tests cut the database while clients place orders, and the moment that matters
comes by chance: the order's transaction has committed and the service is about to write down
the answer for its Idempotency-Key when the connection dies. Here a trigger makes that moment
happen every time: when the service writes the answer for one key, the database session ends
itself (``pg_terminate_backend(pg_backend_pid())``), as if the server had restarted just then.

The client saw a 500 (or nothing at all), so it sends the same POST again with the same key,
after waiting out ``IDEMPOTENCY_LOCK_TIMEOUT`` if it must. Whatever happened to the first
attempt, the buyer must end up with exactly one order.
"""

from datetime import timedelta

import pytest
from django.db import connection

from orders.models import Order, Product
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "order-for-buyer-7"
DIE_WHEN_THE_ANSWER_IS_WRITTEN = f"""
CREATE FUNCTION test_die_on_answer() RETURNS trigger AS $$
BEGIN
    PERFORM pg_terminate_backend(pg_backend_pid());
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER test_die_on_answer BEFORE UPDATE ON livecommerce_idempotencyrecord
    FOR EACH ROW WHEN (NEW.key = '{KEY}' AND NOT NEW.in_progress)
    EXECUTE FUNCTION test_die_on_answer();
"""
UNDO = """
DROP TRIGGER IF EXISTS test_die_on_answer ON livecommerce_idempotencyrecord;
DROP FUNCTION IF EXISTS test_die_on_answer();
"""


@pytest.fixture
def shop():
    fulfillment = factories.FulfillmentFactory()
    brand = factories.BrandFactory(fulfillment_partner=fulfillment)
    product = factories.ProductFactory(brand=brand, inventory=10)
    factories.CommissionPlanFactory()
    return client_for(partner=factories.HostAppFactory()), product


def test_the_database_dying_as_the_answer_is_written_never_makes_a_second_order(shop, settings):
    host, product = shop
    host.raise_request_exception = False
    body = {
        "lines": [{"product": product.pk, "quantity": 2}],
        "buyer": {"reference": "buyer-7", "email": "b7@example.com"},
    }

    def place_order():
        return host.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    # given a database that goes away just as the answer for this key is written down
    with connection.cursor() as cursor:
        cursor.execute(DIE_WHEN_THE_ANSWER_IS_WRITTEN)
    try:
        first = place_order()
    finally:
        connection.close()  # the session the trigger ended
        with connection.cursor() as cursor:
            cursor.execute(UNDO)
    # the database went away: "retry soon", not a bug (issue 18)
    assert first.status_code == 503, first.content
    assert first["Retry-After"] and first.json()["errors"][0]["code"] == "service_unavailable"

    # when the client sends it again with the same key, however long it has to wait
    settings.IDEMPOTENCY_LOCK_TIMEOUT = timedelta(0)
    again = place_order()

    # then the buyer has one order, the one the client was finally told about
    assert again.status_code == 201, again.content
    orders = list(Order.objects.filter(buyer_reference="buyer-7").values_list("pk", flat=True))
    assert orders == [again.json()["id"]]
    assert Product.objects.get(pk=product.pk).inventory == 8
    # and the answer is kept: once more, the same order is replayed
    replay = place_order()
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == again.json()["id"]
