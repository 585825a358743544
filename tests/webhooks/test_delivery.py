"""Publishing and sending, in this process against a local receiver (the worker tests are in
test_worker.py): outbox rows and on-commit queueing, signatures, retries, 410, Retry-After,
disabling after long failure, rotation, the URL check at send time, the sweeper."""

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from partners.events import event_publish
from partners.models import Event
from partners.webhooks import conf, sending, services
from partners.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from partners.webhooks.sending import parse_retry_after
from partners.webhooks.url_policy import CheckedURL
from tests.factories import BrandFactory
from tests.webhooks.helpers import make_endpoint, publish

pytestmark = pytest.mark.django_db


def attempt(delivery: WebhookDelivery) -> WebhookDelivery:
    """One run of the send task's body, in this process."""
    services.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def delivery_of(event: Event, endpoint: WebhookEndpoint) -> WebhookDelivery:
    return WebhookDelivery.objects.get(event=event, endpoint=endpoint)


class TestPublishing:
    def test_publishing_writes_deliveries_and_queues_the_send_on_commit(
        self, host_app, brand, django_capture_on_commit_callbacks
    ):
        everything = make_endpoint(host_app, "https://93.184.216.34/a", events=["*"])
        paid_only = make_endpoint(host_app, "https://93.184.216.34/b", events=["order.paid"])
        make_endpoint(host_app, "https://93.184.216.34/c", events=["order.shipped"])
        make_endpoint(host_app, "https://93.184.216.34/d", status="disabled")
        make_endpoint(BrandFactory(), "https://93.184.216.34/e")  # not a recipient

        with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
            event = event_publish(
                type="order.paid",
                object_id="ord_1",
                data={"id": "ord_1", "total": "19.99"},
                partner_ids=[host_app.pk, brand.pk, None],
            )
            assert not callbacks  # nothing leaves before the commit

        assert len(callbacks) == 1
        deliveries = WebhookDelivery.objects.filter(event=event)
        assert {d.endpoint_id for d in deliveries} == {everything.pk, paid_only.pk}
        assert {d.status for d in deliveries} == {"pending"}
        assert set(event.recipients.values_list("partner_id", flat=True)) == {
            host_app.pk,
            brand.pk,
        }

    def test_no_endpoint_no_callback(self, host_app, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks() as callbacks:
            publish(partners=[host_app])

        assert callbacks == []

    def test_the_queued_callback_sends_the_delivery(
        self, host_app, receiver, django_capture_on_commit_callbacks
    ):
        endpoint = make_endpoint(host_app, receiver.url)
        receiver.secrets = [endpoint.secret]

        # Without a broker (these tests) Celery runs the queued task in this process.
        with django_capture_on_commit_callbacks(execute=True):
            event = publish(partners=[host_app])

        [got] = receiver.wait_for_requests(1)
        assert got.event_id == event.pk
        assert got.verified_with == [endpoint.secret]
        assert delivery_of(event, endpoint).status == "succeeded"

    def test_sequence_numbers_count_each_objects_events(self, host_app):
        first = publish(object_id="ord_a", partners=[host_app])
        publish(object_id="ord_b", partners=[host_app])
        second = publish(type="order.shipped", object_id="ord_a", partners=[host_app])

        assert (first.sequence, second.sequence) == (1, 2)
        assert Event.objects.get(object_id="ord_b").sequence == 1

    def test_the_body_is_serialised_once_and_stored(self, host_app):
        event = publish(data={"id": "ord_test", "total": "5.00"}, partners=[host_app])
        event.refresh_from_db()

        assert json.loads(event.body) == {
            "id": event.pk,
            "type": "order.paid",
            "created": event.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "sequence": 1,
            "livemode": True,
            "data": {"id": "ord_test", "total": "5.00"},
        }


class TestSending:
    def test_a_delivery_is_signed_per_standard_webhooks_and_sent_once(self, host_app, receiver):
        endpoint = make_endpoint(host_app, receiver.url)
        receiver.secrets = [endpoint.secret]
        event = publish(type="order.created", data={"id": "ord_test"}, partners=[host_app])
        event.refresh_from_db()

        delivery = attempt(delivery_of(event, endpoint))

        [got] = receiver.received
        assert got.verified_with == [endpoint.secret]
        assert got.headers["webhook-id"] == event.pk
        assert got.headers["content-type"] == "application/json"
        assert abs(int(got.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
        assert got.body == event.body
        assert set(got.payload) == {"id", "type", "created", "sequence", "livemode", "data"}
        assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == (
            "succeeded",
            1,
            200,
        )
        [record] = delivery.attempts.all()
        assert record.succeeded and record.status_code == 200 and record.latency_ms >= 0
        assert record.response_body == "ok"

        # A second run (a duplicate task, a redelivered message) sends nothing.
        assert attempt(delivery).status == "succeeded"
        assert len(receiver.received) == 1
        assert delivery.attempts.count() == 1

    def test_a_send_reads_once_and_writes_the_attempt_and_the_delivery(
        self, host_app, receiver, django_assert_num_queries
    ):
        # the delivery with its event, endpoint and partner in one locked read; the endpoint's
        # other due deliveries (none here); the attempt; the delivery's outcome; the endpoint's
        # health (savepoints: the test's transaction)
        endpoint = make_endpoint(host_app, receiver.url)
        delivery = delivery_of(publish(partners=[host_app]), endpoint)

        with django_assert_num_queries(7):
            services.webhook_delivery_attempt(delivery_id=delivery.pk)

        assert receiver.wait_for_requests(1)

    def test_a_failure_schedules_a_retry_with_backoff(self, host_app, make_receiver, settings):
        settings.WEBHOOK_RETRY_SCHEDULE = [60, 600]
        down = make_receiver(status=500)
        endpoint = make_endpoint(host_app, down.url)
        event = publish(partners=[host_app])

        before = timezone.now()
        delivery = attempt(delivery_of(event, endpoint))

        assert delivery.status == "pending"
        assert delivery.last_status_code == 500
        assert delivery.last_error == "HTTP 500"
        # 60 s, spread by up to 20% either way
        assert before + timedelta(seconds=47) < delivery.next_attempt_at
        assert delivery.next_attempt_at < timezone.now() + timedelta(seconds=73)
        # Not due yet: another run does nothing.
        assert attempt(delivery).attempt_count == 1
        assert len(down.received) == 1
        endpoint.refresh_from_db()
        assert endpoint.failing_since is not None

    def test_retries_end_in_failed_after_the_schedule(self, host_app, make_receiver, settings):
        settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
        down = make_receiver(status=503)
        endpoint = make_endpoint(host_app, down.url)
        delivery = delivery_of(publish(partners=[host_app]), endpoint)

        for _ in range(4):
            delivery = attempt(delivery)

        assert delivery.status == "failed"
        assert delivery.attempt_count == 4
        assert delivery.next_attempt_at is None
        assert len(down.received) == 4
        assert attempt(delivery).attempt_count == 4  # failed stays failed

    def test_connection_refused_is_an_attempt_too(self, host_app, make_receiver):
        down = make_receiver(listening=False)
        endpoint = make_endpoint(host_app, down.url)

        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))

        assert delivery.status == "pending"
        [record] = delivery.attempts.all()
        assert record.status_code is None
        assert record.error == "connection refused"

    def test_the_default_schedule_retries_for_more_than_a_day_whatever_the_jitter(self):
        assert sum(conf.retry_schedule()) * (1 - conf.retry_jitter()) > 24 * 3600

    def test_a_slow_endpoint_times_out(self, host_app, make_receiver, settings):
        settings.WEBHOOK_TIMEOUT = 0.3
        slow = make_receiver(hold=threading.Event())
        endpoint = make_endpoint(host_app, slow.url)

        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))

        assert delivery.status == "pending"
        assert "timeout" in delivery.last_error

    def test_redirects_are_not_followed(self, host_app, make_receiver):
        moved = make_receiver(status=302, headers={"Location": "http://169.254.169.254/"})
        endpoint = make_endpoint(host_app, moved.url)

        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))

        assert delivery.status == "pending"
        assert delivery.last_error == "redirects are not followed"
        assert len(moved.received) == 1


class TestEndpointHealth:
    def test_410_gone_disables_the_endpoint_at_once_and_tells_the_others(
        self, host_app, make_receiver, receiver
    ):
        gone = make_receiver(status=410)
        endpoint = make_endpoint(host_app, gone.url)
        other = make_endpoint(host_app, receiver.url, events=["webhook_endpoint.disabled"])
        pending = delivery_of(publish(object_id="ord_2", partners=[host_app]), endpoint)
        delivery = delivery_of(publish(partners=[host_app]), endpoint)

        delivery = attempt(delivery)

        assert delivery.status == "failed"
        endpoint.refresh_from_db()
        assert endpoint.status == "disabled"
        assert "410" in endpoint.disabled_reason
        pending.refresh_from_db()
        assert pending.status == "failed"  # nothing more goes to a disabled endpoint
        notice = Event.objects.get(type="webhook_endpoint.disabled")
        assert notice.object_id == endpoint.pk
        assert notice.data["id"] == endpoint.pk
        assert list(notice.recipients.values_list("partner_id", flat=True)) == [host_app.pk]
        assert list(notice.webhook_deliveries.values_list("endpoint_id", flat=True)) == [other.pk]

    def test_an_endpoint_failing_for_too_long_is_disabled(self, host_app, make_receiver, settings):
        settings.WEBHOOK_DISABLE_AFTER = timedelta(days=5)
        down = make_receiver(status=500)
        endpoint = make_endpoint(
            host_app, down.url, failing_since=timezone.now() - timedelta(days=5, minutes=1)
        )

        attempt(delivery_of(publish(partners=[host_app]), endpoint))

        endpoint.refresh_from_db()
        assert endpoint.status == "disabled"
        assert Event.objects.filter(type="webhook_endpoint.disabled").count() == 1

    def test_a_shorter_failure_keeps_the_endpoint_and_a_success_resets_it(
        self, host_app, make_receiver
    ):
        server = make_receiver(status=500)
        endpoint = make_endpoint(
            host_app, server.url, failing_since=timezone.now() - timedelta(days=4)
        )
        attempt(delivery_of(publish(partners=[host_app]), endpoint))
        endpoint.refresh_from_db()
        assert endpoint.status == "enabled"
        assert endpoint.failing_since < timezone.now() - timedelta(days=3)

        server.status = 200
        attempt(delivery_of(publish(object_id="ord_2", partners=[host_app]), endpoint))

        endpoint.refresh_from_db()
        assert endpoint.failing_since is None

    def test_a_delivery_to_a_disabled_endpoint_fails_without_a_request(self, host_app, receiver):
        endpoint = make_endpoint(host_app, receiver.url)
        delivery = delivery_of(publish(partners=[host_app]), endpoint)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(status="disabled")

        delivery = attempt(delivery)

        assert delivery.status == "failed"
        assert receiver.received == []


class TestRetryAfter:
    @pytest.mark.parametrize("status", [429, 503])
    def test_retry_after_is_the_next_delay(self, host_app, make_receiver, status):
        busy = make_receiver(status=status, headers={"Retry-After": "120"})
        endpoint = make_endpoint(host_app, busy.url)
        before = timezone.now()

        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))

        assert delivery.status == "pending"
        wait = delivery.next_attempt_at - before
        assert timedelta(seconds=119) < wait < timedelta(seconds=125)

    def test_retry_after_is_capped(self, host_app, make_receiver, settings):
        settings.WEBHOOK_RETRY_AFTER_MAX = 3600
        busy = make_receiver(status=429, headers={"Retry-After": "999999999"})
        endpoint = make_endpoint(host_app, busy.url)

        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))

        assert delivery.next_attempt_at < timezone.now() + timedelta(seconds=3601)

    def test_retry_after_may_be_an_http_date(self):
        now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)

        assert parse_retry_after("Mon, 23 Nov 2026 12:02:00 GMT", now=now) == 120
        assert parse_retry_after("30", now=now) == 30
        assert parse_retry_after("soon", now=now) is None


class TestRotation:
    def test_during_rotation_both_secrets_sign(self, host_app, host_client, receiver):
        endpoint = make_endpoint(host_app, receiver.url)
        old = endpoint.secret
        new = host_client.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/rotate-secret").json()[
            "secret"
        ]
        receiver.secrets = [old, new]

        attempt(delivery_of(publish(partners=[host_app]), endpoint))

        [got] = receiver.received
        assert got.verified_with == [old, new]
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        assert all(part.startswith("v1,") for part in got.headers["webhook-signature"].split())

    def test_after_the_grace_period_only_the_new_secret_signs(
        self, host_app, host_client, receiver
    ):
        endpoint = make_endpoint(host_app, receiver.url)
        old = endpoint.secret
        new = host_client.post(
            f"/api/v1/webhook-endpoints/{endpoint.pk}/rotate-secret",
            {"grace_period_seconds": 0},
            format="json",
        ).json()["secret"]
        receiver.secrets = [old, new]

        attempt(delivery_of(publish(partners=[host_app]), endpoint))

        assert receiver.received[0].verified_with == [new]


class TestURLCheckAtSendTime:
    def test_a_url_no_longer_allowed_is_not_called(self, host_app, receiver, settings):
        endpoint = make_endpoint(host_app, receiver.url)  # created while loopback was allowed
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))

        assert receiver.received == []
        assert delivery.status == "pending"
        assert delivery.last_error.startswith("URL not allowed")

    def test_dns_rebinding_to_a_private_address_is_caught(
        self, host_app, receiver, settings, monkeypatch
    ):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        real = socket.getaddrinfo

        def resolve(host, *args, **kwargs):
            if host == "hooks.rebind.example":  # public at creation, private at send time
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port))]
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        endpoint = make_endpoint(host_app, f"https://hooks.rebind.example:{receiver.port}/")

        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))

        assert receiver.received == []
        assert "not public" in delivery.last_error  # the reason, never the address (issue 18)
        assert "127.0.0.1" not in delivery.last_error

    def test_the_send_connects_to_the_address_that_was_checked(
        self, host_app, receiver, monkeypatch
    ):
        # The first lookup (the check) answers; any later lookup would fail. The request still
        # arrives, so the connection used the checked address rather than asking DNS again.
        real = socket.getaddrinfo
        lookups = []

        def resolve(host, *args, **kwargs):
            if host == "hooks.pinned.example":
                lookups.append(host)
                if len(lookups) > 1:
                    raise socket.gaierror(socket.EAI_NONAME, "no second answer")
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port))]
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        endpoint = make_endpoint(host_app, f"http://hooks.pinned.example:{receiver.port}/in")

        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))

        assert delivery.status == "succeeded", delivery.last_error
        assert lookups == ["hooks.pinned.example"]
        assert receiver.received[0].headers["host"] == f"hooks.pinned.example:{receiver.port}"

    def test_consecutive_sends_to_an_endpoint_reuse_one_connection(self, host_app, make_receiver):
        receiver = make_receiver(keep_alive=True)
        endpoint = make_endpoint(host_app, receiver.url)

        for _ in range(3):
            assert attempt(delivery_of(publish(partners=[host_app]), endpoint)).status == (
                "succeeded"
            )

        assert len({item.peer for item in receiver.received}) == 1

    def test_a_kept_connection_is_not_used_once_the_address_is_refused(
        self, host_app, make_receiver, settings, monkeypatch
    ):
        # given a kept-alive connection to an address the policy allowed at the first send
        receiver = make_receiver(keep_alive=True)
        real = socket.getaddrinfo

        def resolve(host, *args, **kwargs):
            if host == "hooks.kept.example":
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port))]
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        endpoint = make_endpoint(host_app, f"http://hooks.kept.example:{receiver.port}/in")
        assert attempt(delivery_of(publish(partners=[host_app]), endpoint)).status == "succeeded"

        # when the policy refuses that address
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))

        # then the kept connection carried nothing
        assert len(receiver.received) == 1
        assert delivery.status == "pending"
        assert "not public" in delivery.last_error

    def test_a_new_checked_address_gets_a_session_of_its_own(self):
        def target(address: str) -> CheckedURL:
            return CheckedURL("https://hooks.example/", "https", "hooks.example", 443, (address,))

        first = sending._session_for(target("203.0.113.7"))

        assert sending._session_for(target("203.0.113.7")) is first
        assert sending._session_for(target("198.51.100.9")) is not first


class TestSweeper:
    def test_the_sweeper_queues_due_deliveries_no_task_took(
        self, host_app, receiver, settings, django_capture_on_commit_callbacks
    ):
        settings.WEBHOOK_REQUEUE_AFTER = 60
        endpoint = make_endpoint(host_app, receiver.url)
        lost = delivery_of(publish(partners=[host_app]), endpoint)  # its task never ran
        WebhookDelivery.objects.filter(pk=lost.pk).update(
            enqueued_at=timezone.now() - timedelta(minutes=2)
        )
        fresh = delivery_of(publish(object_id="ord_2", partners=[host_app]), endpoint)
        later = delivery_of(publish(object_id="ord_3", partners=[host_app]), endpoint)
        WebhookDelivery.objects.filter(pk=later.pk).update(
            next_attempt_at=timezone.now() + timedelta(hours=1), enqueued_at=None
        )

        with django_capture_on_commit_callbacks(execute=True):
            queued = services.webhook_deliveries_sweep()

        assert queued == 1  # only the lost one: fresh's own task is on its way
        lost.refresh_from_db()
        fresh.refresh_from_db()
        later.refresh_from_db()
        assert lost.status == "succeeded"  # run in this process: no broker in these tests
        # the task sending lost took along its endpoint's other due delivery, not the later one
        assert fresh.status == "succeeded" and fresh.attempt_count == 1
        assert later.status == "pending" and later.attempt_count == 0
        assert [r.event_id for r in receiver.received] == [lost.event_id, fresh.event_id]

    def test_the_sweeper_leaves_finished_deliveries_alone(
        self, host_app, receiver, django_capture_on_commit_callbacks
    ):
        endpoint = make_endpoint(host_app, receiver.url)
        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))
        assert delivery.status == "succeeded"

        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            queued = services.webhook_deliveries_sweep(now=timezone.now() + timedelta(days=1))

        assert (queued, callbacks) == (0, [])
        assert WebhookAttempt.objects.count() == 1


class TestRobustness:
    def test_an_error_while_sending_costs_one_attempt_not_a_loop(self, host_app, receiver):
        endpoint = make_endpoint(host_app, receiver.url)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret="whsec_")  # unusable

        delivery = attempt(delivery_of(publish(partners=[host_app]), endpoint))

        assert delivery.status == "pending"
        assert delivery.attempt_count == 1
        assert delivery.last_error.startswith("internal error")
        assert delivery.next_attempt_at > timezone.now()
        assert receiver.received == []

    def test_operators_can_sweep_at_once(
        self, host_app, receiver, django_capture_on_commit_callbacks
    ):
        endpoint = make_endpoint(host_app, receiver.url)
        delivery = delivery_of(publish(partners=[host_app]), endpoint)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(enqueued_at=None)
        out = StringIO()

        with django_capture_on_commit_callbacks(execute=True):
            call_command("sweep_webhook_deliveries", stdout=out)

        assert out.getvalue().strip() == "1"
        delivery.refresh_from_db()
        assert delivery.status == "succeeded"


def publish_many(partner, count: int) -> list[Event]:
    """``count`` events for the partner in one committed transaction."""
    from partners.events import event_publish_many

    with transaction.atomic():
        return event_publish_many(
            events=[
                ("order.paid", f"ord_{n}", {"id": f"ord_{n}"}, [partner.pk]) for n in range(count)
            ]
        )


class TestBatches:
    def test_a_short_batch_takes_along_its_endpoints_due_backlog(
        self, host_app, brand, make_receiver
    ):
        receiver = make_receiver(keep_alive=True)
        endpoint = make_endpoint(host_app, receiver.url)
        other = make_endpoint(brand, receiver.url)
        # a backlog of single-event tasks that have not run yet (queued, not sent)
        events = publish_many(host_app, 4)
        backlog = [delivery_of(event, endpoint).pk for event in events]
        elsewhere = delivery_of(publish(object_id="ord_b", partners=[brand]), other)
        WebhookDelivery.objects.filter(pk=backlog[3]).update(
            next_attempt_at=timezone.now() + timedelta(minutes=5)  # a retry, not yet due
        )

        outcomes = services.webhook_deliveries_send(delivery_ids=[backlog[1]])

        # the given one first, then the endpoint's other due ones, oldest due first
        assert outcomes == {
            backlog[1]: "succeeded",
            backlog[0]: "succeeded",
            backlog[2]: "succeeded",
        }
        assert [r.event_id for r in receiver.received] == [events[1].pk, events[0].pk, events[2].pk]
        assert WebhookDelivery.objects.get(pk=backlog[3]).status == "pending"
        assert WebhookDelivery.objects.get(pk=elsewhere.pk).status == "pending"
        # the tasks queued for those it took along find them sent, and send nothing
        for pk in (backlog[0], backlog[2]):
            assert services.webhook_delivery_attempt(delivery_id=pk) == "already_succeeded"
        assert len(receiver.received) == 3

    def test_a_batch_costs_the_statements_of_one_send(
        self, host_app, make_receiver, django_assert_num_queries
    ):
        # one locked read, one read of the endpoint's other due deliveries (none: all five are
        # in the batch), one INSERT of the attempts, one UPDATE of the deliveries, the
        # endpoint's health (and the test transaction's savepoint and its release)
        receiver = make_receiver(keep_alive=True)
        endpoint = make_endpoint(host_app, receiver.url)
        receiver.secrets = [endpoint.secret]
        events = publish_many(host_app, 5)
        ids = [delivery_of(event, endpoint).pk for event in events]

        with django_assert_num_queries(7):
            outcomes = services.webhook_deliveries_send(delivery_ids=ids)

        assert outcomes == dict.fromkeys(ids, "succeeded")
        assert [r.event_id for r in receiver.received] == [e.pk for e in events]  # in order
        assert all(r.verified_with == [endpoint.secret] for r in receiver.received)
        assert len({r.peer for r in receiver.received}) == 1  # one kept connection
        for delivery in WebhookDelivery.objects.filter(pk__in=ids):
            assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == (
                "succeeded",
                1,
                200,
            )
            assert (delivery.next_attempt_at, delivery.enqueued_at) == (None, None)
            assert delivery.updated >= delivery.last_attempt_at
        assert WebhookAttempt.objects.filter(delivery__in=ids, succeeded=True).count() == 5

        # run again (a redelivered message): nothing is sent
        with django_assert_num_queries(3):
            again = services.webhook_deliveries_send(delivery_ids=ids)
        assert again == dict.fromkeys(ids, "already_succeeded")
        assert len(receiver.received) == 5

    def test_failures_in_a_batch_each_get_their_retry(self, host_app, make_receiver, settings):
        settings.WEBHOOK_RETRY_SCHEDULE = [60]
        down = make_receiver(status=500)
        endpoint = make_endpoint(host_app, down.url)
        ids = [delivery_of(event, endpoint).pk for event in publish_many(host_app, 3)]

        outcomes = services.webhook_deliveries_send(delivery_ids=ids)

        assert outcomes == dict.fromkeys(ids, "pending")
        for delivery in WebhookDelivery.objects.filter(pk__in=ids):
            assert (delivery.attempt_count, delivery.last_status_code) == (1, 500)
            assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=40)
        endpoint.refresh_from_db()
        assert endpoint.failing_since is not None and endpoint.status == "enabled"

    def test_publishing_queues_one_task_per_batch_of_an_endpoint(
        self, host_app, brand, monkeypatch, django_capture_on_commit_callbacks
    ):
        from partners.webhooks import queueing, tasks

        monkeypatch.setattr(queueing, "BATCH_SIZE", 4)
        queued: list[list[str]] = []
        monkeypatch.setattr(
            tasks.deliver_webhooks, "apply_async", lambda args, **kw: queued.append(args[0])
        )
        first = make_endpoint(host_app, "https://93.184.216.34/a")
        second = make_endpoint(host_app, "https://93.184.216.34/b")

        with django_capture_on_commit_callbacks(execute=True):
            events = publish_many(host_app, 6)

        def ids(endpoint, part):
            return [delivery_of(event, endpoint).pk for event in events[part]]

        assert sorted(queued) == sorted(
            [
                ids(first, slice(0, 4)),
                ids(first, slice(4, 6)),
                ids(second, slice(0, 4)),
                ids(second, slice(4, 6)),
            ]
        )

    def test_a_batch_past_its_time_sends_the_rest_in_another_task(
        self, host_app, receiver, monkeypatch, django_capture_on_commit_callbacks
    ):
        from partners.webhooks.services import deliveries

        monkeypatch.setattr(deliveries, "BATCH_SECONDS", 0.0)
        endpoint = make_endpoint(host_app, receiver.url)
        ids = [delivery_of(event, endpoint).pk for event in publish_many(host_app, 3)]

        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            outcomes = services.webhook_deliveries_send(delivery_ids=ids)

        # one send at least per batch, then the rest is queued again after the commit
        assert outcomes == {ids[0]: "succeeded", ids[1]: "queued_again", ids[2]: "queued_again"}
        assert len(receiver.received) == 1
        assert WebhookDelivery.objects.get(pk=ids[1]).attempt_count == 0
        monkeypatch.setattr(deliveries, "BATCH_SECONDS", 60.0)
        with django_capture_on_commit_callbacks(execute=True):
            for callback in callbacks:
                callback()  # eager here: the queued batch runs in this process
        assert [r.event_id for r in receiver.received][1:] == [
            WebhookDelivery.objects.get(pk=pk).event_id for pk in ids[1:]
        ]
        assert set(WebhookDelivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
            "succeeded"
        }

    def test_after_a_410_nothing_more_of_the_batch_goes_to_that_endpoint(
        self, host_app, make_receiver
    ):
        gone = make_receiver(status=410)
        endpoint = make_endpoint(host_app, gone.url)
        ids = [delivery_of(event, endpoint).pk for event in publish_many(host_app, 3)]

        outcomes = services.webhook_deliveries_send(delivery_ids=ids)

        assert outcomes == {
            ids[0]: "failed",
            ids[1]: "endpoint_disabled",
            ids[2]: "endpoint_disabled",
        }
        assert len(gone.received) == 1
        endpoint.refresh_from_db()
        assert endpoint.status == "disabled"
        rest = WebhookDelivery.objects.filter(pk__in=ids[1:])
        assert {(d.status, d.attempt_count) for d in rest} == {("failed", 0)}

    def test_a_batch_for_a_suspended_partner_sends_nothing(self, host_app, receiver):
        from partners.models import Partner

        endpoint = make_endpoint(host_app, receiver.url)
        ids = [delivery_of(event, endpoint).pk for event in publish_many(host_app, 2)]
        Partner.objects.filter(pk=host_app.pk).update(status="suspended")

        outcomes = services.webhook_deliveries_send(delivery_ids=ids)

        assert outcomes == dict.fromkeys(ids, "partner_suspended")
        assert receiver.received == []
        assert {
            (d.status, d.last_error, d.attempt_count)
            for d in WebhookDelivery.objects.filter(pk__in=ids)
        } == {("failed", "partner suspended", 0)}

    def test_the_old_one_delivery_task_still_runs_queued_messages(self, host_app, receiver):
        from livecommerce.celery import app
        from partners.webhooks.tasks import deliver_webhook

        endpoint = make_endpoint(host_app, receiver.url)
        delivery = delivery_of(publish(partners=[host_app]), endpoint)

        assert {"partners.tasks.deliver_webhook", "partners.tasks.deliver_webhooks"} <= set(
            app.tasks
        )
        assert deliver_webhook(delivery.pk) == "succeeded"
        assert [r.event_id for r in receiver.received] == [delivery.event_id]
