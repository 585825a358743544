"""The simulated partner apps play the whole story against the real service over HTTP."""

import io
from collections import Counter

import pytest
from django.core.management import call_command

from clients.simulators import FulfillmentPartner, HostApp, run_scenario
from clients.simulators.drop import run_drop

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_scenario_sells_ships_settles_and_the_books_agree(
    base_url, ops_key, finance_key, settings
):
    # given a service that may call local webhook URLs, with return windows closing at once
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.RETURN_WINDOW_DAYS = 0
    out = io.StringIO()

    # when the host app, the fulfillment partner and finance play it out
    result = run_scenario(
        base_url,
        ops_key=ops_key,
        finance_key=finance_key,
        viewers=16,
        seed=3,
        abandon_rate=0.15,
        cancel_rate=0.25,
        return_rate=0.5,
        close_return_windows=lambda: call_command("close_return_windows", stdout=io.StringIO()),
        out=out,
        progress_out=io.StringIO(),
    )

    # then every check passed, and the story had every twist in it
    printed = out.getvalue()
    assert result.ok, printed
    outcomes = Counter(p.outcome for p in result.purchases)
    assert outcomes["paid"] >= 5
    assert outcomes["abandoned"] + outcomes["canceled"] + outcomes["refunded"] >= 3, outcomes
    statuses = Counter(o["status"] for o in result.orders)
    assert statuses["completed"] == outcomes["paid"], statuses
    assert statuses["refunded"] == outcomes["refunded"], statuses
    assert "receives order.paid webhooks" in printed
    assert "Returns: " in printed and "Returns: 0 item" not in printed
    # and each payee (two brands, the creator, the fulfillment partner) was paid out
    paid = [s for s in result.settled.settlements if s["partner"] in result.names]
    assert len(paid) == 4
    assert {s["status"] for s in paid} == {"paid"}
    # and money came back: a return after payout, a debt written off, a statement that agrees
    names = {check.name for check in result.checks}
    assert {
        "a refund after payout leaves the payee owing its share",
        "a write-off clears the debt",
        "statement: opening + lines = closing",
        "statement: opening and closing = balances as of their moments",
        "statement shows the refund and the write-off",
        "statement CSV says the same",
    } <= names, printed
    assert "== Finance: money back" in printed


def test_a_buyer_who_changes_their_mind_after_acceptance_is_refunded_in_full(shop):
    order = shop.order(quantity=2, shipping_amount="4.99", tax_amount="1.00")
    paid = shop.host.orders.pay(order["id"], amount=order["total"], payment_reference="ch_1")
    shop.fulfiller.orders.accept(order["id"])  # too late to cancel

    purchase = HostApp(shop.host).change_of_mind(shop.host, "viewer-1", paid)

    assert purchase.outcome == "refunded"
    assert purchase.order["status"] == "refunded"
    assert purchase.order["refunded_amount"] == order["total"]
    # and the fulfillment partner, hearing of it late, leaves it alone
    assert FulfillmentPartner(shop.fulfiller).fulfil(order["id"]) == "refunded"


def test_the_fulfillment_partner_ships_and_restocks_what_runs_low(shop):
    shop.fulfiller.products.update(shop.product["id"], inventory=3)
    order = shop.order(quantity=2)
    shop.host.orders.pay(order["id"], amount=order["total"], payment_reference="ch_2")
    fulfiller = FulfillmentPartner(shop.fulfiller, restock_below=5, restock_to=40)

    status = fulfiller.fulfil(order["id"])

    assert status == "delivered"
    delivered = shop.host.orders.get(order["id"])
    assert delivered["carrier"] and delivered["tracking_number"]
    assert shop.fulfiller.products.get(shop.product["id"])["inventory"] == 40
    assert fulfiller.stats["restocked"] == 1


def test_without_webhooks_the_fulfillment_partner_catches_up_from_the_api(shop, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    fulfiller = FulfillmentPartner(shop.fulfiller)
    assert fulfiller.listen() is False  # the service refuses a local URL
    orders = [shop.order() for _ in range(3)]
    for order in orders:
        shop.host.orders.pay(order["id"], amount=order["total"], payment_reference=order["id"])

    fulfiller.start()
    try:
        done = fulfiller.wait_until(
            lambda: not list(shop.host.orders.list(status="paid")), timeout=30
        )
    finally:
        fulfiller.stop()

    assert done
    assert {shop.host.orders.get(o["id"])["status"] for o in orders} == {"delivered"}


def test_the_host_app_runs_a_drop_and_watches_it_on_the_feed(base_url, ops_key):
    out = io.StringIO()

    # when a drop runs against the service (the embedded default's WSGI feed), with the
    # operator expiring the abandoned checkouts
    run = run_drop(
        base_url,
        ops_key=ops_key,
        units=6,
        buyers=12,
        abandon=2,
        hold_seconds=4,
        expire=lambda: call_command("expire_orders", stdout=io.StringIO()),
        out=out,
    )

    # then every check passed: 6 units sold once (4 paid at the flash price, 2 expired and
    # back), 6 buyers told available 0, and the feed showed the sell-out, the units coming
    # back and the end of the show
    printed = out.getvalue()
    assert run.ok, printed
    assert len(run.result.sold) == 4
    assert len(run.result.expired) == 2
    assert [e["available"] for e in run.result.sold_out] == [0] * 6
    assert run.result.events("product.back_in_stock")[0]["available"] == 2
    assert "[feed] product.sold_out" in printed
