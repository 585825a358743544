"""The integrator's guide cannot go stale: its examples are quoted from clients/examples.py,
checked word for word here, and each one is run against the real service over HTTP."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from clients import examples
from clients.webhooks import WebhookReceiver
from livecommerce.errors import ERROR_CODES

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "integrators.md"
SOURCE = ROOT / "clients" / "examples.py"


def _regions() -> dict[str, str]:
    text = SOURCE.read_text()
    found = re.findall(r"^# \[start:(\w+)\]\n(.*?)^# \[end:\1\]", text, flags=re.S | re.M)
    return {name: body.strip() for name, body in found}


def _quotes() -> dict[str, str]:
    text = GUIDE.read_text()
    found = re.findall(r"<!-- example:(\w+) -->\n```python\n(.*?)```", text, flags=re.S)
    return {name: body.strip() for name, body in found}


def test_the_guide_quotes_every_example_word_for_word():
    regions, quotes = _regions(), _quotes()

    assert set(quotes) == set(regions), "every example is quoted once, and only examples"
    for name, body in quotes.items():
        assert body == regions[name], f"docs/integrators.md's '{name}' differs from examples.py"


def test_the_guides_error_codes_are_the_services():
    rows = re.findall(r"^\| `(\w+)` \| (\d{3}) \| (.+) \|$", GUIDE.read_text(), flags=re.M)

    assert len(rows) >= 10
    for code, status, meaning in rows:
        assert code in ERROR_CODES, f"the guide lists {code}, which the service never sends"
        assert (int(status), meaning) == ERROR_CODES[code]


@pytest.mark.django_db(transaction=True)
def test_the_guides_examples_work_against_the_service(base_url, ops_key, settings, capsys):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the receiver below listens on 127.0.0.1
    started = datetime.now(UTC) - timedelta(seconds=1)

    # keys
    assert examples.raw_http_first_call(base_url, ops_key)["role"] == "ops"
    keys = examples.onboard_partners(base_url, ops_key)
    assert examples.raw_http_first_call(base_url, keys["host_app"])["partner"]["kind"] == (
        "host_app"
    )

    # webhooks: the host app's endpoint is a real HTTP receiver on 127.0.0.1
    with WebhookReceiver() as receiver:
        secret = examples.register_webhook(base_url, keys["host_app"], receiver.url)
        receiver.secret = secret

        # first order
        order = examples.first_order(base_url, keys)
        assert order["status"] == "paid"
        assert order["total"] == "48.17"
        receiver.wait_for(lambda events: "order.paid" in [e["type"] for e in events])

    # the guide's handler accepts what the service signed, once, and refuses a forgery
    delivered = [a for a in receiver.attempts if a.verified]
    assert [examples.receive_webhook(secret, a.headers, a.body) for a in delivered] == [200]
    assert f"order.paid: order {order['id']} is paid" in capsys.readouterr().out
    assert examples.receive_webhook(secret, delivered[0].headers, delivered[0].body) == 200
    assert capsys.readouterr().out == ""  # a repeat is acknowledged, not acted on again
    forged = delivered[0].body.replace(b'"paid"', b'"refunded"')
    assert examples.receive_webhook(secret, delivered[0].headers, forged) == 400

    # fulfilment and the money split
    assert examples.fulfil(base_url, keys, order["id"])["status"] == "delivered"
    totals = examples.money_split(base_url, keys, order["id"])
    assert Decimal(totals["paid"]) == Decimal("48.17")

    # idempotency, errors, pagination, catching up
    product_id = order["lines"][0]["product"]
    first, again = examples.create_order_exactly_once(base_url, keys["host_app"], product_id)
    assert first == again
    codes = examples.handle_errors(base_url, keys["host_app"], order["id"], product_id)
    assert codes[0] in {"invalid_transition", "amount_mismatch"}
    assert codes[1:] == ["insufficient_inventory", "tax_amount: too_many_decimal_places"]
    assert [o["id"] for o in examples.paid_orders(base_url, keys["host_app"])] == []
    caught_up = examples.catch_up(base_url, keys["host_app"], since=started)
    mine = [e["type"] for e in caught_up if e["data"].get("id") == order["id"]]
    assert mine[:2] == ["order.created", "order.paid"]
    assert mine[-1] == "order.delivered"
