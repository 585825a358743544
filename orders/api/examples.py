"""Example values for the OpenAPI docs of the catalog, live session and order endpoints."""

from drf_spectacular.utils import OpenApiExample

PRD = "prd_01jd3x6q2c7h9k4m8n2p5r7t9v"
BRAND = "prt_01jd3x6q2c7h9k4m8n2p5brand"
HOST = "prt_01jd3x6q2c7h9k4m8n2p5host1"
FULFILLER = "prt_01jd3x6q2c7h9k4m8n2p5fulfl"
CREATOR = "prt_01jd3x6q2c7h9k4m8n2p5crtor"
SESSION = "lvs_01jd3x6q2c7h9k4m8n2p5r7t9v"
ORDER = "ord_01jd3x6q2c7h9k4m8n2p5r7t9v"
LINE = "oln_01jd3x6q2c7h9k4m8n2p5r7t9v"
NOW = "2026-11-23T12:00:00.000000Z"

PRODUCT_VALUE = {
    "id": PRD,
    "brand": BRAND,
    "sku": "LIP-RED-01",
    "title": "Velvet lipstick, red",
    "category": "beauty",
    "price": "19.99",
    "currency": "USD",
    "inventory": 120,
    "created": NOW,
    "updated": NOW,
}
ORDER_VALUE = {
    "id": ORDER,
    "status": "paid",
    "host_app": HOST,
    "brand": BRAND,
    "fulfillment_partner": FULFILLER,
    "live_session": SESSION,
    "creator": CREATOR,
    "currency": "USD",
    "subtotal": "39.98",
    "shipping_amount": "4.99",
    "tax_amount": "3.20",
    "total": "48.17",
    "refunded_amount": "0.00",
    "buyer": {"reference": "viewer-8812", "email": "ana@example.com"},
    "shipping_address": {"line1": "1 Main St", "city": "Austin", "country": "US"},
    "payment_reference": "pi_3Q9x",
    "carrier": "",
    "tracking_number": "",
    "created": NOW,
    "updated": NOW,
    "paid_at": NOW,
    "accepted_at": None,
    "shipped_at": None,
    "delivered_at": None,
    "completed_at": None,
    "canceled_at": None,
    "expires_at": "2026-11-23T12:15:00.000000Z",
    "lines": [
        {
            "id": LINE,
            "product": PRD,
            "sku": "LIP-RED-01",
            "title": "Velvet lipstick, red",
            "quantity": 2,
            "unit_price": "19.99",
            "list_price": "19.99",
            "subtotal": "39.98",
            "refunded_quantity": 0,
            "refunded_amount": "0.00",
        }
    ],
}
ORDER_EXAMPLE = OpenApiExample("An order", value=ORDER_VALUE, response_only=True)
SESSION_VALUE = {
    "id": SESSION,
    "producer": FULFILLER,
    "creator": CREATOR,
    "title": "Friday glow-up live",
    "scheduled_start": "2026-11-27T18:00:00.000000Z",
    "status": "scheduled",
    "products": [PRD],
    "host_apps": [HOST],
    "started_at": None,
    "ended_at": None,
    "hold_seconds": 300,
    "live_prices": {PRD: "14.99"},
    "created": NOW,
    "updated": NOW,
}
REFUND_VALUE = {
    "id": "rfd_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "order": ORDER,
    "currency": "USD",
    "amount": "19.99",
    "shipping_amount": "0.00",
    "tax_amount": "0.00",
    "reason": "Wrong shade",
    "restock": True,
    "lines": [{"line": LINE, "quantity": 1, "amount": "19.99"}],
    "created_by": f"partner:{HOST}",
    "created": NOW,
}

FEED_EXAMPLE = (
    "id: 3:12\n"
    "event: stats\n"
    'data: {"live_session": "'
    + SESSION
    + '", "status": "live", "orders": 41, "units_sold": 50, "gross": {"USD": "749.50"}, '
    '"available": {"' + PRD + '": 0}, "at": "' + NOW + '"}\n\n'
    "id: 4\n"
    "event: product.sold_out\n"
    'data: {"product": "' + PRD + '", "available": 0, "live_sessions": ["' + SESSION + '"]}\n\n'
)
FEED_MESSAGE_EXAMPLE = {
    "id": "4",
    "event": "product.sold_out",
    "data": '{"product": "' + PRD + '", "available": 0, "live_sessions": ["' + SESSION + '"]}',
}
