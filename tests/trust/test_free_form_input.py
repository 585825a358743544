"""Finding 1 of issue 18: free-form JSON and hand-made cursors answered 500.

Each test runs on the database of ``DATABASE_URL`` (PostgreSQL) and on the embedded SQLite
default (run with ``DATABASE_URL`` unset): the answer is the same 400 on both.
"""

import base64
import json
from urllib.parse import quote, urlencode

import pytest

from orders.models import Order
from tests.orders.helpers import codes, place_order

pytestmark = pytest.mark.django_db

LIST_URLS = ["/api/v1/orders", "/api/v1/events", "/api/v1/products", "/api/v1/live-sessions"]


def _raw_order(client, product, address_json: str):
    lines = json.dumps([{"product": product.pk, "quantity": 1}])
    body = f'{{"lines": {lines}, "shipping_address": {address_json}}}'
    return client.post("/api/v1/orders", data=body, content_type="application/json")


@pytest.mark.parametrize(
    "address_json",
    [
        '{"n": "\\ud800"}',  # a lone high surrogate
        '{"n": "\\udfff x"}',  # a lone low surrogate
        '{"\\ud83d": "key"}',  # in a key
        '{"n": ["ok", {"m": "\\ud800"}]}',  # nested
    ],
)
def test_a_lone_surrogate_is_a_400_and_nothing_is_stored(host_client, product, roles, address_json):
    response = _raw_order(host_client, product, address_json)

    assert response.status_code == 400, response.content
    assert response.json()["type"] == "client_error"
    assert codes(response) == ["parse_error"]
    assert not Order.objects.exists()
    # and every list of every party still answers
    for client in roles.values():
        assert client.get("/api/v1/orders").status_code == 200


def test_a_lone_surrogate_in_any_string_field_is_a_400(host_client, product):
    body = '{"lines": [{"product": "%s", "quantity": 1}], "buyer": {"reference": "\\ud800"}}'
    response = host_client.post(
        "/api/v1/orders", data=body % product.pk, content_type="application/json"
    )
    assert response.status_code == 400
    assert codes(response) == ["parse_error"]


def test_a_valid_surrogate_pair_is_a_character_like_any_other(host_client, product):
    response = _raw_order(host_client, product, '{"n": "\\ud83d\\ude00"}')
    assert response.status_code == 201, response.content
    assert response.json()["shipping_address"] == {"n": "\U0001f600"}


def _nested(depth: int) -> dict:
    value: dict = {"city": "Austin"}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def test_an_address_ten_levels_deep_is_taken_and_eleven_is_refused(host_client, product):
    ok = _raw_order(host_client, product, json.dumps(_nested(10)))
    assert ok.status_code == 201, ok.content

    deep = _raw_order(host_client, product, json.dumps(_nested(11)))
    assert deep.status_code == 400
    assert codes(deep) == ["too_deep"]
    assert deep.json()["errors"][0]["attr"] == "shipping_address"


def test_an_address_500_levels_deep_is_a_400_not_a_recursion_error(host_client, product):
    response = _raw_order(host_client, product, json.dumps(_nested(500)))
    assert response.status_code == 400
    assert codes(response) == ["parse_error"]


def test_an_address_over_the_size_bound_is_refused(host_client, product):
    response = _raw_order(host_client, product, json.dumps({"line1": "x" * 5000}))
    assert response.status_code == 400
    assert codes(response) == ["too_large"]
    assert Order.objects.count() == 0


def test_a_nul_character_in_the_address_is_refused(host_client, product):
    response = _raw_order(host_client, product, '{"line1": "a\\u0000b"}')
    assert response.status_code == 400
    assert codes(response) == ["null_characters_not_allowed"]


def _cursor(**tokens) -> str:
    query = urlencode(tokens)
    return quote(base64.b64encode(query.encode()).decode())


@pytest.mark.parametrize("url", LIST_URLS)
@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "%FF%FE",
        _cursor(o="0", r="0", p="not-a-date"),
        _cursor(o="x"),
        _cursor(o="0", r="0", p="0001-01-01T00:00:00+05:00"),
    ],
)
def test_a_hand_made_cursor_is_a_400(host_client, product, url, cursor):
    place_order(host_client, product)

    response = host_client.get(f"{url}?cursor={cursor}")

    assert response.status_code == 400, (response.status_code, response.content)
    assert codes(response) == ["parse_error"]


def test_a_cursor_with_an_offset_postgresql_refuses_still_pages(host_client, product):
    place_order(host_client, product)
    cursor = _cursor(o="0", r="0", p="2999-01-01T00:00:00+17:25")

    response = host_client.get(f"/api/v1/orders?cursor={cursor}")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_the_cursors_the_service_writes_still_work(host_client, product):
    for _ in range(3):
        place_order(host_client, product, quantity=1)
    first = host_client.get("/api/v1/orders?page_size=2").json()
    second = host_client.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1
    back = host_client.get(second["previous"]).json()
    assert [o["id"] for o in back["results"]] == [o["id"] for o in first["results"]]
