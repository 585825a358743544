"""Coalesced wake-ups on a real Redis broker (``partners.webhooks.queueing``), no worker.

This process publishes to a Redis database of its own, so the test reads exactly what a worker
would find there: the list of new deliveries, the drain flag and the Celery messages in the
``webhooks`` queue. The drain runs here as the worker's task would run it; the end-to-end sends
through a real worker are tests/webhooks/test_worker.py's.
"""

import base64
import json

import pytest
import redis
from celery import current_app

from partners.webhooks import queueing
from partners.webhooks.models import WebhookDelivery
from partners.webhooks.services import webhook_endpoint_create
from tests.webhooks.helpers import publish
from tests.webhooks.worker import claim_broker, use_broker

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker():
    claim = claim_broker()
    with use_broker(claim.url):
        yield claim
    claim.empty()
    claim.release()


@pytest.fixture
def unpaused():
    """The pause a refusing broker sets in this process, lifted again after the test."""
    yield
    queueing._broker_failed_at = None


def messages(client: redis.Redis) -> list[tuple[str, list]]:
    """The Celery messages waiting in the ``webhooks`` queue, oldest first: (task, args)."""
    found = []
    for raw in reversed(client.lrange("webhooks", 0, -1)):  # kombu LPUSHes, workers pop the tail
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], args))
    return found


def pending(client: redis.Redis) -> list[str]:
    return [item.decode() for item in client.lrange(queueing.PENDING_LIST, 0, -1)]


def test_commits_while_a_drain_is_queued_add_to_its_list_and_it_sends_them_in_one_batch(
    broker, host_app, brand
):
    endpoint = webhook_endpoint_create(
        partner=host_app, url="http://127.0.0.1:9/hook", events=["*"]
    )
    other = webhook_endpoint_create(partner=brand, url="http://127.0.0.1:9/brand", events=["*"])

    # when three changes commit, each publishing an event (the first to the brand as well)
    publish(type="order.created", object_id="ord_a", partners=[host_app, brand])
    publish(type="order.paid", object_id="ord_a", partners=[host_app])
    publish(type="order.created", object_id="ord_b", partners=[host_app])

    # then their deliveries wait in one list, in commit order, and ONE drain task is queued
    ordered = list(WebhookDelivery.objects.order_by("created", "event__sequence"))
    assert len(ordered) == 4
    by_endpoint = {
        e.pk: [d.pk for d in ordered if d.endpoint_id == e.pk] for e in (endpoint, other)
    }
    assert sorted(pending(broker.client)) == sorted(f"{d.pk} {d.endpoint_id}" for d in ordered)
    assert [p.split()[0] for p in pending(broker.client) if p.endswith(endpoint.pk)] == (
        by_endpoint[endpoint.pk]
    )
    assert messages(broker.client) == [(queueing.DRAIN_WEBHOOK_QUEUE, [])]
    assert broker.client.get(queueing.DRAIN_FLAG) == b"1"

    # when the drain runs (as the worker runs it)
    assert queueing.drain_pending() == 4

    # then one send task per endpoint carries its deliveries in order, the list is empty and
    # the flag is let go
    drain, *sends = messages(broker.client)
    assert drain == (queueing.DRAIN_WEBHOOK_QUEUE, [])
    assert sorted(sends) == sorted(
        (queueing.DELIVER_WEBHOOKS, [ids]) for ids in by_endpoint.values()
    )
    assert pending(broker.client) == []
    assert broker.client.get(queueing.DRAIN_FLAG) is None

    # and the next commit, finding no drain, queues its own
    publish(type="order.paid", object_id="ord_b", partners=[host_app])
    assert [task for task, _ in messages(broker.client)].count(queueing.DRAIN_WEBHOOK_QUEUE) == 2


def test_a_drain_takes_what_was_pushed_while_it_let_the_flag_go(broker, host_app, settings):
    settings.WEBHOOK_DRAIN_DELAY = 0
    webhook_endpoint_create(partner=host_app, url="http://127.0.0.1:9/hook", events=["*"])
    publish(type="order.created", object_id="ord_a", partners=[host_app])
    [first] = WebhookDelivery.objects.all()
    client = queueing._wake_up_client()
    release = client.delete
    late = []

    def commit_meanwhile(*keys):
        # A commit lands after the drain found the list empty and before it lets the flag go:
        # it sees the flag still set, so it queues no drain of its own.
        if not late:
            late.append(f"dlv_late {first.endpoint_id}")
            client.rpush(queueing.PENDING_LIST, late[0])
            assert not client.set(queueing.DRAIN_FLAG, "1", nx=True)
        return release(*keys)

    client.delete = commit_meanwhile
    try:
        assert queueing.drain_pending() == 2
    finally:
        client.delete = release
    sent = [args[0] for task, args in messages(broker.client) if task == queueing.DELIVER_WEBHOOKS]
    assert sent == [[first.pk], ["dlv_late"]]  # the late one was taken by the recheck
    assert pending(broker.client) == []
    assert broker.client.get(queueing.DRAIN_FLAG) is None


def test_a_drain_that_could_not_be_queued_lets_the_flag_go(broker, host_app, unpaused):
    webhook_endpoint_create(partner=host_app, url="http://127.0.0.1:9/hook", events=["*"])
    drain = current_app.tasks[queueing.DRAIN_WEBHOOK_QUEUE]

    def refused(*args, **kwargs):
        raise OSError("the broker refused the message")

    drain.apply_async = refused  # the list's Redis answers, the Celery publish fails
    try:
        publish(type="order.created", object_id="ord_a", partners=[host_app])
    finally:
        del drain.apply_async
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.status, delivery.enqueued_at) == ("pending", None)  # left to the sweeper
    # and the flag is not left set, which would keep other processes' commits from draining
    assert broker.client.get(queueing.DRAIN_FLAG) is None


def test_a_broker_that_refuses_leaves_the_deliveries_to_the_sweeper(host_app, unpaused):
    webhook_endpoint_create(partner=host_app, url="http://127.0.0.1:9/hook", events=["*"])
    # a broker URL nothing listens on (port 9, discard; refused on loopback)
    with use_broker("redis://127.0.0.1:9/0"):
        publish(type="order.created", object_id="ord_a", partners=[host_app])
        # and while paused, the next commit does not try the broker at all
        publish(type="order.paid", object_id="ord_a", partners=[host_app])
    assert queueing._broker_failed_at is not None
    deliveries = list(WebhookDelivery.objects.all())
    assert len(deliveries) == 2
    assert [(d.status, d.enqueued_at) for d in deliveries] == [("pending", None)] * 2
