"""Finding 7 of issue 18: while PostgreSQL was away every request answered 500, so a client
could not tell "retry soon" from a bug. Now it is 503 ``service_unavailable`` with
``Retry-After``, on every endpoint, whether DRF or a middleware (idempotency, sessions) met
the dead database first. The same under traffic and a real restart: tests/system/test_faults.py.
"""

from contextlib import contextmanager

import pytest
from django.db import connection

from orders.api.serializers import OrderSerializer
from tests.orders.helpers import codes, place_order

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_unreachable():
    """Point the connection at a port nothing listens on: every query fails to connect, as
    while the server restarts. Put back afterwards."""
    if connection.vendor != "postgresql":
        pytest.skip("needs a database server to lose")
    settings_dict = connection.settings_dict
    saved = settings_dict["PORT"], settings_dict["HOST"]
    connection.close()
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", "1"
    try:
        yield
    finally:
        connection.close()
        settings_dict["PORT"], settings_dict["HOST"] = saved[0], saved[1]


def _assert_503(response):
    assert response.status_code == 503, (response.status_code, response.content[:300])
    assert response["Retry-After"] == "2"
    body = response.json()
    assert body["type"] == "server_error"
    assert codes(response) == ["service_unavailable"]


def test_every_kind_of_request_answers_503_with_retry_after(host_client, product, ops):
    host_client.raise_request_exception = False
    ops.raise_request_exception = False
    with database_unreachable():
        _assert_503(host_client.get("/api/v1/orders"))
        _assert_503(host_client.get(f"/api/v1/products/{product.pk}"))
        # a POST meets the database first in the idempotency middleware, outside DRF
        _assert_503(
            host_client.post(
                "/api/v1/orders",
                {"lines": [{"product": product.pk, "quantity": 1}]},
                format="json",
                HTTP_IDEMPOTENCY_KEY="k-1",
            )
        )
        _assert_503(
            host_client.post(
                "/api/v1/orders", {"lines": [{"product": product.pk, "quantity": 1}]}, format="json"
            )
        )
        _assert_503(ops.get("/api/v1/partners"))
        # the process is up; it is not ready
        assert host_client.get("/healthz").status_code == 200
        assert host_client.get("/readyz").status_code == 503

    # and once it is back, the same requests answer as usual
    assert host_client.get("/api/v1/orders").status_code == 200


def test_a_bug_is_still_a_500(host_client, product, monkeypatch):
    """503 means "a dependency is away"; anything else stays the server error it is."""

    place_order(host_client, product)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(OrderSerializer, "to_representation", broken)
    host_client.raise_request_exception = False
    assert host_client.get("/api/v1/orders").status_code == 500
