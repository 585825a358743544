"""Receiving webhooks: signature checks, and the receiver against the real service's deliveries."""

import base64
import hashlib
import hmac
import json
import time

import pytest
import requests

from clients.webhooks import WebhookReceiver, WebhookVerificationError, verify

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret of thirty-two b..").decode()


def signed(event: dict, *, secret: str = SECRET, msg_id: str | None = None, at=None):
    """Headers and body signed by hand as the contract describes (no library involved)."""
    body = json.dumps(event).encode()
    msg_id = msg_id or event["id"]
    timestamp = str(int(at if at is not None else time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    return headers, body


def event(sequence: int, type: str = "order.paid", object_id: str = "ord_1", **data) -> dict:
    return {
        "id": f"evt_{object_id}_{sequence}",
        "type": type,
        "created": "2026-11-23T12:00:00.000000Z",
        "sequence": sequence,
        "data": {"id": object_id, **data},
    }


class TestVerify:
    def test_a_correctly_signed_body_is_accepted(self):
        headers, body = signed(event(1))

        assert verify(SECRET, headers, body) == event(1)

    def test_header_names_are_case_insensitive(self):
        headers, body = signed(event(1))

        assert verify(SECRET, {k.title(): v for k, v in headers.items()}, body)["sequence"] == 1

    def test_a_tampered_body_is_rejected(self):
        headers, body = signed(event(1, amount="19.99"))

        with pytest.raises(WebhookVerificationError):
            verify(SECRET, headers, body.replace(b"19.99", b"99.99"))

    def test_another_secret_is_rejected(self):
        headers, body = signed(event(1), secret=OTHER_SECRET)

        with pytest.raises(WebhookVerificationError):
            verify(SECRET, headers, body)

    def test_an_old_timestamp_is_rejected_even_with_a_good_signature(self):
        headers, body = signed(event(1), at=time.time() - 600)

        with pytest.raises(WebhookVerificationError):
            verify(SECRET, headers, body)

    @pytest.mark.parametrize(
        "broken",
        [
            {"webhook-signature": "garbage"},
            {"webhook-signature": "v1,not base64!"},
            {"webhook-timestamp": "yesterday"},
            {"webhook-id": ""},
        ],
    )
    def test_malformed_headers_are_rejected(self, broken):
        headers, body = signed(event(1))

        with pytest.raises(WebhookVerificationError):
            verify(SECRET, {**headers, **broken}, body)

    def test_either_secret_is_accepted_during_a_rotation(self):
        headers, body = signed(event(1), secret=OTHER_SECRET)

        assert verify([SECRET, OTHER_SECRET], headers, body)["id"] == event(1)["id"]


class TestReceiver:
    @pytest.fixture
    def receiver(self):
        with WebhookReceiver(SECRET) as receiver:
            yield receiver

    def post(self, receiver, headers, body, timeout=5):
        return requests.post(receiver.url, data=body, headers=headers, timeout=timeout)

    def test_listens_on_loopback_on_a_free_port(self, receiver):
        assert receiver.url.startswith("http://127.0.0.1:")
        assert not receiver.url.startswith("http://127.0.0.1:0/")

    def test_collects_verified_deliveries_once_each(self, receiver):
        headers, body = signed(event(1))

        statuses = [self.post(receiver, headers, body).status_code for _ in range(3)]

        assert statuses == [200, 200, 200]
        assert receiver.events == [event(1)]
        assert [a.duplicate for a in receiver.attempts] == [False, True, True]

    def test_refuses_a_forged_delivery(self, receiver):
        headers, body = signed(event(1), secret=OTHER_SECRET)

        assert self.post(receiver, headers, body).status_code == 400
        assert receiver.events == []

    def test_puts_each_objects_events_in_sequence_order_and_flags_stale_ones(self, receiver):
        for e in [event(2), event(1, "order.created"), event(1, object_id="ord_2"), event(3)]:
            self.post(receiver, *signed(e))

        assert [e["sequence"] for e in receiver.events_for("ord_1")] == [1, 2, 3]
        assert [e["sequence"] for e in receiver.events_for("ord_2")] == [1]
        stale = [a.webhook_id for a in receiver.attempts if a.stale]
        assert stale == ["evt_ord_1_1"]  # arrived after sequence 2 had been applied
        in_order = [receiver.next_event(timeout=1)["id"] for _ in range(3)]
        assert in_order == ["evt_ord_1_2", "evt_ord_2_1", "evt_ord_1_3"]

    def test_can_fail_on_purpose_then_recover(self, receiver):
        headers, body = signed(event(1))
        receiver.fail_with(500, times=1)

        first = self.post(receiver, headers, body)
        second = self.post(receiver, headers, body)

        assert (first.status_code, second.status_code) == (500, 200)
        assert receiver.events == [event(1)]

    def test_can_say_gone_or_ask_to_wait(self, receiver):
        receiver.fail_with(410)
        assert self.post(receiver, *signed(event(1))).status_code == 410

        receiver.fail_with(503, retry_after=30)
        busy = self.post(receiver, *signed(event(2)))
        assert (busy.status_code, busy.headers["Retry-After"]) == (503, "30")

        receiver.answer_normally()
        assert self.post(receiver, *signed(event(3))).status_code == 200

    def test_a_slow_answer_still_takes_the_event_once(self, receiver):
        headers, body = signed(event(1))
        receiver.slow_down(1.0)

        with pytest.raises(requests.Timeout):
            self.post(receiver, headers, body, timeout=0.2)
        receiver.slow_down(0)
        retry = self.post(receiver, headers, body)

        assert retry.status_code == 200
        assert receiver.events == [event(1)]

    def test_a_handler_that_fails_gets_the_delivery_again(self, receiver):
        calls = []

        def flaky(e):
            calls.append(e["id"])
            if len(calls) == 1:
                raise RuntimeError("database down")

        receiver.on_event = flaky
        headers, body = signed(event(1))

        statuses = [self.post(receiver, headers, body).status_code for _ in range(2)]

        assert statuses == [500, 200]
        assert calls == ["evt_ord_1_1", "evt_ord_1_1"]
        assert receiver.events == [event(1)]


@pytest.mark.django_db(transaction=True)
class TestDeliveriesFromTheService:
    """The service's real, signed deliveries, received over HTTP on 127.0.0.1."""

    @pytest.fixture(autouse=True)
    def _private_urls(self, settings):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = True

    @pytest.fixture
    def receiver(self):
        with WebhookReceiver() as receiver:
            yield receiver

    def subscribe(self, client, receiver, events=("*",)):
        endpoint = client.webhook_endpoints.create(url=receiver.url, events=list(events))
        receiver.secret = endpoint["secret"]
        return endpoint

    def test_an_order_is_announced_signed_and_in_sequence(self, shop, receiver):
        self.subscribe(shop.host, receiver)

        order = shop.order()
        shop.host.orders.pay(order["id"], amount=order["total"], payment_reference="ch_1")

        events = receiver.wait_for(lambda got: len(got) >= 2)
        assert [e["type"] for e in receiver.events_for(order["id"])] == [
            "order.created",
            "order.paid",
        ]
        assert [e["sequence"] for e in receiver.events_for(order["id"])] == [1, 2]
        assert events[-1]["data"]["status"] == "paid"
        assert all(a.verified for a in receiver.attempts)
        assert {a.headers["webhook-id"] for a in receiver.attempts} == {e["id"] for e in events}

    def test_a_failed_delivery_is_sent_again_and_taken_once(self, shop, receiver):
        endpoint = self.subscribe(shop.host, receiver, events=["order.created"])
        receiver.fail_with(500, times=1)

        order = shop.order()  # (tasks run in-process in tests: the attempt is made by now)
        [delivery] = list(shop.host.webhook_endpoints.deliveries(endpoint["id"]))
        assert receiver.events == []
        shop.host.webhook_deliveries.retry(delivery["id"])

        [received] = receiver.wait_for(lambda got: len(got) == 1)
        assert received["data"]["id"] == order["id"]
        assert [a.status for a in receiver.attempts] == [500, 200]

    def test_410_gone_disables_the_endpoint(self, shop, receiver):
        endpoint = self.subscribe(shop.host, receiver, events=["order.created"])
        receiver.fail_with(410)

        shop.order()

        assert [a.status for a in receiver.attempts] == [410]
        assert shop.host.webhook_endpoints.get(endpoint["id"])["status"] == "disabled"

    def test_after_a_secret_rotation_the_new_secret_verifies(self, shop, receiver):
        endpoint = self.subscribe(shop.host, receiver, events=["order.created"])
        old_secret = receiver.secret

        receiver.secret = shop.host.webhook_endpoints.rotate_secret(endpoint["id"])["secret"]
        shop.order()

        [received] = receiver.wait_for(lambda got: len(got) == 1)
        assert received["type"] == "order.created"
        assert receiver.secret != old_secret
        headers, body = receiver.attempts[0].headers, receiver.attempts[0].body
        assert verify(old_secret, headers, body) == received  # still signed with both for now
