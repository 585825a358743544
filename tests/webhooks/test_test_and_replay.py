"""Webhook tools for integrators: a test send of any event type, a replay of a time window, and
the operational events that tell a partner about its own endpoints (contract: "For integrators").

Sends go over real HTTP to a receiver on 127.0.0.1 that verifies every signature with the public
``standardwebhooks`` library.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from partners.models import Event
from partners.webhooks import services
from partners.webhooks.choices import EVENT_TYPES
from partners.webhooks.examples import EVENT_EXAMPLES
from partners.webhooks.models import WebhookDelivery
from tests import factories
from tests.webhooks.helpers import make_endpoint, publish

pytestmark = pytest.mark.django_db


class TestTestSend:
    def test_a_test_event_is_signed_marked_not_live_and_answered(
        self, host_client, host_app, receiver
    ):
        endpoint = make_endpoint(host_app, receiver.url, events=["order.paid"])
        receiver.secrets = [endpoint.secret]

        response = host_client.post(
            f"/api/v1/webhook-endpoints/{endpoint.pk}/test", {"type": "order.refunded"}
        )

        assert response.status_code == 200, response.json()
        answer = response.json()
        [got] = receiver.received
        assert got.verified_with == [endpoint.secret]  # standardwebhooks accepts it
        assert got.payload["livemode"] is False
        assert got.payload["type"] == "order.refunded"
        assert got.payload["data"] == EVENT_EXAMPLES["order.refunded"]
        assert got.headers["webhook-id"] == got.payload["id"] == answer["event_id"]
        assert answer["event_id"].startswith("evt_test_")
        assert (answer["succeeded"], answer["status_code"]) == (True, 200)
        assert answer["response_time_ms"] >= 0
        # nothing is stored: no event, no delivery
        assert not Event.objects.exists() and not WebhookDelivery.objects.exists()

    def test_an_endpoint_answering_an_error_is_reported_as_it_answered(
        self, host_client, host_app, make_receiver
    ):
        failing = make_receiver(status=503)
        endpoint = make_endpoint(host_app, failing.url)

        answer = host_client.post(
            f"/api/v1/webhook-endpoints/{endpoint.pk}/test", {"type": "order.paid"}
        ).json()

        assert (answer["succeeded"], answer["status_code"], answer["error"]) == (
            False,
            503,
            "HTTP 503",
        )
        endpoint.refresh_from_db()
        assert endpoint.failing_since is None  # a test send does not touch the endpoint's health

    def test_every_event_type_can_be_sent_and_an_unknown_one_is_refused(
        self, host_client, host_app, receiver
    ):
        endpoint = make_endpoint(host_app, receiver.url)
        url = f"/api/v1/webhook-endpoints/{endpoint.pk}/test"

        for event_type in EVENT_TYPES:
            assert host_client.post(url, {"type": event_type}).json()["succeeded"], event_type
        wrong = host_client.post(url, {"type": "order.payed"})

        assert wrong.status_code == 400
        assert wrong.json()["errors"][0]["attr"] == "type"

    def test_another_partners_endpoint_is_404(self, brand_client, host_app, receiver):
        endpoint = make_endpoint(host_app, receiver.url)

        response = brand_client.post(
            f"/api/v1/webhook-endpoints/{endpoint.pk}/test", {"type": "order.paid"}
        )

        assert response.status_code == 404


class TestReplay:
    def test_the_window_is_sent_again_with_the_same_ids_and_current_secret(
        self, host_client, host_app, brand, receiver, django_capture_on_commit_callbacks
    ):
        endpoint = make_endpoint(host_app, receiver.url, events=["order.paid", "order.refunded"])
        before = publish(object_id="ord_old", partners=[host_app])
        Event.objects.filter(pk=before.pk).update(created=timezone.now() - timedelta(days=2))
        paid = publish(object_id="ord_1", partners=[host_app])
        refunded = publish(type="order.refunded", object_id="ord_1", partners=[host_app])
        publish(type="order.shipped", object_id="ord_1", partners=[host_app])  # not subscribed
        publish(object_id="ord_brand", partners=[brand])  # not the host app's to see
        WebhookDelivery.objects.update(status="succeeded", next_attempt_at=None)
        services.webhook_endpoint_rotate_secret(endpoint=endpoint, grace_period=timedelta(0))
        endpoint.refresh_from_db()
        receiver.secrets = [endpoint.secret]
        since = (timezone.now() - timedelta(hours=1)).isoformat()

        with django_capture_on_commit_callbacks(execute=True):
            response = host_client.post(
                f"/api/v1/webhook-endpoints/{endpoint.pk}/replay", {"since": since}
            )

        assert response.status_code == 202, response.json()
        assert response.json() == {"queued": 2}
        got = receiver.wait_for_requests(2)
        assert sorted(r.event_id for r in got) == sorted([paid.pk, refunded.pk])
        assert all(r.verified_with == [endpoint.secret] for r in got)
        bodies = {r.event_id: r.body for r in got}
        paid.refresh_from_db()
        assert bodies[paid.pk] == paid.body  # the same event, byte for byte

    def test_types_narrow_it_and_a_disabled_endpoint_is_409(self, host_client, host_app, receiver):
        endpoint = make_endpoint(host_app, receiver.url)
        publish(object_id="ord_1", partners=[host_app])
        publish(type="order.refunded", object_id="ord_1", partners=[host_app])
        url = f"/api/v1/webhook-endpoints/{endpoint.pk}/replay"
        since = (timezone.now() - timedelta(hours=1)).isoformat()

        narrowed = host_client.post(url, {"since": since, "types": ["order.refunded"]})
        endpoint.status = "disabled"
        endpoint.save()
        disabled = host_client.post(url, {"since": since})
        backwards = host_client.post(url, {"since": since, "until": "2020-01-01T00:00:00Z"})

        assert (narrowed.status_code, narrowed.json()) == (202, {"queued": 1})
        assert disabled.status_code == 409
        assert disabled.json()["errors"][0]["code"] == "webhook_endpoint_disabled"
        assert backwards.status_code == 400

    def test_the_cap_is_checked_on_one_more_than_it_not_on_the_whole_window(
        self, host_client, host_app, receiver, monkeypatch
    ):
        endpoint = make_endpoint(host_app, receiver.url)
        for n in range(4):
            publish(object_id=f"ord_{n}", partners=[host_app])
        monkeypatch.setattr(services.endpoints, "REPLAY_MAX_EVENTS", 2)
        since = (timezone.now() - timedelta(hours=1)).isoformat()

        with CaptureQueriesContext(connection) as queries:
            response = host_client.post(
                f"/api/v1/webhook-endpoints/{endpoint.pk}/replay", {"since": since}
            )

        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "replay_too_large"
        [read] = [q["sql"] for q in queries.captured_queries if "partners_event" in q["sql"]]
        assert "LIMIT 3" in read

    def test_an_endpoint_is_not_sent_its_own_disabled_or_recovered_notice(
        self, host_client, host_app, receiver
    ):
        endpoint = make_endpoint(host_app, receiver.url)
        other = make_endpoint(host_app, receiver.url)
        for type in ("webhook_endpoint.disabled", "webhook_endpoint.recovered"):
            publish(type=type, object_id=endpoint.pk, partners=[host_app])
        told = publish(type="webhook_endpoint.recovered", object_id=other.pk, partners=[host_app])
        WebhookDelivery.objects.update(status="succeeded", next_attempt_at=None)
        since = (timezone.now() - timedelta(hours=1)).isoformat()

        response = host_client.post(
            f"/api/v1/webhook-endpoints/{endpoint.pk}/replay", {"since": since}
        )

        assert (response.status_code, response.json()) == (202, {"queued": 1})
        pending = WebhookDelivery.objects.filter(endpoint=endpoint, status="pending")
        assert list(pending.values_list("event_id", flat=True)) == [told.pk]


class TestOperationalEvents:
    def test_recovery_is_told_to_the_partners_other_endpoints_only(self, host_app, make_receiver):
        flaky, watcher = make_receiver(status=500), make_receiver()
        endpoint = make_endpoint(host_app, flaky.url, events=["order.paid"])
        other = make_endpoint(host_app, watcher.url, events=["webhook_endpoint.recovered"])
        event = publish(partners=[host_app])
        delivery = WebhookDelivery.objects.get(event=event, endpoint=endpoint)
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
        endpoint.refresh_from_db()
        assert endpoint.failing_since is not None

        flaky.status = 200
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        services.webhook_delivery_attempt(delivery_id=delivery.pk)

        endpoint.refresh_from_db()
        assert endpoint.failing_since is None
        [recovered] = Event.objects.filter(type="webhook_endpoint.recovered")
        assert recovered.data["id"] == endpoint.pk
        assert set(recovered.data) == set(EVENT_EXAMPLES["webhook_endpoint.recovered"])
        assert list(recovered.webhook_deliveries.values_list("endpoint", flat=True)) == [other.pk]

    def test_410_disables_at_once_and_other_4xx_are_retried(self, host_app, make_receiver):
        gone, refusing = make_receiver(status=410), make_receiver(status=404)
        gone_endpoint = make_endpoint(host_app, gone.url, events=["order.paid"])
        refusing_endpoint = make_endpoint(host_app, refusing.url, events=["order.paid"])
        watcher = make_endpoint(host_app, make_receiver().url, events=["*"])
        event = publish(partners=[host_app])

        for endpoint in (gone_endpoint, refusing_endpoint):
            delivery = WebhookDelivery.objects.get(event=event, endpoint=endpoint)
            services.webhook_delivery_attempt(delivery_id=delivery.pk)

        gone_endpoint.refresh_from_db()
        assert gone_endpoint.status == "disabled"
        refused = WebhookDelivery.objects.get(event=event, endpoint=refusing_endpoint)
        assert (refused.status, refused.next_attempt_at is not None) == ("pending", True)
        [disabled] = Event.objects.filter(type="webhook_endpoint.disabled")
        assert set(disabled.data) == set(EVENT_EXAMPLES["webhook_endpoint.disabled"])
        assert watcher.pk in list(disabled.webhook_deliveries.values_list("endpoint", flat=True))


def test_the_examples_have_the_shape_of_real_events(host_client, host_app, brand):
    # given a real order placed through the API

    product = factories.ProductFactory(brand=brand, price=1999, currency="USD", inventory=5)
    placed = host_client.post(
        "/api/v1/orders", {"lines": [{"product": product.pk, "quantity": 1}]}, format="json"
    )
    assert placed.status_code == 201, placed.json()

    # then its order.created event carries exactly the fields the example documents
    real = Event.objects.get(type="order.created").data
    example = EVENT_EXAMPLES["order.created"]
    assert set(real) == set(example)
    assert set(real["lines"][0]) == set(example["lines"][0])
