"""GET /events (catching up), an endpoint's deliveries with their attempts, and retry."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from partners.models import Event
from partners.webhooks import services
from partners.webhooks.models import WebhookDelivery
from tests.webhooks.helpers import make_endpoint, publish

pytestmark = pytest.mark.django_db


class TestEvents:
    def test_a_partner_lists_its_events_in_the_webhook_shape(self, host_client, host_app, brand):
        mine = publish(data={"id": "ord_test", "total": "9.99"}, partners=[host_app, brand])
        publish(object_id="ord_brand_only", partners=[brand])

        response = host_client.get("/api/v1/events")

        assert response.status_code == 200
        [event] = response.json()["results"]
        mine.refresh_from_db()
        assert event == {
            "id": mine.pk,
            "type": "order.paid",
            "created": event["created"],
            "sequence": 1,
            "livemode": True,
            "data": {"id": "ord_test", "total": "9.99"},
        }
        assert json.loads(mine.body) == event  # exactly what the webhook carried

    def test_another_partners_event_is_404(self, host_client, brand):
        theirs = publish(partners=[brand])

        assert host_client.get(f"/api/v1/events/{theirs.pk}").status_code == 404

    def test_staff_see_every_event(self, finance, ops, host_app, brand):
        publish(partners=[host_app])
        publish(object_id="ord_2", partners=[brand])
        publish(object_id="ord_3", partners=[])

        assert len(finance.get("/api/v1/events").json()["results"]) == 3
        assert len(ops.get("/api/v1/events").json()["results"]) == 3

    def test_filters_to_catch_up(self, host_client, host_app):
        first = publish(type="order.created", object_id="ord_a", partners=[host_app])
        publish(type="order.paid", object_id="ord_a", partners=[host_app])
        publish(type="order.created", object_id="ord_b", partners=[host_app])
        cut = timezone.now()
        last = publish(type="order.shipped", object_id="ord_a", partners=[host_app])
        Event.objects.filter(pk=first.pk).update(created=cut - timedelta(hours=1))

        def ids(query: str) -> list[str]:
            response = host_client.get(f"/api/v1/events?{query}")
            assert response.status_code == 200, response.content
            return [e["id"] for e in response.json()["results"]]

        assert len(ids("type=order.created")) == 2
        assert [
            e["sequence"]
            for e in host_client.get("/api/v1/events?object_id=ord_a&ordering=created").json()[
                "results"
            ]
        ] == [1, 2, 3]
        assert ids(f"created_after={cut.isoformat().replace('+00:00', 'Z')}") == [last.pk]
        before = (cut - timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
        assert ids(f"created_before={before}") == [first.pk]
        assert host_client.get("/api/v1/events?created_after=yesterday").status_code == 400

    def test_the_event_list_runs_a_fixed_number_of_queries(
        self, host_client, host_app, django_assert_max_num_queries
    ):
        publish(partners=[host_app])
        with django_assert_max_num_queries(5) as few:
            host_client.get("/api/v1/events")
        for n in range(30):
            publish(object_id=f"ord_{n}", partners=[host_app])

        with django_assert_max_num_queries(len(few.captured_queries)):
            response = host_client.get("/api/v1/events")

        assert len(response.json()["results"]) == 31


class TestDeliveries:
    def test_an_endpoints_deliveries_show_every_attempt(self, host_client, host_app, make_receiver):
        flaky = make_receiver(status=500)
        endpoint = make_endpoint(host_app, flaky.url)
        event = publish(partners=[host_app])
        delivery = WebhookDelivery.objects.get(event=event)
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        flaky.status = 200
        services.webhook_delivery_attempt(delivery_id=delivery.pk)

        response = host_client.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries")

        assert response.status_code == 200
        [listed] = response.json()["results"]
        assert listed["id"] == delivery.pk
        assert listed["event"] == event.pk
        assert listed["event_type"] == "order.paid"
        assert listed["status"] == "succeeded"
        assert listed["attempt_count"] == 2
        assert [(a["status_code"], a["succeeded"]) for a in listed["attempts"]] == [
            (500, False),
            (200, True),
        ]
        assert listed["attempts"][0]["error"] == "HTTP 500"
        assert host_client.get(f"/api/v1/webhook-deliveries/{delivery.pk}").json() == listed

    def test_deliveries_filter_by_status(self, host_client, host_app, make_receiver):
        endpoint = make_endpoint(host_app, make_receiver(status=500).url)
        publish(partners=[host_app])
        delivered = publish(object_id="ord_2", partners=[host_app])
        WebhookDelivery.objects.filter(event=delivered).update(
            status="succeeded", next_attempt_at=None
        )
        url = f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries"

        results = host_client.get(f"{url}?status=succeeded").json()["results"]

        assert [d["event"] for d in results] == [delivered.pk]
        assert host_client.get(f"{url}?status=lost").status_code == 400

    def test_the_delivery_list_runs_a_fixed_number_of_queries(
        self, host_client, host_app, make_receiver, django_assert_max_num_queries
    ):
        server = make_receiver(status=500)
        endpoint = make_endpoint(host_app, server.url)
        url = f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries"
        delivery = WebhookDelivery.objects.get(event=publish(partners=[host_app]))
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
        with django_assert_max_num_queries(6) as few:
            host_client.get(url)
        for n in range(15):
            publish(object_id=f"ord_{n}", partners=[host_app])
        for delivery in WebhookDelivery.objects.all():
            WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
            services.webhook_delivery_attempt(delivery_id=delivery.pk)

        with django_assert_max_num_queries(len(few.captured_queries)):
            response = host_client.get(url)

        assert len(response.json()["results"]) == 16

    def test_a_partner_sees_only_its_own_deliveries(self, host_client, brand):
        endpoint = make_endpoint(brand, "https://93.184.216.34/x")
        delivery = WebhookDelivery.objects.get(event=publish(partners=[brand]))

        assert host_client.get(f"/api/v1/webhook-deliveries/{delivery.pk}").status_code == 404
        assert host_client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/retry").status_code == (
            404
        )
        assert (
            host_client.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries").status_code
            == 404
        )


class TestRetry:
    def test_retry_sends_again_now(
        self, host_client, host_app, receiver, django_capture_on_commit_callbacks
    ):
        endpoint = make_endpoint(host_app, receiver.url)
        receiver.secrets = [endpoint.secret]
        delivery = WebhookDelivery.objects.get(event=publish(partners=[host_app]))
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status="failed", next_attempt_at=None, attempt_count=9
        )

        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = host_client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/retry")

        assert response.status_code == 202, response.content
        assert response.json()["status"] == "pending"
        assert len(callbacks) == 1
        # No broker in these tests: the queued task ran in this process.
        [got] = receiver.received
        assert got.verified_with == [endpoint.secret]
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempt_count) == ("succeeded", 10)

    def test_retry_to_a_disabled_endpoint_is_409(self, host_client, host_app):
        endpoint = make_endpoint(host_app, "https://93.184.216.34/x", status="disabled")
        delivery = WebhookDelivery.objects.create(
            event=publish(partners=[]), endpoint=endpoint, status="failed"
        )

        response = host_client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/retry")

        assert response.status_code == 409
        assert response.json()["errors"][0]["code"] == "webhook_endpoint_disabled"

    def test_ops_may_retry_for_a_partner(self, ops, host_app, django_capture_on_commit_callbacks):
        make_endpoint(host_app, "https://93.184.216.34/x")
        delivery = WebhookDelivery.objects.get(event=publish(partners=[host_app]))

        with django_capture_on_commit_callbacks() as callbacks:
            response = ops.post(f"/api/v1/webhook-deliveries/{delivery.pk}/retry")

        assert response.status_code == 202
        assert len(callbacks) == 1
