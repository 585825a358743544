"""The integrator's guide's examples, as functions a test runs against the real service.

``docs/integrators.md`` quotes the regions between ``# [start:NAME]`` and ``# [end:NAME]``
word for word, and ``tests/clients/test_examples.py`` checks the quotes and runs every function,
so an example in the guide cannot stop working without a test failing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import requests

from clients import Conflict, LiveCommerceClient, Unprocessable, ValidationError
from clients.webhooks import WebhookVerificationError, verify


# [start:raw_http]
def raw_http_first_call(base_url: str, key: str) -> dict:
    """The protocol without the SDK: a Bearer key, JSON, and an Idempotency-Key on POST."""
    response = requests.get(
        f"{base_url}/api/v1/me",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()  # {"type": "partner", "partner": {...}, "api_key": {...}, ...}


# [end:raw_http]


# [start:onboarding]
def onboard_partners(base_url: str, ops_key: str) -> dict[str, str]:
    """Ops onboards a fulfillment partner, a brand, a host app and a creator, sets a
    commission plan, and issues each partner an API key (shown once: store it now)."""
    with LiveCommerceClient(base_url, ops_key) as ops:
        fulfiller = ops.partners.create(kind="fulfillment", name="ShopLive Fulfilment")
        brand = ops.partners.create(
            kind="brand", name="Glow Cosmetics", fulfillment_partner=fulfiller["id"]
        )
        host_app = ops.partners.create(kind="host_app", name="ClipShop", brand_access="open")
        creator = ops.partners.create(kind="creator", name="Ava Makeup")
        ops.commission_plans.create(
            name="Standard",
            platform_rate_bps=800,  # 8% to the platform
            creator_rate_bps=500,  # 5% to the creator who sold it
            fulfillment_rate_bps=300,  # 3% to the fulfillment partner
            currency="USD",
        )
        keys = {"ops": ops_key}
        for role, partner in [
            ("fulfillment", fulfiller),
            ("brand", brand),
            ("host_app", host_app),
            ("creator", creator),
        ]:
            keys[role] = ops.partners.create_api_key(partner["id"], name="production")["key"]
            keys[f"{role}_id"] = partner["id"]
        return keys


# [end:onboarding]


# [start:first_order]
def first_order(base_url: str, keys: dict[str, str]) -> dict:
    """The fulfillment partner lists a product; the host app runs a live session with the
    creator, takes an order during it and pays it. Amounts are decimal strings."""
    with LiveCommerceClient(base_url, keys["fulfillment"]) as fulfiller:
        product = fulfiller.products.create(
            brand=keys["brand_id"],
            sku="LIP-RED-01",
            title="Velvet lipstick, red",
            category="beauty",
            price=Decimal("19.99"),
            currency="USD",
            inventory=50,
        )

    with LiveCommerceClient(base_url, keys["host_app"]) as host:
        session = host.live_sessions.create(
            title="Friday glow-up",
            creator=keys["creator_id"],
            scheduled_start=datetime.now(UTC),
            products=[product["id"]],
        )
        host.live_sessions.start(session["id"])

        order = host.orders.create(
            lines=[{"product": product["id"], "quantity": 2}],
            live_session=session["id"],
            buyer={"reference": "viewer-8812", "email": "viewer@example.com"},
            shipping_amount="4.99",
            tax_amount="3.20",
        )
        # The total comes from the catalog: 2 x 19.99 + 4.99 + 3.20 = 48.17
        return host.orders.pay(order["id"], amount=order["total"], payment_reference="psp_ch_1")


# [end:first_order]


# [start:fulfil]
def fulfil(base_url: str, keys: dict[str, str], order_id: str) -> dict:
    """The fulfillment partner accepts, ships and delivers a paid order."""
    with LiveCommerceClient(base_url, keys["fulfillment"]) as fulfiller:
        fulfiller.orders.accept(order_id)
        fulfiller.orders.ship(order_id, carrier="UPS", tracking_number="1Z999AA10123456784")
        return fulfiller.orders.deliver(order_id)


# [end:fulfil]


# [start:money_split]
def money_split(base_url: str, keys: dict[str, str], order_id: str) -> dict:
    """Where the buyer's money went: each share, net of refunds, adding up to the cent."""
    with LiveCommerceClient(base_url, keys["host_app"]) as host:
        totals = host.orders.breakdown(order_id)["totals"]
        shares = [
            "platform_commission",
            "creator_commission",
            "fulfillment_fees",
            "shipping",
            "tax",
            "brand_net",
        ]
        assert sum(Decimal(totals[s]) for s in shares) == Decimal(totals["paid"]) - Decimal(
            totals["refunded"]
        )
        return totals


# [end:money_split]


# [start:register_webhook]
def register_webhook(base_url: str, key: str, url: str) -> str:
    """Subscribe an endpoint to order events; keep the returned secret to check signatures."""
    with LiveCommerceClient(base_url, key) as client:
        endpoint = client.webhook_endpoints.create(
            url=url, events=["order.paid", "order.canceled", "order.refunded"]
        )
        return endpoint["secret"]  # "whsec_...", shown now and on rotate-secret only


# [end:register_webhook]


# [start:receive_webhook]
seen_webhook_ids: set[str] = set()  # in production: a table with a unique constraint
last_sequence: dict[str, int] = {}  # per object id: the newest event applied


def receive_webhook(secret: str, headers: dict[str, str], body: bytes) -> int:
    """A webhook handler: check the signature on the raw body, drop repeats, ignore stale
    events, and answer 2xx quickly. Returns the HTTP status to answer with."""
    try:
        event = verify(secret, headers, body)
    except WebhookVerificationError:
        return 400  # not from the service (or replayed long after): do not act on it
    if headers["webhook-id"] in seen_webhook_ids:
        return 200  # delivery is at least once: this one was handled already
    seen_webhook_ids.add(headers["webhook-id"])
    order = event["data"]
    if event["sequence"] <= last_sequence.get(order["id"], 0):
        return 200  # an older event arriving late: the newer state is already applied
    last_sequence[order["id"]] = event["sequence"]
    print(f"{event['type']}: order {order['id']} is {order['status']}")
    return 200


# [end:receive_webhook]


# [start:idempotency]
def create_order_exactly_once(base_url: str, key: str, product_id: str) -> tuple[dict, dict]:
    """Every POST carries an Idempotency-Key; the client reuses it on its own retries. To
    survive your own crash, store the key with your cart and send it again."""
    with LiveCommerceClient(base_url, key) as host:
        cart_key = str(uuid.uuid4())  # saved with the buyer's cart before calling
        lines = [{"product": product_id, "quantity": 1}]
        first = host.orders.create(lines=lines, idempotency_key=cart_key)
        # ... the app crashed before it saw the answer; on restart it sends the same request:
        again = host.orders.create(lines=lines, idempotency_key=cart_key)
        assert again["id"] == first["id"]
        assert host.last_response.headers["Idempotent-Replayed"] == "true"
        return first, again


# [end:idempotency]


# [start:errors]
def handle_errors(base_url: str, key: str, order_id: str, product_id: str) -> list[str]:
    """Errors are typed exceptions carrying the contract's codes; branch on ``code``."""
    with LiveCommerceClient(base_url, key) as host:
        codes = []
        try:
            host.orders.pay(order_id, amount="0.01", payment_reference="psp_ch_2")
        except Unprocessable as error:  # 422
            codes.append(error.code)  # "amount_mismatch": pay exactly the order's total
        except Conflict as error:  # 409
            codes.append(error.code)  # "invalid_transition": e.g. the order is already paid
        try:
            host.orders.create(lines=[{"product": product_id, "quantity": 1_000}])
        except Conflict as error:
            codes.append(error.code)  # "insufficient_inventory"
        try:
            host.orders.create(lines=[{"product": product_id, "quantity": 1}], tax_amount="1.001")
        except ValidationError as error:  # 400: error.attr names the field
            codes.append(f"{error.attr}: {error.code}")  # too many decimal places for USD
        return codes


# [end:errors]


# [start:pagination]
def paid_orders(base_url: str, key: str) -> list[dict]:
    """Lists are cursor-paginated; ``iterate`` follows ``next`` to the end. Filters are
    query parameters named after fields."""
    with LiveCommerceClient(base_url, key) as host:
        return list(host.orders.list(status="paid", page_size=100))


# [end:pagination]


# [start:catch_up]
def catch_up(base_url: str, key: str, since: datetime) -> list[dict]:
    """After an outage, read what was missed from ``GET /events`` and put it in order."""
    with LiveCommerceClient(base_url, key) as client:
        events = list(client.events.list(created_after=since))
        return sorted(events, key=lambda e: (e["data"].get("id", ""), e["sequence"]))


# [end:catch_up]
