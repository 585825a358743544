"""The schema is a promise: a typed client generated from it drives the service end to end.

openapi-python-client generates a typed client from /api/schema/; every call below goes over
real HTTP to the live server and is parsed by the generated models. A status the schema does not
list raises (``raise_on_unexpected_status``), and a body missing a field the schema declares
fails to parse, so any drift between what the schema promises and what the service sends fails
this test.
"""

import importlib
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from standardwebhooks.webhooks import Webhook

from tests import factories
from tests.conftest import client_for
from tests.webhooks.helpers import Receiver

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def typed(tmp_path_factory, django_db_blocker):
    out = tmp_path_factory.mktemp("typed_client")
    schema = out / "schema.json"
    with django_db_blocker.unblock():
        call_command("spectacular", file=str(schema), format="openapi-json", fail_on_warn=False)
    generator = shutil.which("openapi-python-client", path=str(VENV_BIN)) or shutil.which(
        "openapi-python-client"
    )
    assert generator, "openapi-python-client is not installed (requirements-dev.txt)"
    result = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(schema),
            "--meta",
            "none",
            "--output-path",
            str(out / "lc_client"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"},
        cwd=out,
    )
    assert (out / "lc_client" / "client.py").exists(), result.stdout + result.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("lc_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "lc_client" or m.startswith("lc_client.")]:
            del sys.modules[name]


def _client(typed, live_server, key):
    return typed.AuthenticatedClient(
        base_url=live_server.url, token=key, raise_on_unexpected_status=True
    )


def _api(typed, name):
    return importlib.import_module(f"lc_client.api.{name}")


def _model(typed, name):
    return getattr(importlib.import_module("lc_client.models"), name)


@pytest.mark.django_db(transaction=True)
def test_a_typed_client_generated_from_the_schema_runs_an_order_end_to_end(
    typed, live_server, settings
):
    # given the parties, each calling with its own key through the generated client
    fulfiller = factories.FulfillmentFactory()
    brand = factories.BrandFactory(fulfillment_partner=fulfiller)
    host = factories.HostAppFactory()
    ops = _client(typed, live_server, client_for(role="ops").key)
    finance = _client(typed, live_server, client_for(role="finance").key)
    host_c = _client(typed, live_server, client_for(partner=host).key)
    ful_c = _client(typed, live_server, client_for(partner=fulfiller).key)
    stranger = _client(typed, live_server, client_for(partner=factories.HostAppFactory()).key)
    M = lambda name: _model(typed, name)  # noqa: E731

    me = _api(typed, "directory.me_retrieve").sync_detailed(client=host_c)
    assert me.status_code == 200 and me.parsed.partner.id == host.id

    plan = _api(typed, "commissions.commission_plans_create").sync_detailed(
        client=ops,
        body=M("CommissionPlanInputRequest").from_dict(
            {
                "name": "Std",
                "platform_rate_bps": 800,
                "creator_rate_bps": 500,
                "fulfillment_rate_bps": 300,
                "fulfillment_fee_fixed": "0.50",
                "currency": "USD",
                "effective_from": "2020-01-01T00:00:00Z",
            }
        ),
    )
    assert plan.status_code == 201, plan.content
    assert isinstance(plan.parsed, M("CommissionPlan"))

    product = _api(typed, "catalog.products_create").sync_detailed(
        client=ful_c,
        body=M("ProductCreateRequest").from_dict(
            {
                "brand": brand.id,
                "sku": "SERUM",
                "title": "Serum",
                "price": "29.99",
                "currency": "USD",
                "inventory": 10,
            }
        ),
    )
    assert product.status_code == 201, product.content
    assert product.parsed.price == "29.99"

    # when the host app places and pays an order, and the fulfiller moves it along
    created = _api(typed, "orders.orders_create").sync_detailed(
        client=host_c,
        body=M("OrderCreateRequest").from_dict(
            {
                "lines": [{"product": product.parsed.id, "quantity": 2}],
                "shipping_amount": "4.99",
                "tax_amount": "5.10",
                "buyer": {"reference": "viewer-1", "email": "v@example.com"},
            }
        ),
        idempotency_key="order-1",
    )
    assert created.status_code == 201, created.content
    order = created.parsed
    assert isinstance(order, M("Order"))
    assert (order.subtotal, order.total, order.status) == ("59.98", "70.07", "pending_payment")

    wrong = _api(typed, "orders.orders_pay_create").sync_detailed(
        order.id,
        client=host_c,
        body=M("OrderPayRequest").from_dict({"amount": "1.00", "payment_reference": "pi_1"}),
    )
    assert wrong.status_code == 422
    assert wrong.parsed.errors[0].code == "amount_mismatch"

    paid = _api(typed, "orders.orders_pay_create").sync_detailed(
        order.id,
        client=host_c,
        body=M("OrderPayRequest").from_dict({"amount": "70.07", "payment_reference": "pi_1"}),
    )
    assert paid.status_code == 200, paid.content
    assert paid.parsed.status == "paid"

    hidden = _api(typed, "orders.orders_retrieve").sync_detailed(order.id, client=stranger)
    assert hidden.status_code == 404
    assert hidden.parsed.errors[0].code == "not_found"

    for action, body in (
        ("orders_accept_create", None),
        (
            "orders_ship_create",
            M("OrderShipRequest").from_dict({"carrier": "UPS", "tracking_number": "1Z999"}),
        ),
        ("orders_deliver_create", None),
    ):
        kwargs = {"body": body} if body is not None else {}
        moved = _api(typed, f"orders.{action}").sync_detailed(order.id, client=ful_c, **kwargs)
        assert moved.status_code == 200, (action, moved.content)

    illegal = _api(typed, "orders.orders_accept_create").sync_detailed(order.id, client=ful_c)
    assert illegal.status_code == 409
    assert illegal.parsed.errors[0].code == "invalid_transition"

    refund = _api(typed, "orders.orders_refunds_create").sync_detailed(
        order.id,
        client=host_c,
        body=M("RefundCreateRequest").from_dict(
            {"lines": [{"line": order.lines[0].id, "quantity": 1}], "reason": "damaged"}
        ),
    )
    assert refund.status_code == 201, refund.content

    # then the breakdown, ledger, balances and events all parse and add up
    breakdown = _api(typed, "commissions.orders_breakdown_retrieve").sync_detailed(
        order.id, client=finance
    )
    assert breakdown.status_code == 200, breakdown.content
    totals = breakdown.parsed.totals
    assert (totals.paid, totals.refunded) == ("70.07", "29.99")

    parts = (
        totals.platform_commission,
        totals.creator_commission,
        totals.fulfillment_fees,
        totals.shipping,
        totals.tax,
        totals.brand_net,
    )
    assert sum(Decimal(p) for p in parts) == Decimal(totals.paid) - Decimal(totals.refunded)

    entries = _api(typed, "ledger.ledger_entries_list").sync_detailed(client=finance)
    assert entries.status_code == 200
    for entry in entries.parsed.results:
        assert sum(Decimal(x.debit) for x in entry.lines) == sum(
            Decimal(x.credit) for x in entry.lines
        )

    balances = _api(typed, "ledger.balances_list").sync_detailed(client=ful_c)
    assert balances.status_code == 200, balances.content

    events = _api(typed, "events.events_list").sync_detailed(client=host_c)
    assert events.status_code == 200
    types = {e.type_ for e in events.parsed.results}
    assert {"order.created", "order.paid", "order.refunded"} <= types


@pytest.mark.django_db(transaction=True)
def test_a_typed_client_registers_an_endpoint_and_verifies_a_test_event(
    typed, live_server, settings
):
    # given a host app with a real receiver on 127.0.0.1

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    host_c = _client(typed, live_server, client_for(partner=factories.HostAppFactory()).key)
    M = lambda name: _model(typed, name)  # noqa: E731
    receiver = Receiver().start()
    try:
        # when it registers an endpoint and asks for a test event through the generated client
        created = _api(typed, "webhooks.webhook_endpoints_create").sync_detailed(
            client=host_c,
            body=M("WebhookEndpointCreateRequest").from_dict(
                {"url": receiver.url, "events": ["order.paid"]}
            ),
        )
        assert created.status_code == 201, created.content
        endpoint = created.parsed
        sent = _api(typed, "webhooks.webhook_endpoints_test_create").sync_detailed(
            endpoint.id,
            client=host_c,
            body=M("WebhookTestInputRequest").from_dict({"type": "order.paid"}),
        )
        assert sent.status_code == 200, sent.content
        assert (sent.parsed.succeeded, sent.parsed.status_code) == (True, 200)
        [got] = receiver.received
    finally:
        receiver.close()

    # then the standardwebhooks library verifies what arrived with the endpoint's secret
    payload = Webhook(endpoint.secret).verify(got.body, got.headers)
    assert payload["type"] == "order.paid"
    assert payload["livemode"] is False
    assert payload["id"] == sent.parsed.event_id
