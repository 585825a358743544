"""The published schema lists the catalog, live session and order operations with their errors."""

import pytest
import yaml
from django.test import Client

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
    ("patch", "/api/v1/live-sessions/{id}"): {"400": {"invalid_reference"}},
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
        "409": {"invalid_transition", "order_expired"},
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


def test_live_drops_are_documented(schema):
    components = schema["components"]["schemas"]

    # new fields: the order's hold, the line's catalog price, the show's hold and live prices
    assert "expires_at" in components["Order"]["properties"]
    assert components["OrderLine"]["properties"]["list_price"]["type"] == "string"
    session = components["LiveSession"]["properties"]
    assert {"hold_seconds", "live_prices"} <= set(session)
    assert session["live_prices"]["additionalProperties"]["type"] == "string"
    create = components["LiveSessionCreateRequest"]["properties"]
    assert {"hold_seconds", "live_prices"} <= set(create)
    # the new status and the new event types
    assert "expired" in components["OrderStatusEnum"]["enum"]
    events = str(schema["components"]["schemas"])
    for event in ("order.expired", "product.sold_out", "product.back_in_stock"):
        assert event in events, event
    # a sold-out 409 carries "available"
    conflict = schema["paths"]["/api/v1/orders"]["post"]["responses"]["409"]["content"][
        "application/json"
    ]
    item = conflict["schema"]["$ref"].rsplit("/", 1)[1]
    items = components[item]["properties"]["errors"]["items"]["$ref"].rsplit("/", 1)[1]
    assert "available" in components[items]["properties"]
    examples = [e["value"]["errors"][0] for e in conflict["examples"].values()]
    assert {"code": "insufficient_inventory", "available": 0}.items() <= examples[0].items()
    # the feed: Server-Sent Events with Last-Event-ID
    feed = schema["paths"]["/api/v1/live-sessions/{id}/feed"]["get"]
    stream = feed["responses"]["200"]["content"]["text/event-stream"]
    assert stream["schema"]["$ref"].endswith("LiveFeedMessage")
    assert "Last-Event-ID" in {p["name"] for p in feed["parameters"]}
    for event in ("stats", "product.sold_out", "product.back_in_stock", "live_session.ended"):
        assert event in feed["description"]
