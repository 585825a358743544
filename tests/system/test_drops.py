"""Live drops on the real processes (contract: "Live drops"): gunicorn, a Celery worker, beat
expiring unpaid orders every second, PostgreSQL and Redis; and uvicorn serving the live feeds.

- an unpaid order expires by itself and its units come back;
- paying and expiring one order race (100 orders, each paid around its ``expires_at`` while
  beat and extra expiry tasks run on two worker processes): each ends exactly one way;
- a hot product with 50 units and 200 concurrent buyers sells exactly 50, every other buyer
  gets 409 with ``available: 0``, and each host app of the show gets exactly one
  ``product.sold_out`` (webhook, delivered by the worker, and on ``GET /events``);
- 200 feeds open at once on uvicorn while orders are placed and paid: every feed sees the sales
  rise and the sell-out, and a client that reconnects with ``Last-Event-ID`` misses nothing
  (the order API's p99 with and without the feeds is printed, not asserted: no timings in tests).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests

from clients.webhooks import WebhookReceiver
from commissions.models import LedgerEntry
from orders.models import Order, OrderEvent, OrderLine, Product
from partners.models import Event
from tests.system.feeds import FeedReader, SSEParser
from tests.system.stack import BeatSender, wait_until
from tests.system.workload import build_marketplace

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def bearer(client) -> dict:
    return {"Authorization": f"Bearer {client.key}"}


def parse_time(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def show(market, product_ids, *, hold_seconds=900, start=True, **extra) -> dict:
    """A show produced by the fulfillment partner on every host app of the market."""
    session = market.fulfiller.live_sessions.create(
        title="Drop",
        scheduled_start=datetime.now(UTC),
        products=product_ids,
        host_apps=[h.partner["id"] for h in market.host_apps],
        hold_seconds=hold_seconds,
        **extra,
    )
    if start:
        session = market.fulfiller.live_sessions.start(session["id"])
    return session


def test_an_unpaid_order_expires_by_itself_and_its_units_come_back(
    live_stack, ops_key, finance_key
):
    live_stack.start_beat()
    market = build_marketplace(
        live_stack.base_url, ops_key=ops_key, finance_key=finance_key, products=1, inventory=10
    )
    try:
        product = market.products[0]
        host = market.host_apps[0]
        session = show(market, [product["id"]], hold_seconds=2)

        order = host.orders.create(
            lines=[{"product": product["id"], "quantity": 4}], live_session=session["id"]
        )
        assert market.fulfiller.products.get(product["id"])["inventory"] == 6

        # nobody pays; beat and the worker expire it
        wait_until(
            lambda: host.orders.get(order["id"])["status"] == "expired",
            timeout=30,
            message="the order to expire",
        )
        assert market.fulfiller.products.get(product["id"])["inventory"] == 10
        response = requests.post(
            f"{live_stack.base_url}/api/v1/orders/{order['id']}/pay",
            json={"amount": order["total"], "payment_reference": "late"},
            headers=bearer(host),
            timeout=30,
        )
        assert response.status_code == 409
        assert response.json()["errors"][0]["code"] == "order_expired"
        listed = [e["data"]["id"] for e in host.events.list(type="order.expired")]
        assert listed == [order["id"]]
    finally:
        market.close()


def test_pay_racing_expiry_ends_exactly_one_way_a_hundred_times(live_stack, ops_key, finance_key):
    # given beat expiring every second and, on top, expiry tasks sent every 0.1 s (two worker
    # processes: two runs at once)
    live_stack.start_beat()
    market = build_marketplace(
        live_stack.base_url, ops_key=ops_key, finance_key=finance_key, products=1, inventory=1000
    )
    beat = BeatSender(live_stack.broker_url)
    stop = threading.Event()

    def expire_often():
        while not stop.wait(0.1):
            beat.send("orders.tasks.expire_orders")

    expirer = threading.Thread(target=expire_often, daemon=True)
    try:
        product = market.products[0]
        host = market.host_apps[0]
        session = show(market, [product["id"]], hold_seconds=1)
        expirer.start()
        rng = random.Random(15)
        url = f"{live_stack.base_url}/api/v1/orders"

        def attempt(index: int) -> tuple[str, int, str | None]:
            with requests.Session() as http:
                created = http.post(
                    url,
                    json={
                        "lines": [{"product": product["id"], "quantity": 1 + index % 3}],
                        "live_session": session["id"],
                    },
                    headers=bearer(host),
                    timeout=60,
                )
                assert created.status_code == 201, created.text
                order = created.json()
                # pay around the moment the hold ends: a little before or a little after
                moment = parse_time(order["expires_at"]) + rng.uniform(-0.25, 0.15)
                time.sleep(max(0.0, moment - time.time()))
                paid = http.post(
                    f"{url}/{order['id']}/pay",
                    json={"amount": order["total"], "payment_reference": f"race-{index}"},
                    headers=bearer(host),
                    timeout=60,
                )
                code = paid.json()["errors"][0]["code"] if paid.status_code != 200 else None
                return order["id"], paid.status_code, code

        # when 100 orders are each paid around their expiry
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(attempt, range(100)))
        wait_until(
            lambda: not Order.objects.filter(status="pending_payment").exists(),
            timeout=30,
            message="every unpaid order to expire",
        )
    finally:
        stop.set()
        if expirer.is_alive():
            expirer.join(5)
        beat.close()
        market.close()

    # then each order ended one way: paid (and nothing expired it) or expired (pay refused)
    outcomes = Counter()
    for order_id, status, code in results:
        order = Order.objects.get(pk=order_id)
        lines = list(OrderLine.objects.filter(order_id=order_id))
        expired_events = Event.objects.filter(object_id=order_id, type="order.expired").count()
        sales = LedgerEntry.objects.filter(order_id=order_id, kind="sale").count()
        if status == 200:
            assert order.status == "paid", order_id
            assert (expired_events, sales) == (0, 1), order_id
            assert not OrderEvent.objects.filter(order_id=order_id, type="expired").exists()
            assert all(line.restocked_quantity == 0 for line in lines)
            outcomes["paid"] += 1
        else:
            assert (status, code) == (409, "order_expired"), (order_id, status, code)
            assert order.status == "expired", order_id
            assert order.paid_at is None
            assert (expired_events, sales) == (1, 0), order_id
            assert OrderEvent.objects.filter(order_id=order_id, type="expired").count() == 1
            assert all(line.restocked_quantity == line.quantity for line in lines)
            outcomes["expired"] += 1
    # the race was real: both outcomes happened
    assert outcomes["paid"] and outcomes["expired"], outcomes
    sold = sum(
        line.quantity
        for line in OrderLine.objects.filter(order__status="paid", product_id=product["id"])
    )
    assert Product.objects.get(pk=product["id"]).inventory == 1000 - sold


def test_a_hot_product_sells_exactly_its_units_to_200_concurrent_buyers(
    live_stack, ops_key, finance_key
):
    live_stack.start_beat()
    market = build_marketplace(
        live_stack.base_url,
        ops_key=ops_key,
        finance_key=finance_key,
        host_apps=2,
        products=1,
        inventory=50,
    )
    receivers = [WebhookReceiver().start() for _ in market.host_apps]
    try:
        for host, receiver in zip(market.host_apps, receivers, strict=True):
            endpoint = host.webhook_endpoints.create(url=receiver.url, events=["*"])
            receiver.secret = endpoint["secret"]
        product = market.products[0]
        session = show(market, [product["id"]], live_prices={product["id"]: "9.99"})
        barrier = threading.Barrier(200)

        def buy(index: int) -> requests.Response:
            host = market.host_apps[index % 2]
            body = {
                "lines": [{"product": product["id"], "quantity": 1}],
                "live_session": session["id"],
                "buyer": {"reference": f"viewer-{index}"},
            }
            barrier.wait(timeout=60)
            return requests.post(
                f"{live_stack.base_url}/api/v1/orders", json=body, headers=bearer(host), timeout=120
            )

        with ThreadPoolExecutor(max_workers=200) as pool:
            responses = list(pool.map(buy, range(200)))

        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 50, 409: 150}, statuses
        for response in responses:
            if response.status_code == 409:
                (error,) = response.json()["errors"]
                assert error["code"] == "insufficient_inventory"
                assert error["available"] == 0
                assert error["attr"] == "lines.0.quantity"
            else:
                assert response.json()["lines"][0]["unit_price"] == "9.99"
        assert Product.objects.get(pk=product["id"]).inventory == 0
        assert sum(OrderLine.objects.values_list("quantity", flat=True)) == 50

        # each host app of the show got exactly one product.sold_out, by webhook and on /events
        for host, receiver in zip(market.host_apps, receivers, strict=True):
            receiver.wait_for(
                lambda events: any(e["type"] == "product.sold_out" for e in events), timeout=60
            )
            listed = list(host.events.list(type="product.sold_out"))
            assert len(listed) == 1
            assert listed[0]["data"] == {
                "product": product["id"],
                "available": 0,
                "live_sessions": [session["id"]],
            }
        time.sleep(2)  # a second sweep would have sent a duplicate by now
        for receiver in receivers:
            sold_out = [e for e in receiver.events if e["type"] == "product.sold_out"]
            assert len(sold_out) == 1, sold_out
    finally:
        for receiver in receivers:
            receiver.stop()
        market.close()


# --- 200 feeds on uvicorn ---------------------------------------------------------------------


def read_once(url: str, key: str, *, last_event_id: str | None, until) -> list[tuple]:
    """One SSE connection (requests), read until ``until(messages)``; then disconnect."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    messages: list[tuple] = []
    with requests.get(url, headers=headers, stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        parser = SSEParser()
        for line in response.iter_lines(decode_unicode=True):
            message = parser.line(line)
            if message is not None:
                messages.append(message)
                if until(messages):
                    return messages
    return messages


SOLD_BEFORE_THE_DROP = 10 + 80 + 80  # warm-up, no feeds, 200 feeds: 2 threads x rounds


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.99 + 0.5) - 1)]


def test_two_hundred_feeds_see_the_drop_while_orders_are_placed_and_paid(
    live_stack, ops_key, finance_key
):
    live_stack.start_feed_server()
    market = build_marketplace(
        live_stack.base_url,
        ops_key=ops_key,
        finance_key=finance_key,
        products=2,
        inventory=100_000,
    )
    reader = None
    try:
        host = market.host_apps[0]
        everyday, hot = market.products
        market.fulfiller.products.update(hot["id"], inventory=12)
        session = show(market, [everyday["id"], hot["id"]])
        feed_url = f"{live_stack.feed_url}/api/v1/live-sessions/{session['id']}/feed"
        orders_url = f"{live_stack.base_url}/api/v1/orders"

        def place_and_pay(http: requests.Session, product_id: str, quantity: int) -> list[float]:
            took = []
            start = time.perf_counter()
            created = http.post(
                orders_url,
                json={
                    "lines": [{"product": product_id, "quantity": quantity}],
                    "live_session": session["id"],
                },
                headers=bearer(host),
                timeout=60,
            )
            took.append(time.perf_counter() - start)
            assert created.status_code == 201, created.text
            order = created.json()
            start = time.perf_counter()
            paid = http.post(
                f"{orders_url}/{order['id']}/pay",
                json={"amount": order["total"], "payment_reference": "feed-test"},
                headers=bearer(host),
                timeout=60,
            )
            took.append(time.perf_counter() - start)
            assert paid.status_code == 200, paid.text
            return took

        def measure(rounds: int) -> list[float]:
            """Order API latencies: 2 threads placing and paying ``rounds`` orders each."""

            def run(_: int) -> list[float]:
                with requests.Session() as http:
                    return [
                        t for _ in range(rounds) for t in place_and_pay(http, everyday["id"], 1)
                    ]

            with ThreadPoolExecutor(max_workers=2) as pool:
                return [t for part in pool.map(run, range(2)) for t in part]

        measure(5)  # warm up both gunicorn workers
        baseline = measure(40)

        # a client that reads the start of the feed, then drops off before the drop
        first = read_once(feed_url, host.key, last_event_id=None, until=lambda m: len(m) >= 1)
        assert first[0][1] == "stats"
        away_from = first[-1][0]

        # when 200 feeds are open
        reader = FeedReader(feed_url, host.key, 200).start()
        wait_until(
            lambda: all(messages for messages in reader.messages) or reader.errors,
            timeout=60,
            message=lambda: f"200 feeds to get their first stats ({reader.errors[:3]})",
        )
        assert not reader.errors, reader.errors[:5]
        loaded = measure(40)
        # and the hot product sells out while they watch
        with requests.Session() as http:
            for _ in range(4):
                place_and_pay(http, hot["id"], 3)

        def everyone_saw_it() -> bool:
            return all(
                any(event == "product.sold_out" for _, event, _ in messages)
                and messages[-1][1] == "stats"
                and messages[-1][2]["available"][hot["id"]] == 0
                and messages[-1][2]["units_sold"] == SOLD_BEFORE_THE_DROP + 12
                for messages in reader.messages
            )

        wait_until(everyone_saw_it, timeout=60, message="every feed to see the sell-out")
        assert not reader.errors, reader.errors[:5]
        reader.close()
        # the figure with no feed open brackets the one with feeds: measured before and after,
        # so a slower or faster moment of the (shared) machine weighs on both alike
        baseline += measure(40)
    finally:
        if reader is not None:
            reader.close()
        market.close()

    # then every feed saw the sale counts rise, each message with an id, stats in order
    for messages in reader.messages:
        units = [data["units_sold"] for _, event, data in messages if event == "stats"]
        assert units[0] < units[-1]
        assert units == sorted(units)
        assert all(message_id for message_id, _, _ in messages)
        assert [data["product"] for _, event, data in messages if event == "product.sold_out"] == [
            hot["id"]
        ]

    # the order API's pace with 200 feeds open is a figure, not an assertion: timings are not
    # asserted in tests (a p99 of 80 calls is one outlier on a shared 2-core machine: it ranged
    # from 0.6x to 1.7x of the figure without feeds over this suite's runs); printed for -s
    print(
        f"order API p99: {p99(baseline):.3f} s without feeds ({len(baseline)} calls), "
        f"{p99(loaded):.3f} s with 200 open ({len(loaded)} calls)"
    )

    # and the client that was away resumes by Last-Event-ID without missing the sell-out
    resumed = read_once(
        feed_url,
        host.key,
        last_event_id=away_from,
        until=lambda m: any(e == "stats" for _, e, _ in m),
    )
    assert (resumed[0][0], resumed[0][1]) == ("1", "product.sold_out")
    assert resumed[-1][1] == "stats"
    assert resumed[-1][2]["units_sold"] == SOLD_BEFORE_THE_DROP + 12 + 80
