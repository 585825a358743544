"""Idempotency keys per partner: all of a partner's API keys share one key space (a request
retried with another key during a key rotation is replayed, never done twice); staff keys each
have their own. The caller is authenticated before anything is replayed, and no stored answer
holds a secret in clear."""

import json

import pytest

from livecommerce.models import IdempotencyRecord
from orders.models import Refund
from partners.choices import PartnerStatus
from partners.models import APIKey
from partners.services import api_key_revoke
from partners.webhooks.models import WebhookEndpoint
from tests import factories
from tests.conftest import client_for
from tests.orders.helpers import act, place_order

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://93.184.216.34/hooks"


def _refund(client, order_id: str, key: str):
    return client.post(
        f"/api/v1/orders/{order_id}/refunds",
        {"amount": "5.00", "reason": "damaged"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_one_request_two_keys_of_one_partner_makes_one_refund(host_client, host_app, product):
    # given a paid order and a second key of the same host app (a key rotation)
    order = place_order(host_client, product)
    assert act(host_client, order["id"], "pay").status_code == 200
    rotated = client_for(partner=host_app)

    # when the same refund is sent with the same Idempotency-Key through each key
    first = _refund(host_client, order["id"], "refund-once")
    second = _refund(rotated, order["id"], "refund-once")

    # then one refund exists, and the second answer is the first one replayed
    assert first.status_code == second.status_code == 201, first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Refund.objects.filter(order_id=order["id"]).count() == 1


def test_another_partners_key_is_another_key_space(host_client, product):
    order = place_order(host_client, product)
    act(host_client, order["id"], "pay")
    stranger = client_for(partner=factories.HostAppFactory())
    assert _refund(host_client, order["id"], "k").status_code == 201

    # another partner sending the same key value shares nothing: it cannot see the order
    response = _refund(stranger, order["id"], "k")

    assert response.status_code == 404
    assert "Idempotent-Replayed" not in response


def test_staff_keys_are_each_their_own_key_space(ops):
    other_ops = client_for(role="ops")
    body = {"kind": "creator", "name": "Ava"}

    first = ops.post("/api/v1/partners", body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    second = other_ops.post("/api/v1/partners", body, format="json", HTTP_IDEMPOTENCY_KEY="same")

    assert first.json()["id"] != second.json()["id"]
    assert "Idempotent-Replayed" not in second


def test_a_revoked_key_gets_401_not_a_replay(host_client, host_app, product):
    order = place_order(host_client, product)
    act(host_client, order["id"], "pay")
    assert _refund(host_client, order["id"], "before-revoke").status_code == 201

    api_key_revoke(api_key=APIKey.objects.get(pk=_key_id(host_client)))
    response = _refund(host_client, order["id"], "before-revoke")

    assert response.status_code == 401
    assert "Idempotent-Replayed" not in response
    assert "errors" in response.json() and "id" not in response.json()


def test_a_suspended_partner_gets_403_not_a_replay(host_client, host_app, product):
    order = place_order(host_client, product)
    act(host_client, order["id"], "pay")
    assert _refund(host_client, order["id"], "before-suspension").status_code == 201

    host_app.status = PartnerStatus.SUSPENDED
    host_app.save(update_fields=["status"])
    response = _refund(host_client, order["id"], "before-suspension")

    assert response.status_code == 403
    assert "Idempotent-Replayed" not in response
    assert "errors" in response.json()


def test_a_webhook_secret_is_never_stored_and_a_replay_creates_nothing(host_client):
    body = {"url": PUBLIC_URL, "events": ["*"]}

    first = host_client.post(
        "/api/v1/webhook-endpoints", body, format="json", HTTP_IDEMPOTENCY_KEY="hook-1"
    )
    replay = host_client.post(
        "/api/v1/webhook-endpoints", body, format="json", HTTP_IDEMPOTENCY_KEY="hook-1"
    )

    assert first.status_code == replay.status_code == 201, first.json()
    secret = first.json()["secret"]
    assert secret.startswith("whsec_")
    # the stored answer holds no secret; the replay says so (null) and makes no second endpoint
    stored = bytes(IdempotencyRecord.objects.get(key="hook-1").body)
    assert secret.encode() not in stored and b"whsec_" not in stored
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["secret"] is None
    assert replay.json()["id"] == first.json()["id"]
    assert WebhookEndpoint.objects.filter(partner=host_client.partner).count() == 1


def test_a_rotated_webhook_secret_is_never_stored(host_client):
    endpoint = host_client.post(
        "/api/v1/webhook-endpoints", {"url": PUBLIC_URL, "events": ["*"]}, format="json"
    ).json()

    rotated = host_client.post(
        f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
        {},
        format="json",
        HTTP_IDEMPOTENCY_KEY="rotate-1",
    )

    assert rotated.status_code in (200, 201), rotated.json()
    stored = bytes(IdempotencyRecord.objects.get(key="rotate-1").body)
    assert rotated.json()["secret"].encode() not in stored and b"whsec_" not in stored


def test_a_new_api_key_is_never_stored(ops, host_app):
    response = ops.post(
        f"/api/v1/partners/{host_app.pk}/api-keys",
        {"name": "rotation"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="new-key",
    )

    assert response.status_code == 201
    stored = json.loads(bytes(IdempotencyRecord.objects.get(key="new-key").body))
    assert stored["key"] is None
    assert (
        response.json()["key"]
        not in bytes(IdempotencyRecord.objects.get(key="new-key").body).decode()
    )


def _key_id(client) -> str:
    prefix = client.key.split(".")[0]
    return APIKey.objects.get(prefix=prefix).pk
