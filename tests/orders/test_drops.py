"""Live drops (contract: "Live drops"): holds that expire, available units on a sell-out, stock
events, live prices, and the live feed read in-process (the served feed is in tests/system)."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from orders.models import LiveFeedMessage, Order, OrderEvent
from partners.models import Event
from tests import factories
from tests.conftest import client_for
from tests.orders.helpers import act, codes, expire_holds, place_order

pytestmark = pytest.mark.django_db


def parse_time(value: str):
    from rest_framework.fields import DateTimeField

    return DateTimeField().to_internal_value(value)


# --- holds that expire -----------------------------------------------------------------------


def test_an_order_holds_its_units_for_the_sessions_hold_or_the_default(
    roles, product, live_session, settings
):
    live_session.hold_seconds = 120
    live_session.save()
    settings.ORDER_HOLD_SECONDS = 600

    with_show = place_order(roles["host_app"], product, live_session=live_session)
    without = place_order(roles["host_app"], product)

    for order, hold in ((with_show, 120), (without, 600)):
        created = parse_time(order["created"])
        assert parse_time(order["expires_at"]) - created == pytest.approx(
            timedelta(seconds=hold), abs=timedelta(seconds=1)
        )


def test_an_unpaid_order_expires_its_units_come_back_and_partners_hear(roles, product, creator):
    order = place_order(roles["host_app"], product, quantity=3)
    product.refresh_from_db()
    assert product.inventory == 97

    # before its hold ends nothing happens; after it, the order expires
    assert "Expired 0" in expire_holds(seconds=60)
    assert "Expired 1" in expire_holds(seconds=901)

    expired = roles["host_app"].get(f"/api/v1/orders/{order['id']}").json()
    assert expired["status"] == "expired"
    product.refresh_from_db()
    assert product.inventory == 100
    history = roles["brand"].get(f"/api/v1/orders/{order['id']}/events").json()["results"]
    assert [(e["type"], e["from_status"], e["to_status"], e["actor"]) for e in history][-1] == (
        "expired",
        "pending_payment",
        "expired",
        "system",
    )
    event = Event.objects.get(object_id=order["id"], type="order.expired")
    assert event.sequence == 2
    assert event.data["status"] == "expired"
    assert {r.partner_id for r in event.recipients.all()} == {
        roles["host_app"].partner.pk,
        roles["brand"].partner.pk,
        roles["fulfillment"].partner.pk,
    }
    # running it again changes nothing
    assert "Expired 0" in expire_holds(seconds=2000)
    assert OrderEvent.objects.filter(order_id=order["id"], type="expired").count() == 1
    product.refresh_from_db()
    assert product.inventory == 100


def test_pay_after_the_hold_ended_is_order_expired_even_before_the_task_ran(roles, product):
    order = place_order(roles["host_app"], product, quantity=2)

    with time_machine.travel(timezone.now() + timedelta(seconds=901), tick=False):
        response = act(roles["host_app"], order["id"], "pay")

    assert response.status_code == 409
    assert codes(response) == ["order_expired"]
    assert Order.objects.get(pk=order["id"]).status == "pending_payment"  # the task moves it
    assert "Expired 1" in expire_holds()
    response = act(roles["host_app"], order["id"], "pay")
    assert response.status_code == 409
    assert codes(response) == ["order_expired"]
    # an expired order can be neither canceled nor refunded
    assert codes(act(roles["host_app"], order["id"], "cancel")) == ["invalid_transition"]


def test_a_paid_order_never_expires(roles, product):
    order = place_order(roles["host_app"], product, quantity=2)
    assert act(roles["host_app"], order["id"], "pay").status_code == 200

    assert "Expired 0" in expire_holds()

    assert Order.objects.get(pk=order["id"]).status == "paid"
    product.refresh_from_db()
    assert product.inventory == 98


def test_expiry_handles_many_orders_in_a_few_statements(
    roles, product, django_assert_max_num_queries
):
    for _ in range(30):
        place_order(roles["host_app"], product, quantity=1)
    from orders.services import order_expire_due

    with django_assert_max_num_queries(30):
        expired = order_expire_due(now=timezone.now() + timedelta(seconds=901))

    assert expired == 30
    product.refresh_from_db()
    assert product.inventory == 100
    assert Event.objects.filter(type="order.expired").count() == 30


# --- sold out: available, and stock events ---------------------------------------------------


def test_insufficient_inventory_says_how_many_units_are_left(roles, brand):
    product = factories.ProductFactory(brand=brand, inventory=3, price=1000)
    other = factories.ProductFactory(brand=brand, inventory=50, price=1000)

    response = roles["host_app"].post(
        "/api/v1/orders",
        {"lines": [{"product": other.pk, "quantity": 1}, {"product": product.pk, "quantity": 5}]},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["errors"] == [
        {
            "code": "insufficient_inventory",
            "detail": f"Only 3 of product {product.pk} left; 5 asked.",
            "attr": "lines.1.quantity",
            "available": 3,
        }
    ]


@pytest.fixture
def drop(brand, fulfillment, host_app, creator):
    """A product shown by two scheduled/live shows on three host apps, one show already over."""
    product = factories.ProductFactory(brand=brand, inventory=2, price=1000)
    second_host = factories.HostAppFactory()
    stranger_host = factories.HostAppFactory()
    live = factories.LiveSessionFactory(
        producer=fulfillment, creator=creator, host_apps=[host_app, second_host]
    )
    live.products.set([product])
    live.status = "live"
    live.save()
    scheduled = factories.LiveSessionFactory(producer=host_app, host_apps=[host_app])
    scheduled.products.set([product])
    ended = factories.LiveSessionFactory(producer=stranger_host, host_apps=[stranger_host])
    ended.products.set([product])
    ended.status = "ended"
    ended.save()
    return {
        "product": product,
        "live": live,
        "scheduled": scheduled,
        "hosts": [host_app, second_host],
        "stranger": stranger_host,
    }


def stock_events(product):
    return list(Event.objects.filter(object_id=product.pk).order_by("sequence"))


def test_selling_the_last_unit_publishes_sold_out_to_the_fulfiller_and_the_shows_host_apps(
    roles, drop, fulfillment
):
    product = drop["product"]
    place_order(roles["host_app"], product, quantity=1)
    assert stock_events(product) == []  # 1 left: nothing crossed zero

    place_order(roles["host_app"], product, quantity=1, live_session=drop["live"])

    (event,) = stock_events(product)
    assert event.type == "product.sold_out"
    assert event.data == {
        "product": product.pk,
        "available": 0,
        "live_sessions": sorted([drop["live"].pk, drop["scheduled"].pk]),
    }
    recipients = {r.partner_id for r in event.recipients.all()}
    assert recipients == {fulfillment.pk, *(h.pk for h in drop["hosts"])}
    # each of those partners lists it on GET /events; the ended show's host app does not
    for partner in (fulfillment, *drop["hosts"]):
        listed = client_for(partner=partner).get("/api/v1/events?type=product.sold_out").json()
        assert [e["id"] for e in listed["results"]] == [event.pk]
    listed = client_for(partner=drop["stranger"]).get("/api/v1/events").json()["results"]
    assert not [e for e in listed if e["type"].startswith("product.")]
    # and both shows' feeds got it, numbered from 1
    feed = LiveFeedMessage.objects.filter(type="product.sold_out")
    assert sorted((m.session_id, m.seq) for m in feed) == sorted(
        [(drop["live"].pk, 1), (drop["scheduled"].pk, 1)]
    )


def test_back_in_stock_after_cancel_expiry_restocking_refund_and_catalog_edit(
    roles, drop, fulfillment
):
    product = drop["product"]
    host = roles["host_app"]

    def last():
        product.refresh_from_db()
        event = stock_events(product)[-1]
        return event.type, event.data["available"], product.inventory

    # a cancel puts the units back
    first = place_order(host, product, quantity=2)
    assert last() == ("product.sold_out", 0, 0)
    assert act(host, first["id"], "cancel").status_code == 200
    assert last() == ("product.back_in_stock", 2, 2)

    # an expiry puts them back
    place_order(host, product, quantity=2)
    assert last() == ("product.sold_out", 0, 0)
    expire_holds()
    assert last() == ("product.back_in_stock", 2, 2)

    # a refund with restock puts them back
    paid = place_order(host, product, quantity=2)
    assert act(host, paid["id"], "pay").status_code == 200
    assert last() == ("product.sold_out", 0, 0)
    line = paid["lines"][0]["id"]
    refund = {"lines": [{"line": line, "quantity": 1}], "restock": True}
    assert act(host, paid["id"], "refunds", refund).status_code == 201
    assert last() == ("product.back_in_stock", 1, 1)

    # a catalog edit to zero and back
    fulfiller = client_for(partner=fulfillment)
    edit = fulfiller.patch(f"/api/v1/products/{product.pk}", {"inventory": 0}, format="json")
    assert edit.status_code == 200
    assert last() == ("product.sold_out", 0, 0)
    edit = fulfiller.patch(f"/api/v1/products/{product.pk}", {"inventory": 40}, format="json")
    assert last() == ("product.back_in_stock", 40, 40)
    # a change that does not cross zero publishes nothing
    count = len(stock_events(product))
    fulfiller.patch(f"/api/v1/products/{product.pk}", {"inventory": 30}, format="json")
    assert len(stock_events(product)) == count
    assert [e.sequence for e in stock_events(product)] == list(range(1, count + 1))


# --- live prices -----------------------------------------------------------------------------


@pytest.fixture
def show(host_client, product):
    response = host_client.post(
        "/api/v1/live-sessions",
        {
            "title": "Drop night",
            "scheduled_start": "2026-12-01T18:00:00Z",
            "products": [product.pk],
            "live_prices": {product.pk: "14.99"},
            "hold_seconds": 300,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_live_price_applies_only_while_the_show_is_live_and_only_to_its_orders(
    roles, product, show
):
    host = roles["host_app"]
    assert show["live_prices"] == {product.pk: "14.99"}
    assert show["hold_seconds"] == 300
    session = type("S", (), {"pk": show["id"]})

    def line_of(order):
        line = order["lines"][0]
        return line["unit_price"], line["list_price"], line["subtotal"]

    before = place_order(host, product, quantity=2, live_session=session)
    assert line_of(before) == ("19.99", "19.99", "39.98")

    assert host.post(f"/api/v1/live-sessions/{show['id']}/start").status_code == 200
    during = place_order(host, product, quantity=2, live_session=session)
    assert line_of(during) == ("14.99", "19.99", "29.98")
    assert during["total"] == "29.98"
    elsewhere = place_order(host, product, quantity=2)  # not naming the show
    assert line_of(elsewhere) == ("19.99", "19.99", "39.98")

    assert host.post(f"/api/v1/live-sessions/{show['id']}/end").status_code == 200
    after = place_order(host, product, quantity=2, live_session=session)
    assert line_of(after) == ("19.99", "19.99", "39.98")


def test_commission_breakdown_and_report_use_the_paid_live_price(roles, product, show, finance):
    host = roles["host_app"]
    host.post(f"/api/v1/live-sessions/{show['id']}/start")
    order = place_order(host, product, quantity=2, live_session=type("S", (), {"pk": show["id"]}))
    assert act(host, order["id"], "pay").status_code == 200

    breakdown = finance.get(f"/api/v1/orders/{order['id']}/breakdown").json()
    assert breakdown["lines"][0]["paid"] == "29.98"
    assert breakdown["totals"]["paid"] == "29.98"
    today = timezone.now().date().isoformat()
    report = finance.get(
        f"/api/v1/reports/commissions?date_from={today}&date_to={today}&currency=USD"
        "&group_by=live_session"
    ).json()
    assert report["totals"]["gross_merchandise_value"] == "29.98"
    assert [r["gross_merchandise_value"] for r in report["rows"]] == ["29.98"]


def test_live_prices_are_checked_like_every_amount_and_set_by_the_producer_only(
    roles, product, show, brand
):
    host = roles["host_app"]
    other = factories.ProductFactory(brand=brand, price=500)

    def create(prices):
        return host.post(
            "/api/v1/live-sessions",
            {
                "title": "x",
                "scheduled_start": "2026-12-01T18:00:00Z",
                "products": [product.pk],
                "live_prices": prices,
            },
            format="json",
        )

    bad = create({product.pk: "14.999"})
    assert bad.status_code == 400
    assert codes(bad) == ["too_many_decimal_places"]
    assert bad.json()["errors"][0]["attr"] == f"live_prices.{product.pk}"
    assert codes(create({product.pk: 14.99})) == ["not_a_string"]
    assert codes(create({product.pk: "-1.00"})) == ["negative_amount"]
    assert codes(create({other.pk: "1.00"})) == ["invalid_reference"]

    # a flash price mid-show, by the producer
    flash = host.patch(
        f"/api/v1/live-sessions/{show['id']}", {"live_prices": {product.pk: "9.99"}}, format="json"
    )
    assert flash.status_code == 200, flash.json()
    assert flash.json()["live_prices"] == {product.pk: "9.99"}
    denied = roles["fulfillment"].patch(
        f"/api/v1/live-sessions/{show['id']}", {"live_prices": {}}, format="json"
    )
    assert denied.status_code in (403, 404)


# --- the live feed, in-process (WSGI: the embedded default's runserver path) ------------------


def read_feed(client, session_id, last_event_id=None):
    headers = {"HTTP_LAST_EVENT_ID": last_event_id} if last_event_id else {}
    response = client.get(f"/api/v1/live-sessions/{session_id}/feed", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream"
    text = b"".join(response.streaming_content).decode()
    messages = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "event" in fields:
            messages.append((fields["id"], fields["event"], json.loads(fields["data"])))
    return messages


@override_settings(LIVE_FEED_SYNC_SECONDS=0, LIVE_FEED_POLL_SECONDS=0)
def test_the_feed_sends_stats_and_stock_events_with_ids_and_resumes(roles, drop, fulfillment, ops):
    live, product = drop["live"], drop["product"]
    host = client_for(partner=drop["hosts"][1])
    order = place_order(roles["host_app"], product, quantity=2, live_session=live)
    assert act(roles["host_app"], order["id"], "pay").status_code == 200

    messages = read_feed(host, live.pk)

    assert [(m[0], m[1]) for m in messages] == [("1", "product.sold_out"), ("1:1", "stats")]
    assert messages[0][2]["available"] == 0
    stats = messages[1][2]
    assert (stats["orders"], stats["units_sold"], stats["gross"]) == (1, 2, {"USD": "20.00"})
    assert stats["available"] == {product.pk: 0}
    assert stats["status"] == "live"

    # resume after message 1: no replay of it, stats again
    assert [m[1] for m in read_feed(host, live.pk, last_event_id="1:1")] == ["stats"]
    # ending the show: the feed says so and closes
    fulfiller = client_for(partner=fulfillment)
    assert fulfiller.post(f"/api/v1/live-sessions/{live.pk}/end").status_code == 200
    resumed = read_feed(ops, live.pk, last_event_id="1")
    assert [(m[0], m[1]) for m in resumed] == [("2", "live_session.ended"), ("2:1", "stats")]
    assert resumed[1][2]["status"] == "ended"


def test_the_feed_is_for_its_host_apps_fulfiller_and_staff_only(roles, drop, fulfillment, finance):
    live = drop["live"]
    with override_settings(LIVE_FEED_SYNC_SECONDS=0, LIVE_FEED_POLL_SECONDS=0):
        for client in (client_for(partner=drop["hosts"][0]), client_for(partner=fulfillment)):
            assert read_feed(client, live.pk)
        assert read_feed(finance, live.pk)
    for outsider in (
        client_for(partner=drop["stranger"]),
        roles["brand"],
        roles["creator"],
        client_for(partner=factories.FulfillmentFactory()),
    ):
        response = outsider.get(f"/api/v1/live-sessions/{live.pk}/feed")
        assert response.status_code == 404
        assert codes(response) == ["not_found"]
    assert roles["host_app"].get("/api/v1/live-sessions/lvs_nope/feed").status_code == 404
    from rest_framework.test import APIClient

    anonymous = APIClient().get(f"/api/v1/live-sessions/{live.pk}/feed")
    assert anonymous.status_code == 401
    assert codes(anonymous) == ["not_authenticated"]


# --- an open feed is cut off when its caller loses access ---------------------------------------


def _cut_off(how, live, host_app, client):
    from partners.models import APIKey, Partner

    if how == "key_revoked":
        APIKey.objects.filter(prefix=client.key.split(".")[0]).update(revoked=True)
    elif how == "key_expired":
        APIKey.objects.filter(prefix=client.key.split(".")[0]).update(
            expiry_date=timezone.now() - timedelta(seconds=1)
        )
    elif how == "partner_suspended":
        Partner.objects.filter(pk=host_app.pk).update(status="suspended")
    else:  # the host app is taken off the show
        live.host_apps.remove(host_app)


CUT_OFF = ["key_revoked", "key_expired", "partner_suspended", "removed_from_show"]
FAST_FEED = {
    "LIVE_FEED_SYNC_SECONDS": 10,
    "LIVE_FEED_POLL_SECONDS": 0.02,
    "LIVE_FEED_RECHECK_SECONDS": 0.2,
    "LIVE_FEED_KEEPALIVE_SECONDS": 0.1,
}


@pytest.mark.parametrize("how", CUT_OFF)
def test_an_open_feed_ends_soon_after_its_caller_loses_access_wsgi(roles, drop, how):
    import time

    live, host_app = drop["live"], drop["hosts"][0]
    with override_settings(**FAST_FEED):
        response = roles["host_app"].get(f"/api/v1/live-sessions/{live.pk}/feed")
        assert response.status_code == 200
        stream = iter(response.streaming_content)
        assert b"event: stats" in next(stream) + next(stream)  # the preamble, then stats

        _cut_off(how, live, host_app, roles["host_app"])
        started = time.monotonic()
        for _ in stream:
            assert time.monotonic() - started < 2, "the feed kept streaming"
        assert time.monotonic() - started < 2
        response.close()


@pytest.mark.django_db(transaction=True)  # the ASGI feed reads on its own database threads
@pytest.mark.parametrize("how", CUT_OFF)
def test_an_open_feed_ends_soon_after_its_caller_loses_access_asgi(roles, drop, how, monkeypatch):
    import asyncio
    import time
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections
    from django.test import AsyncClient

    from orders import feed

    live, host_app = drop["live"], drop["hosts"][0]
    key = roles["host_app"].key
    threads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-feed-db")
    monkeypatch.setattr(feed, "_db_threads", threads)

    async def watch() -> float:
        response = await AsyncClient().get(
            f"/api/v1/live-sessions/{live.pk}/feed", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, response.content
        stream = aiter(response.streaming_content)
        assert b"event: stats" in await anext(stream) + await anext(stream)

        await feed.in_db_thread(_cut_off, how, live, host_app, roles["host_app"])
        started = time.monotonic()
        async for _ in stream:
            assert time.monotonic() - started < 2, "the feed kept streaming"
        return time.monotonic() - started

    try:
        with override_settings(**FAST_FEED):
            assert asyncio.run(asyncio.wait_for(watch(), 5)) < 2
    finally:
        threads.submit(connections.close_all).result()
        threads.shutdown()


def test_a_caller_that_keeps_access_keeps_its_feed_across_rechecks(roles, drop, fulfillment):
    import time

    live = drop["live"]
    settings = {**FAST_FEED, "LIVE_FEED_SYNC_SECONDS": 1}
    for client in (roles["host_app"], client_for(partner=fulfillment), roles["ops"]):
        with override_settings(**settings):
            started = time.monotonic()
            response = client.get(f"/api/v1/live-sessions/{live.pk}/feed")
            b"".join(response.streaming_content)
            assert time.monotonic() - started >= 0.9  # ended by LIVE_FEED_SYNC_SECONDS only


def test_the_feeds_of_one_key_share_one_access_check_at_a_time(settings):
    import asyncio
    import time
    from dataclasses import dataclass

    from orders.feed import FeedHub

    asked = []

    @dataclass(frozen=True)
    class Question:  # equal for the feeds of one key, like FeedAccess
        key: str

        def __call__(self) -> bool:
            asked.append(self.key)
            time.sleep(0.05)  # a database round trip: the other feeds ask meanwhile
            return self.key != "revoked"

    async def ask_many(hub: FeedHub) -> list[bool]:
        questions = [Question("kept")] * 200 + [Question("revoked")] * 3
        return await asyncio.gather(*(hub.still_allowed(q) for q in questions))

    async def run() -> tuple[list[bool], list[bool]]:
        hub = FeedHub("lvs_shared_checks")
        first = await ask_many(hub)
        await asyncio.sleep(settings.LIVE_FEED_RECHECK_SECONDS)  # past the shared answer's age
        return first, await ask_many(hub)

    settings.LIVE_FEED_RECHECK_SECONDS = 0.3
    first, again = asyncio.run(run())

    assert first == again == [True] * 200 + [False] * 3
    # one question to the database per key and half recheck interval, not one per feed
    assert sorted(asked) == ["kept", "kept", "revoked", "revoked"]
