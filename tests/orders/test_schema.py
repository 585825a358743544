"""The published schema lists the catalog, live session and order operations with their errors."""

import pytest
import yaml

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("get", "/api/v1/products"): {},
    ("post", "/api/v1/products"): {
        "400": {"invalid_reference", "invalid_currency", "too_many_decimal_places"},
        "409": {"duplicate_sku"},
    },
    ("get", "/api/v1/products/{id}"): {},
    ("patch", "/api/v1/products/{id}"): {"409": {"duplicate_sku"}},
    ("get", "/api/v1/live-sessions"): {},
    ("post", "/api/v1/live-sessions"): {"422": {"brand_not_enrolled"}},
    ("get", "/api/v1/live-sessions/{id}"): {},
    ("post", "/api/v1/live-sessions/{id}/start"): {"409": {"invalid_transition"}},
    ("post", "/api/v1/live-sessions/{id}/end"): {"409": {"invalid_transition"}},
    ("get", "/api/v1/orders"): {},
    ("post", "/api/v1/orders"): {
        "400": {"invalid_reference", "too_many_decimal_places"},
        "409": {"insufficient_inventory"},
        "422": {"mixed_order"},
    },
    ("get", "/api/v1/orders/{id}"): {},
    ("post", "/api/v1/orders/{id}/pay"): {
        "409": {"invalid_transition"},
        "422": {"amount_mismatch", "no_commission_plan"},
    },
    ("post", "/api/v1/orders/{id}/cancel"): {"409": {"invalid_transition"}},
    ("post", "/api/v1/orders/{id}/accept"): {"409": {"invalid_transition"}},
    ("post", "/api/v1/orders/{id}/ship"): {"409": {"invalid_transition"}},
    ("post", "/api/v1/orders/{id}/deliver"): {"409": {"invalid_transition"}},
    ("get", "/api/v1/orders/{id}/refunds"): {},
    ("post", "/api/v1/orders/{id}/refunds"): {"409": {"invalid_transition", "refund_exceeds_paid"}},
    ("get", "/api/v1/orders/{id}/events"): {},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        return yaml.safe_load(Client().get("/api/schema/").content)


@pytest.mark.parametrize(("method", "path"), list(OPERATIONS))
def test_each_operation_is_documented_with_its_domain_errors(schema, method, path):
    operation = schema["paths"][path][method]

    assert operation["summary"]
    assert any(example for example in _examples(operation)), "no example"
    for status, expected in OPERATIONS[(method, path)].items():
        documented = {
            example["value"]["errors"][0]["code"]
            for example in operation["responses"][status]["content"]["application/json"][
                "examples"
            ].values()
        }
        assert expected <= documented, (status, documented)


def test_lists_are_cursor_paginated_with_their_filters(schema):
    orders = schema["paths"]["/api/v1/orders"]["get"]
    names = {p["name"] for p in orders["parameters"]}

    assert {
        "cursor",
        "page_size",
        "status",
        "live_session",
        "brand",
        "host_app",
        "creator",
        "created_after",
        "created_before",
    } <= names
    assert orders["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "PaginatedOrderList"
    )


def test_amounts_are_strings(schema):
    order = schema["components"]["schemas"]["Order"]["properties"]

    for field in ("subtotal", "shipping_amount", "tax_amount", "total", "refunded_amount"):
        assert order[field]["type"] == "string"


def _examples(operation):
    bodies = [operation.get("requestBody", {}), *operation["responses"].values()]
    for body in bodies:
        for content in body.get("content", {}).values():
            yield from content.get("examples", {}).values()
