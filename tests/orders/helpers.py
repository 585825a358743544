"""API helpers for the order tests: every step goes through the HTTP API, as a partner would."""

import io
from datetime import timedelta

import time_machine
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone


def codes(response) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


def actor_of(client) -> str:
    """How the order history names the caller behind ``client``."""
    return f"partner:{client.partner.pk}" if client.partner else f"staff:{client.role}"


def place_order(client, product, *, quantity=2, live_session=None, **extra):
    body = {"lines": [{"product": product.pk, "quantity": quantity}], **extra}
    if live_session is not None:
        body["live_session"] = live_session.pk
    response = client.post("/api/v1/orders", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def act(client, order_id: str, action: str, body=None):
    """POST /orders/{id}/{action} with the body the action needs."""
    if body is None:
        body = ACTION_BODIES.get(action, {})
        if action == "pay":
            body = {"amount": client.get(f"/api/v1/orders/{order_id}").json()["total"], **body}
    return client.post(f"/api/v1/orders/{order_id}/{action}", body, format="json")


ACTION_BODIES = {
    "pay": {"payment_reference": "pi_test"},
    "ship": {"carrier": "UPS", "tracking_number": "1Z999"},
    "refunds": {"amount": "1.00", "reason": "goodwill"},
}

# How to reach each status from pending_payment, and who does each step (``completed``: see
# ``order_in``).
PATHS = {
    "pending_payment": [],
    "paid": [("pay", "host_app")],
    "accepted": [("pay", "host_app"), ("accept", "fulfillment")],
    "shipped": [("pay", "host_app"), ("accept", "fulfillment"), ("ship", "fulfillment")],
    "delivered": [
        ("pay", "host_app"),
        ("accept", "fulfillment"),
        ("ship", "fulfillment"),
        ("deliver", "fulfillment"),
    ],
    "canceled": [("cancel", "host_app")],
    "refunded": [("pay", "host_app"), ("refund_all", "host_app")],
    "expired": [("expire", None)],
}


def expire_holds(*, seconds: int = 24 * 3600) -> str:
    """Run the operator's ``expire_orders`` ``seconds`` from now (default: past every hold)."""
    out = io.StringIO()
    with time_machine.travel(timezone.now() + timedelta(seconds=seconds), tick=False):
        call_command("expire_orders", stdout=out)
    return out.getvalue()


def close_return_windows(*, days: int | None = None) -> str:
    """Run the operator's command ``days`` from now (default: just after the return window)."""
    if days is None:
        days = settings.RETURN_WINDOW_DAYS
    out = io.StringIO()
    with time_machine.travel(timezone.now() + timedelta(days=days, minutes=1), tick=False):
        call_command("close_return_windows", stdout=out)
    return out.getvalue()


def walk_to(status: str, order_id: str, roles: dict) -> dict:
    """Move an order from pending_payment to ``status`` through the API."""
    for step, role in PATHS[status]:
        client = roles[role] if role else None
        if step == "expire":
            assert "Expired 1 " in expire_holds()
            continue
        if step == "refund_all":
            total = client.get(f"/api/v1/orders/{order_id}").json()["total"]
            response = act(client, order_id, "refunds", {"amount": total})
        else:
            response = act(client, order_id, step)
        assert response.status_code in (200, 201), (step, response.json())
    order = roles["host_app"].get(f"/api/v1/orders/{order_id}").json()
    assert order["status"] == status
    return order


def order_in(status: str, roles: dict, product, **order_fields) -> str:
    """A new order of ``product`` in ``status``, placed by ``roles["host_app"]``.

    A completed order is placed and delivered a return window ago, then completed now by the
    operator's command, so that its history stays in the order things happened.
    """
    if status != "completed":
        order = place_order(roles["host_app"], product, **order_fields)
        walk_to(status, order["id"], roles)
        return order["id"]
    past = timezone.now() - timedelta(days=settings.RETURN_WINDOW_DAYS, hours=1)
    with time_machine.travel(past, tick=True):
        order = place_order(roles["host_app"], product, **order_fields)
        walk_to("delivered", order["id"], roles)
    call_command("close_return_windows", stdout=io.StringIO())
    assert roles["host_app"].get(f"/api/v1/orders/{order['id']}").json()["status"] == status
    return order["id"]
