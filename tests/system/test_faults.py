"""Faults on the real processes: what was lost when the database restarted, the broker went
down, or a webhook receiver was away for hours. Each test states it: nothing.

gunicorn, the Celery worker and beat run as in production (``tests/system/stack.py``); the
database and the broker are reached through proxies that a test cuts, since the servers are
shared and must not be stopped. Clients are the partner SDK (``clients.LiveCommerceClient``),
with its idempotency keys and retries, exactly as an integrator would use it.
"""

import threading
import time
from urllib.parse import urlsplit

import pytest
import requests
from django.utils import timezone

from clients.webhooks import WebhookReceiver
from partners.models import Event, WebhookDelivery
from partners.webhooks.conf import DEFAULT_RETRY_SCHEDULE
from tests.system.checks import audit, webhook_audit
from tests.system.proxy import TCPProxy
from tests.system.stack import wait_until
from tests.system.workload import Journal, Shopper, budget, run_threads

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def test_the_database_restarting_mid_traffic_loses_no_order_and_makes_none_twice(
    live_stack, market
):
    # given four host-app checkouts placing and paying orders as fast as they can
    journal, stop = Journal(), threading.Event()
    host = market.host_apps[0]
    shoppers = [
        Shopper(
            f"shopper{n}",
            journal,
            stop,
            market=market,
            key=host.key,
            budget=budget(count=10_000, seconds=9),
            seed=n,
            resend_rate=0.1,
        )
        for n in range(4)
    ]
    outage = {}

    def restart_the_database() -> None:
        # when, two seconds in, the database "restarts": every session is cut off, the
        # server's side ends (pg_terminate_backend), and connections are refused for 3 s
        time.sleep(2)
        outage["before"] = len(journal.of("create", ok=True))
        with live_stack.db_proxy.outage():
            outage["aborted"] = live_stack.db_proxy.aborted
            outage["terminated"] = live_stack.terminate_db_sessions()
            time.sleep(3)
        outage["after"] = len(journal.of("create", ok=True))
        outage["restored_at"] = time.monotonic()

    fault = threading.Thread(target=restart_the_database)
    fault.start()
    run_threads(shoppers, [], stop, timeout=60)
    fault.join()

    # then the clients rode it out and nothing was lost or doubled
    result = audit(journal, market.initial_inventory)
    print(f"outage: {outage}\n{result.report()}")
    assert result.lost == []
    assert outage["aborted"] >= 1  # the cut really cut live connections
    retried = {r.status for r in journal.retries} | {r.code for r in journal.retries}
    assert retried & {500, 503, None}, journal.retries[:5]  # the clients saw the outage
    made_after = [c for c in journal.of("create", ok=True) if c.at > outage["restored_at"]]
    assert made_after, "no order was placed after the database came back"
    summary = journal.summary()
    assert summary["create"]["failed"] == 0 and summary["pay"]["failed"] == 0, summary


def received_ids(receiver: WebhookReceiver) -> set[str]:
    """Event ids the receiver verified and answered 200 (``webhook-id`` is the event id)."""
    return {a.webhook_id for a in list(receiver.attempts) if a.verified and a.status == 200}


def place_and_pay(client, market, reference: str) -> dict:
    order = client.orders.create(
        lines=[{"product": market.products[0]["id"], "quantity": 1}],
        buyer={"reference": reference},
    )
    return client.orders.pay(
        order["id"], amount=order["total"], payment_reference=f"ch_{reference}"
    )


def test_the_broker_down_for_a_while_keeps_every_event_and_delivers_it_after(live_stack, market):
    # given a host app with a webhook endpoint, the worker, and beat sending the sweeper every
    # second (production: 30 s); the webhook settings are production's
    live_stack.start_beat(sweep_interval=1)
    host = market.host_apps[0]
    receiver = WebhookReceiver().start()
    try:
        endpoint = host.webhook_endpoints.create(url=receiver.url, events=["*"])
        receiver.secret = endpoint["secret"]
        first = place_and_pay(host, market, "before")
        wait_until(lambda: len(received_ids(receiver)) >= 2, message="the first order's webhooks")

        # when the broker hangs (connections accepted, never answered), then goes down
        # (connections refused), while four checkouts keep placing and paying orders
        live_stack.broker_proxy.cut(hang=True)
        cut_at = timezone.now()
        journal, stop = Journal(), threading.Event()
        shoppers = [
            Shopper(
                f"shopper{n}",
                journal,
                stop,
                market=market,
                key=host.key,
                budget=budget(count=60, seconds=8),
                seed=n,
            )
            for n in range(4)
        ]
        traffic = threading.Thread(
            target=run_threads, args=(shoppers, [], stop), kwargs={"timeout": 60}
        )
        traffic.start()
        time.sleep(4)
        live_stack.broker_proxy.cut()
        # the web process answers: health says the process is up, readiness that the broker
        # is not
        assert requests.get(f"{live_stack.base_url}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{live_stack.base_url}/readyz", timeout=10).status_code == 503
        traffic.join()

        # then every order was placed and paid
        summary = journal.summary()
        assert summary["create"]["failed"] == summary["create"]["refused"] == 0, summary
        assert summary["pay"]["failed"] == summary["pay"]["refused"] == 0, summary
        assert summary["create"]["ok"] >= 8, summary
        # and every event is kept in the outbox, owed to the endpoint, none sent yet
        during = set(
            Event.objects.filter(
                created__gte=cut_at, recipients__partner_id=host.partner["id"]
            ).values_list("pk", flat=True)
        )
        assert len(during) == summary["create"]["ok"] + summary["pay"]["ok"]
        kept = WebhookDelivery.objects.filter(event_id__in=during, endpoint_id=endpoint["id"])
        assert kept.count() == len(during)
        assert set(kept.values_list("status", flat=True)) == {"pending"}
        assert not (received_ids(receiver) & during)

        # when the broker comes back
        live_stack.broker_proxy.restore()

        # then every event reaches the receiver (the sweeper queues what could not be queued)
        wait_until(
            lambda: during <= received_ids(receiver),
            timeout=90,
            message=lambda: f"{len(during - received_ids(receiver))} of {len(during)} events",
        )
        wait_until(
            lambda: (
                not WebhookDelivery.objects.filter(
                    endpoint_id=endpoint["id"], status="pending"
                ).exists()
            ),
            message="every delivery to be marked succeeded",
        )
        result = webhook_audit(
            endpoint_id=endpoint["id"],
            partner_id=host.partner["id"],
            received_ids=received_ids(receiver),
        )
        orders = audit(journal, market.initial_inventory)
        print(f"{result.report()}\n{orders.report()}")
        assert result.lost == []
        assert orders.lost == []
        assert first["status"] == "paid"
        assert live_stack.worker.running  # the same worker, reconnected
    finally:
        receiver.stop()


# The default retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 10 h) with an hour
# lasting half a second; retries further off than 10 "minutes" (600 s in production) are left to
# the sweeper, as in production.
HOUR = 0.5
SCALED_RETRIES = {
    "WEBHOOK_RETRY_SCHEDULE": ",".join(f"{s / 3600 * HOUR:.4f}" for s in DEFAULT_RETRY_SCHEDULE),
    "WEBHOOK_COUNTDOWN_MAX": f"{600 / 3600 * HOUR:.4f}",
    "WEBHOOK_REQUEUE_AFTER": "2",
    "WEBHOOK_TIMEOUT": "2",
}


def test_a_receiver_down_for_hours_gets_every_event_when_it_is_back(live_stack, market):
    # given the retry schedule with hours scaled to seconds, and a receiver behind a proxy
    live_stack.restart_worker(env=SCALED_RETRIES)
    live_stack.start_beat(sweep_interval=1)
    host = market.host_apps[0]
    receiver = WebhookReceiver().start()
    front = TCPProxy(("127.0.0.1", urlsplit(receiver.url).port), name="receiver").start()
    try:
        url = f"http://127.0.0.1:{front.port}{receiver.path}"
        endpoint = host.webhook_endpoints.create(url=url, events=["*"])
        receiver.secret = endpoint["secret"]

        # when the receiver is down (connections refused) for six "hours", while orders are
        # placed as it goes down and three "hours" later
        front.cut()
        down_since = time.monotonic()
        for n in range(3):
            place_and_pay(host, market, f"early-{n}")
        time.sleep(max(0.0, down_since + 3 * HOUR - time.monotonic()))
        place_and_pay(host, market, "middle")
        wait_until(
            lambda: (
                WebhookDelivery.objects.filter(
                    endpoint_id=endpoint["id"], attempt_count__gte=5
                ).count()
                >= 6
            ),
            timeout=30,
            message="the early deliveries to have been retried for hours",
        )
        time.sleep(max(0.0, down_since + 6 * HOUR - time.monotonic()))
        assert received_ids(receiver) == set()
        front.restore()

        # then every event arrives, each delivery succeeded after its failed attempts
        owed = set(
            Event.objects.filter(recipients__partner_id=host.partner["id"]).values_list(
                "pk", flat=True
            )
        )
        assert len(owed) == 8
        wait_until(
            lambda: (
                owed <= received_ids(receiver)
                and not WebhookDelivery.objects.filter(endpoint_id=endpoint["id"], status="pending")
            ),
            timeout=60,
            message=lambda: f"{len(owed - received_ids(receiver))} of {len(owed)} events",
        )
        result = webhook_audit(
            endpoint_id=endpoint["id"],
            partner_id=host.partner["id"],
            received_ids=received_ids(receiver),
        )
        print(result.report())
        assert result.lost == []

        # and the attempts are recorded where the partner reads them
        deliveries = list(host.webhook_endpoints.deliveries(endpoint["id"]))
        assert len(deliveries) == 8
        for delivery in deliveries:
            attempts = delivery["attempts"]
            assert delivery["status"] == "succeeded"
            assert delivery["attempt_count"] == len(attempts) >= 2
            assert [a["succeeded"] for a in attempts].count(True) == 1
            assert attempts[-1]["status_code"] == 200
            assert {a["error"] for a in attempts[:-1]} == {"connection refused"}
        early = [d for d in deliveries if d["attempt_count"] >= 5]
        assert len(early) >= 6  # the early events were tried again and again while it was down
        assert host.webhook_endpoints.get(endpoint["id"])["status"] == "enabled"
    finally:
        front.close()
        receiver.stop()
