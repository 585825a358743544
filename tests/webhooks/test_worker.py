"""End to end with a real Celery worker (Redis broker, not eager) and real HTTP deliveries.

Events are published in committed transactions, so ``on_commit`` queues to Redis and the worker
process sends to a local receiver, which verifies every signature with ``standardwebhooks``.
The worker runs with a short retry schedule (half a second per retry) passed in its environment.
No beat runs here: where the sweeper is needed, the test sends its task as beat would.
"""

import json
import subprocess
import sys
import threading

import pytest

from partners.webhooks.models import WebhookDelivery
from partners.webhooks.tasks import deliver_webhook, sweep_webhook_deliveries
from tests.webhooks.helpers import publish, wait_for
from tests.webhooks.worker import (
    BASE_DIR,
    Worker,
    claim_broker,
    shared_database_url,
    use_broker,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {
    "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
    "WEBHOOK_RETRY_SCHEDULE": ",".join(["0.5"] * 40),
    "WEBHOOK_REQUEUE_AFTER": "0",
    "WEBHOOK_TIMEOUT": "3",
}


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """One worker for the module (restarted by the test that kills it), stopped at the end."""
    claim = claim_broker()
    with django_db_blocker.unblock():
        database_url = shared_database_url()
    process = Worker(
        broker_url=claim.url,
        database_url=database_url,
        log_dir=tmp_path_factory.mktemp("celery"),
        env=WORKER_ENV,
    ).start()
    yield process
    process.stop()
    claim.release()


@pytest.fixture
def broker(worker):
    """This process publishes to the worker's broker for the test."""
    with use_broker(worker.broker_url):
        yield worker


def deliveries_of(endpoint_id: str) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(endpoint_id=endpoint_id).order_by("created"))


def create_endpoint(client, url: str) -> dict:
    response = client.post(
        "/api/v1/webhook-endpoints", {"url": url, "events": ["*"]}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_a_receiver_down_then_failing_then_back_gets_every_event_once(
    broker, host_client, host_app, brand, make_receiver
):
    # given a receiver that is down (connections refused) and an endpoint for it
    receiver = make_receiver(listening=False, status=500)
    endpoint = create_endpoint(host_client, receiver.url)
    receiver.secrets = [endpoint["secret"]]

    # when three changes commit, each publishing its event
    events = [
        publish(type="order.created", object_id="ord_a", partners=[host_app, brand]),
        publish(type="order.paid", object_id="ord_a", partners=[host_app, brand]),
        publish(type="order.created", object_id="ord_b", partners=[host_app]),
    ]

    # then the worker tries each while the receiver is down ...
    def all_tried(condition) -> bool:
        deliveries = deliveries_of(endpoint["id"])
        return len(deliveries) == 3 and all(condition(d) for d in deliveries)

    wait_for(
        lambda: all_tried(lambda d: d.attempt_count >= 1),
        message=lambda: broker.log_tail(),
    )
    assert receiver.received == []
    # ... keeps retrying while it answers 500 ...
    receiver.start()
    wait_for(
        lambda: {r.event_id for r in receiver.received} == {e.pk for e in events},
        message=lambda: broker.log_tail(),
    )
    # ... and delivers each once it is back.
    receiver.status = 200
    wait_for(
        lambda: all_tried(lambda d: d.status == "succeeded"),
        message=lambda: (
            f"{[d.status for d in deliveries_of(endpoint['id'])]}\n" + broker.log_tail()
        ),
    )

    # Duplicate tasks and a sweep for the delivered events send nothing more. A last event,
    # queued behind them on the same queue of this one-at-a-time worker, marks the end.
    for delivery in deliveries_of(endpoint["id"]):
        deliver_webhook.delay(delivery.pk)
    sweep_webhook_deliveries.delay()
    marker = publish(type="order.created", object_id="ord_marker", partners=[host_app])
    wait_for(lambda: receiver.of_event(marker.pk), message=lambda: broker.log_tail())

    for event in events:
        answers = [r.answered for r in receiver.of_event(event.pk)]
        assert answers[-1] == 200 and answers.count(200) == 1, answers  # none after success
        assert set(answers[:-1]) == {500}
    assert all(r.verified_with == [endpoint["secret"]] for r in receiver.received)
    by_order = sorted(
        {
            (r.payload["data"]["id"], r.payload["sequence"], r.payload["type"])
            for r in receiver.received
        }
    )
    assert by_order[:2] == [("ord_a", 1, "order.created"), ("ord_a", 2, "order.paid")]

    # The attempts are visible in the API: refused, then 500s, then one 200.
    listed = host_client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()
    assert {d["event"] for d in listed["results"]} == {e.pk for e in events} | {marker.pk}
    for delivery in listed["results"]:
        attempts = delivery["attempts"]
        assert delivery["status"] == "succeeded"
        assert delivery["attempt_count"] == len(attempts)
        if delivery["event"] == marker.pk:
            continue
        assert attempts[0]["error"] == "connection refused"
        assert attempts[0]["status_code"] is None
        assert 500 in [a["status_code"] for a in attempts]
        assert (attempts[-1]["status_code"], attempts[-1]["succeeded"]) == (200, True)
        assert [a["succeeded"] for a in attempts].count(True) == 1


def test_a_crash_between_commit_and_queueing_is_caught_by_the_sweeper(
    broker, host_client, host_app, receiver
):
    endpoint = create_endpoint(host_client, receiver.url)
    receiver.secrets = [endpoint["secret"]]

    # A process commits an event with its delivery and dies before its on-commit queueing
    # runs (an earlier on-commit callback exits the process on the spot).
    script = (
        "import os, sys, django\n"
        "django.setup()\n"
        "from django.db import transaction\n"
        "from partners.events import event_publish\n"
        "with transaction.atomic():\n"
        "    transaction.on_commit(lambda: os._exit(0))\n"
        "    event = event_publish(type='order.paid', object_id='ord_crash',\n"
        "                          data={'id': 'ord_crash'}, partner_ids=[sys.argv[1]])\n"
        "    print(event.pk, flush=True)\n"
        "print('queued', flush=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, host_app.pk],
        cwd=BASE_DIR,
        env=broker.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    event_id = result.stdout.split()[0]
    assert "queued" not in result.stdout  # it died right after the commit
    [delivery] = deliveries_of(endpoint["id"])
    assert delivery.event_id == event_id
    assert (delivery.status, delivery.attempt_count) == ("pending", 0)  # no task was sent

    # The periodic sweep (beat sends this task every 30 s) finds it and it is delivered.
    sweep_webhook_deliveries.delay()

    wait_for(
        lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded",
        message=lambda: broker.log_tail(),
    )
    [got] = receiver.of_event(event_id)
    assert got.verified_with == [endpoint["secret"]]
    assert json.loads(got.body)["data"] == {"id": "ord_crash"}


def test_a_worker_killed_mid_send_still_delivers(broker, host_client, host_app, make_receiver):
    # given a receiver that holds each request open (the send is in flight)
    hold = threading.Event()
    receiver = make_receiver(hold=hold)
    endpoint = create_endpoint(host_client, receiver.url)
    receiver.secrets = [endpoint["secret"]]
    event = publish(type="order.shipped", object_id="ord_kill", partners=[host_app])
    receiver.wait_for_requests(1)

    # when the worker is killed in the middle of the send
    broker.kill()
    receiver.hold = None
    hold.set()

    # then the attempt left nothing behind: the delivery is still owed
    delivery = WebhookDelivery.objects.get(event=event)
    assert (delivery.status, delivery.attempt_count) == ("pending", 0)

    # and a new worker, with the periodic sweep, delivers it
    broker.start()
    wait_for(
        lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded",
        tick=sweep_webhook_deliveries.delay,
        message=lambda: broker.log_tail(),
    )
    received = receiver.of_event(event.pk)
    assert len(received) >= 2  # at least once: the cut-off send, then the one that succeeded
    assert received[-1].answered == 200
    assert all(r.verified_with == [endpoint["secret"]] for r in received)
    [listed] = host_client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries").json()[
        "results"
    ]
    assert listed["status"] == "succeeded"
    assert [a["status_code"] for a in listed["attempts"]] == [200]
