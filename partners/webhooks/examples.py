"""An example of every event type, for the API docs and for test sends.

``POST /webhook-endpoints/{id}/test`` sends the example of the type asked for (with
``"livemode": false``), so a receiver can be built and checked before any real order exists; the
schema documents each type with its example (``postprocess_event_types``). The examples have
the shape the services publish: the object's API representation (an order as ``GET
/orders/{id}`` shows it, a live session, a settlement), or, for the service's own notices about an
endpoint, the endpoint's id, URL and what happened. ``tests/webhooks/test_test_and_replay.py``
checks each against a real event of its type.

An event type added to ``EVENT_TYPES`` needs an example here (the schema test says which).
"""

import copy

from partners.webhooks.choices import EVENT_TYPES

# The object each event type's data is, by the prefix of the type (named in the docs).
DATA_COMPONENTS = {
    "order": "Order",
    "live_session": "LiveSession",
    "settlement": "Settlement",
}

_ORDER = {
    "id": "ord_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "status": "paid",
    "host_app": "prt_01jd3x6q2c7h9k4m8n2p5r7h0s",
    "brand": "prt_01jd3x6q2c7h9k4m8n2p5r7b1r",
    "fulfillment_partner": "prt_01jd3x6q2c7h9k4m8n2p5r7f2p",
    "live_session": "lvs_01jd3x6q2c7h9k4m8n2p5r7l3s",
    "creator": "prt_01jd3x6q2c7h9k4m8n2p5r7c4r",
    "currency": "USD",
    "subtotal": "39.98",
    "shipping_amount": "4.99",
    "tax_amount": "3.20",
    "total": "48.17",
    "refunded_amount": "0.00",
    "buyer": {"reference": "viewer-8812", "email": "viewer@example.com"},
    "shipping_address": None,
    "payment_reference": "psp_ch_1",
    "carrier": "",
    "tracking_number": "",
    "lines": [
        {
            "id": "oln_01jd3x6q2c7h9k4m8n2p5r7o5l",
            "product": "prd_01jd3x6q2c7h9k4m8n2p5r7p6d",
            "sku": "LIP-RED-01",
            "title": "Velvet lipstick, red",
            "quantity": 2,
            "unit_price": "19.99",
            "list_price": "24.99",
            "subtotal": "39.98",
            "refunded_quantity": 0,
            "refunded_amount": "0.00",
        }
    ],
    "created": "2026-11-23T12:00:00.000000Z",
    "updated": "2026-11-23T12:00:05.000000Z",
    "paid_at": "2026-11-23T12:00:05.000000Z",
    "accepted_at": None,
    "shipped_at": None,
    "delivered_at": None,
    "completed_at": None,
    "canceled_at": None,
    "expires_at": "2026-11-23T12:15:00.000000Z",
}


def _order(status: str, **changes) -> dict:
    order = copy.deepcopy(_ORDER)
    order.update(status=status, **changes)
    return order


_SHIPPED = {
    "accepted_at": "2026-11-23T13:00:00.000000Z",
    "shipped_at": "2026-11-24T09:00:00.000000Z",
    "carrier": "UPS",
    "tracking_number": "1Z999AA10123456784",
}
_REFUNDED_LINE = {**_ORDER["lines"][0], "refunded_quantity": 2, "refunded_amount": "39.98"}

_LIVE_SESSION = {
    "id": "lvs_01jd3x6q2c7h9k4m8n2p5r7l3s",
    "producer": "prt_01jd3x6q2c7h9k4m8n2p5r7h0s",
    "creator": "prt_01jd3x6q2c7h9k4m8n2p5r7c4r",
    "title": "Friday glow-up",
    "scheduled_start": "2026-11-23T11:55:00.000000Z",
    "status": "live",
    "products": ["prd_01jd3x6q2c7h9k4m8n2p5r7p6d"],
    "host_apps": ["prt_01jd3x6q2c7h9k4m8n2p5r7h0s"],
    "started_at": "2026-11-23T11:58:00.000000Z",
    "ended_at": None,
    "hold_seconds": 900,
    "live_prices": {"prd_01jd3x6q2c7h9k4m8n2p5r7p6d": "19.99"},
    "created": "2026-11-22T10:00:00.000000Z",
    "updated": "2026-11-23T11:58:00.000000Z",
}

_SETTLEMENT = {
    "id": "stl_01jd3x6q2c7h9k4m8n2p5r7s7t",
    "run": "run_01jd3x6q2c7h9k4m8n2p5r7r8n",
    "partner": "prt_01jd3x6q2c7h9k4m8n2p5r7b1r",
    "currency": "USD",
    "period_end": "2026-11-30",
    "status": "pending",
    "gross": "39.98",
    "platform_commission": "3.20",
    "creator_commission": "2.00",
    "fulfillment_fees": "1.20",
    "refunds": "0.00",
    "adjustments": "0.00",
    "net_payout": "33.58",
    "line_count": 1,
    "ledger_entry": "je_01jd3x6q2c7h9k4m8n2p5r7j9e",
    "payout_entry": None,
    "payout_reference": None,
    "failure_reason": None,
    "created": "2026-12-01T02:00:00.000000Z",
    "paid_at": None,
    "failed_at": None,
}

_ENDPOINT = {
    "id": "we_01jd3x6q2c7h9k4m8n2p5r7w0e",
    "url": "https://hooks.glow.example/livecommerce",
}

EVENT_EXAMPLES: dict[str, dict] = {
    "order.created": _order("pending_payment", paid_at=None, payment_reference=""),
    "order.paid": _order("paid"),
    "order.accepted": _order("accepted", accepted_at=_SHIPPED["accepted_at"]),
    "order.shipped": _order("shipped", **_SHIPPED),
    "order.delivered": _order("delivered", **_SHIPPED, delivered_at="2026-11-25T15:00:00.000000Z"),
    "order.completed": _order(
        "completed",
        **_SHIPPED,
        delivered_at="2026-11-25T15:00:00.000000Z",
        completed_at="2026-12-09T15:00:00.000000Z",
    ),
    "order.canceled": _order(
        "canceled",
        paid_at=None,
        payment_reference="",
        canceled_at="2026-11-23T12:10:00.000000Z",
    ),
    "order.expired": _order("expired", paid_at=None, payment_reference=""),
    "order.refunded": _order("refunded", refunded_amount="48.17", lines=[_REFUNDED_LINE]),
    "live_session.started": _LIVE_SESSION,
    "live_session.ended": {
        **_LIVE_SESSION,
        "status": "ended",
        "ended_at": "2026-11-23T13:00:00.000000Z",
        "updated": "2026-11-23T13:00:00.000000Z",
    },
    "settlement.created": _SETTLEMENT,
    "settlement.paid": {
        **_SETTLEMENT,
        "status": "paid",
        "payout_reference": "wire-2026-12-01-0042",
        "payout_entry": "je_01jd3x6q2c7h9k4m8n2p5r7p1o",
        "paid_at": "2026-12-02T10:00:00.000000Z",
    },
    "settlement.failed": {
        **_SETTLEMENT,
        "status": "failed",
        "failure_reason": "The bank refused the transfer: account closed.",
        "failed_at": "2026-12-02T10:00:00.000000Z",
    },
    "product.sold_out": {
        "product": "prd_01jd3x6q2c7h9k4m8n2p5r7p6d",
        "available": 0,
        "live_sessions": ["lvs_01jd3x6q2c7h9k4m8n2p5r7l3s"],
    },
    "product.back_in_stock": {
        "product": "prd_01jd3x6q2c7h9k4m8n2p5r7p6d",
        "available": 3,
        "live_sessions": ["lvs_01jd3x6q2c7h9k4m8n2p5r7l3s"],
    },
    "webhook_endpoint.disabled": {
        **_ENDPOINT,
        "reason": "The endpoint failed every attempt for 5 days, 0:00:00.",
        "failing_since": "2026-11-18T12:00:00.000000Z",
    },
    "webhook_endpoint.recovered": {
        **_ENDPOINT,
        "failing_since": "2026-11-20T12:00:00.000000Z",
        "recovered_at": "2026-11-20T14:30:00.000000Z",
    },
}

EXAMPLE_EVENT_ID = "evt_01jd3x6q2c7h9k4m8n2p5r7t9v"
EXAMPLE_CREATED = "2026-11-23T12:00:05.000000Z"


def example_event(event_type: str) -> dict:
    """A whole example event of ``event_type``, as a webhook carries it."""
    return {
        "id": EXAMPLE_EVENT_ID,
        "type": event_type,
        "created": EXAMPLE_CREATED,
        "sequence": 1,
        "livemode": True,
        "data": copy.deepcopy(EVENT_EXAMPLES[event_type]),
    }


def _schema_of(value) -> dict:
    """A JSON schema describing ``value`` (for event data with no component of its own)."""
    if value is None:
        return {"type": "string", "nullable": True}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array", "items": _schema_of(value[0]) if value else {}}
    return {
        "type": "object",
        "properties": {key: _schema_of(item) for key, item in value.items()},
    }


def event_type_component(event_type: str) -> str:
    """``order.paid`` -> ``OrderPaidEvent``: the schema component of that event type."""
    words = event_type.replace(".", "_").split("_")
    return "".join(word.capitalize() for word in words) + "Event"


def postprocess_event_types(result, generator, request, public):
    """One schema per event type, with its example, and each as a callback of the endpoint
    registration (OpenAPI 3.0's way to say what the service will POST to a URL it is given).
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    callbacks = {}
    for event_type in EVENT_TYPES:
        if event_type not in EVENT_EXAMPLES:
            continue  # tests/test_schema.py names every type without an example
        example = example_event(event_type)
        # Described from the example, not by a $ref to the object's component: the webhook is a
        # request the service sends, where the component's readOnly fields could not appear.
        data_schema = _schema_of(example["data"])
        component = DATA_COMPONENTS.get(event_type.split(".")[0])
        if component in schemas:
            data_schema["description"] = f"The `{component}` as the API shows it."
        name = event_type_component(event_type)
        schemas[name] = {
            "type": "object",
            "description": f"The `{event_type}` event, as a webhook delivers it.",
            "properties": {
                "id": {"type": "string", "description": "Same id in every delivery of it."},
                "type": {"type": "string", "enum": [event_type]},
                "created": {"type": "string", "format": "date-time"},
                "sequence": {
                    "type": "integer",
                    "description": "Counts the events of one object: 1, 2, 3, ...",
                },
                "livemode": {
                    "type": "boolean",
                    "description": "false for a test event (`POST .../test`).",
                },
                "data": data_schema,
            },
            "required": ["id", "type", "created", "sequence", "data"],
            "example": example,
        }
        callbacks[event_type] = {
            "{$request.body#/url}": {
                "post": {
                    "summary": f"{event_type}",
                    "security": [],  # the service calls the partner; a signature, no key
                    "description": (
                        f"Sent to every enabled endpoint subscribing to `{event_type}` (or `*`), "
                        "signed per Standard Webhooks: headers `webhook-id`, "
                        "`webhook-timestamp`, `webhook-signature`."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{name}"},
                                "example": example,
                            }
                        },
                    },
                    "responses": {
                        "2XX": {"description": "Received. Any other answer is retried."},
                        "410": {"description": "Gone: the endpoint is disabled at once."},
                    },
                }
            }
        }
    registration = result.get("paths", {}).get("/api/v1/webhook-endpoints", {}).get("post")
    if registration is not None and callbacks:
        registration["callbacks"] = callbacks
    return result
