"""Through the API only: a live-session order is paid, partly refunded, delivered and completed,
and its breakdown, the partners' ledger entries and balances show where every cent went."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

pytestmark = pytest.mark.django_db


def ok(response, status=200) -> dict:
    assert response.status_code == status, response.json()
    return response.json()


def test_order_to_breakdown(
    ops, finance, host_client, brand_client, fulfillment_client, creator_client, brand, creator
):
    # given a plan: 8% platform, 5% creator, 3% fulfillment, 1.50 per order in USD
    ok(
        ops.post(
            "/api/v1/commission-plans",
            {
                "platform_rate_bps": 800,
                "creator_rate_bps": 500,
                "fulfillment_rate_bps": 300,
                "fulfillment_fee_fixed": "1.50",
                "currency": "USD",
                "effective_from": (timezone.now() - timedelta(days=1)).isoformat(),
            },
        ),
        201,
    )
    lipstick = ok(
        brand_client.post(
            "/api/v1/products",
            {
                "sku": "LIP",
                "title": "Lipstick",
                "category": "beauty",
                "price": "19.99",
                "currency": "USD",
                "inventory": 10,
            },
        ),
        201,
    )
    palette = ok(
        brand_client.post(
            "/api/v1/products",
            {
                "sku": "PAL",
                "title": "Palette",
                "category": "beauty",
                "price": "24.50",
                "currency": "USD",
                "inventory": 10,
            },
        ),
        201,
    )
    session = ok(
        host_client.post(
            "/api/v1/live-sessions",
            {
                "creator": creator.pk,
                "title": "Glow hour",
                "scheduled_start": timezone.now().isoformat(),
                "products": [lipstick["id"], palette["id"]],
            },
        ),
        201,
    )

    # when the host app sells both during the show, the buyer pays, returns one lipstick
    order = ok(
        host_client.post(
            "/api/v1/orders",
            {
                "lines": [
                    {"product": lipstick["id"], "quantity": 2},
                    {"product": palette["id"], "quantity": 1},
                ],
                "live_session": session["id"],
                "shipping_amount": "5.00",
                "tax_amount": "5.16",
            },
        ),
        201,
    )
    assert order["total"] == "74.64"
    url = f"/api/v1/orders/{order['id']}"
    ok(host_client.post(f"{url}/pay", {"amount": "74.64", "payment_reference": "pi_1"}))
    lipstick_line = next(line for line in order["lines"] if line["sku"] == "LIP")["id"]
    ok(host_client.post(f"{url}/refunds", {"lines": [{"line": lipstick_line, "quantity": 1}]}), 201)
    ok(fulfillment_client.post(f"{url}/accept"))
    ok(fulfillment_client.post(f"{url}/ship", {"carrier": "UPS", "tracking_number": "1Z"}))
    ok(fulfillment_client.post(f"{url}/deliver"))
    with time_machine.travel(timezone.now() + timedelta(days=15)):
        call_command("close_return_windows", stdout=io.StringIO())
    assert ok(host_client.get(url))["status"] == "completed"

    # then the breakdown is docs/ledger.md's walk-through, to the cent
    breakdown = ok(brand_client.get(f"{url}/breakdown"))
    assert breakdown["totals"] == {
        "paid": "74.64",
        "refunded": "19.99",
        "platform_commission": "3.56",
        "creator_commission": "2.22",
        "fulfillment_fees": "2.38",
        "shipping": "5.00",
        "tax": "5.16",
        "brand_net": "36.33",
    }
    assert [line["paid"] for line in breakdown["lines"]] == ["39.98", "24.50"]
    assert [r["brand_net"] for r in breakdown["refunds"]] == ["16.33"]
    # the creator sees its own commission, not the other parties' shares (least data)
    creators = ok(creator_client.get(f"{url}/breakdown"))["totals"]
    assert creators["creator_commission"] == "2.22"
    assert creators["platform_commission"] is creators["brand_net"] is None

    # and each partner's balance is available now, and its entries show only its lines
    for client, available in (
        (brand_client, "36.33"),
        (creator_client, "2.22"),
        (fulfillment_client, "7.38"),
    ):
        assert ok(client.get("/api/v1/balances")) == [
            {
                "currency": "USD",
                "pending": "0.00",
                "available": available,
                "in_payout": "0.00",
                "paid_out": "0.00",
                "owed": "0.00",
            }
        ]
        entries = ok(client.get("/api/v1/ledger/entries", {"order": order["id"]}))["results"]
        assert [e["kind"] for e in entries] == ["release", "refund", "sale"]
        own = {client.partner.pk}
        assert all({line["partner"] for line in e["lines"]} == own for e in entries)
    assert ok(host_client.get("/api/v1/ledger/entries"))["results"] == []

    # and finance sees every entry balanced
    for entry in ok(finance.get("/api/v1/ledger/entries", {"order": order["id"]}))["results"]:
        debits = sum(Decimal(line["debit"]) for line in entry["lines"])
        credits = sum(Decimal(line["credit"]) for line in entry["lines"])
        assert debits == credits > 0
