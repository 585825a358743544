"""Strict input and messages that say how to fix the request (contract: Conventions, Errors)."""

import pytest

from orders.feed import parse_last_event_id
from orders.models import Order
from tests import factories

pytestmark = pytest.mark.django_db


def _errors(response) -> list[tuple[str, str | None]]:
    return [(e["code"], e["attr"]) for e in response.json()["errors"]]


def test_a_misspelt_field_is_refused_by_name_with_a_suggestion(host_client, brand):
    product = factories.ProductFactory(brand=brand)

    response = host_client.post(
        "/api/v1/orders",
        {"lines": [{"product": product.pk, "quantity": 1}], "shiping_amount": "4.99"},
        format="json",
    )

    assert response.status_code == 400
    assert _errors(response) == [("unknown_field", "shiping_amount")]
    assert "Did you mean 'shipping_amount'?" in response.json()["errors"][0]["detail"]

    assert not Order.objects.exists()  # nothing was created without its shipping charge


def test_unknown_fields_in_nested_objects_of_known_shape_are_refused(host_client, brand):
    product = factories.ProductFactory(brand=brand)

    response = host_client.post(
        "/api/v1/orders",
        {
            "lines": [{"product": product.pk, "quantity": 1, "quantiy": 2}],
            "buyer": {"reference": "v-1", "emial": "x@example.com"},
            "shipping_address": {"anything": "goes", "nested": {"free": "form"}},
        },
        format="json",
    )

    assert response.status_code == 400
    assert sorted(_errors(response)) == [
        ("unknown_field", "buyer.emial"),
        ("unknown_field", "lines.0.quantiy"),
    ]


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    [
        ("ops", "post", "/api/v1/partners", {"kind": "creator", "name": "X", "nmae": "Y"}),
        ("ops", "post", "/api/v1/commission-plans", {"name": "P", "platform_rate": 1}),
        ("host_client", "post", "/api/v1/webhook-endpoints", {"url": "https://a.example", "x": 1}),
        ("finance", "post", "/api/v1/settlements/run", {"period_end": "2026-01-01", "cur": 1}),
        ("finance", "post", "/api/v1/reports/chart-links", {"currency": "USD", "colour": "red"}),
    ],
)
def test_every_body_taking_endpoint_refuses_unknown_fields(request, who, method, path, body):
    client = request.getfixturevalue(who)

    response = getattr(client, method)(path, body, format="json")

    assert response.status_code == 400, response.json()
    assert ("unknown_field", list(body)[-1]) in _errors(response)


def test_a_non_bearer_scheme_is_told_to_use_bearer(api_client, host_client):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {host_client.key}")

    response = api_client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"
    detail = response.json()["errors"][0]["detail"]
    assert "'Token'" in detail and "Authorization: Bearer <key>" in detail
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_no_key_is_told_how_to_send_one(api_client):
    response = api_client.get("/api/v1/me")

    assert response.status_code == 401
    assert "Authorization: Bearer <key>" in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize(
    ("content_type", "said"),
    [
        ("application/x-www-form-urlencoded", 'said "application/x-www-form-urlencoded"'),
        ("", "had none"),
    ],
)
def test_a_body_that_is_not_json_is_told_to_send_json(host_client, content_type, said):
    response = host_client.generic("POST", "/api/v1/orders", "lines=1", content_type=content_type)

    assert response.status_code == 415
    detail = response.json()["errors"][0]["detail"]
    assert '"Content-Type: application/json"' in detail and said in detail


def test_an_illegal_move_reads_as_english_and_says_what_it_applies_to(host_client, brand):
    product = factories.ProductFactory(brand=brand, inventory=5)
    order = host_client.post(
        "/api/v1/orders", {"lines": [{"product": product.pk, "quantity": 1}]}, format="json"
    ).json()

    Order.objects.filter(pk=order["id"]).update(status="canceled")

    response = host_client.post(
        f"/api/v1/orders/{order['id']}/pay",
        {"amount": order["total"], "payment_reference": "p"},
        format="json",
    )

    assert response.status_code == 409
    detail = response.json()["errors"][0]["detail"]
    assert detail.startswith("Cannot pay an order that is canceled")
    assert "orders that are: pending_payment" in detail


@pytest.mark.parametrize("raw", ["²", "١٢", "0" * 5000 + "1", "12345"])
def test_a_page_size_that_is_not_ascii_digits_of_sane_length_is_a_400(host_client, raw):
    response = host_client.get("/api/v1/orders", {"page_size": raw})

    assert response.status_code == 400
    assert _errors(response) == [("invalid_page_size", "page_size")]


def test_a_garbled_last_event_id_is_ignored_and_the_feed_starts_from_the_top():
    assert [parse_last_event_id(v) for v in ("²", "²:1", "١٢", "9" * 5000, "12:3")] == [
        0,
        0,
        0,
        0,
        12,
    ]
