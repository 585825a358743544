"""/webhook-endpoints: create (secret shown once), URL policy, changes, rotation, tenancy."""

import base64
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from partners.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.conftest import client_for
from tests.factories import BrandFactory
from tests.webhooks.helpers import make_endpoint, publish

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://93.184.216.34/hooks"  # an IP literal: no DNS lookup needed


def _create(client, **body):
    return client.post("/api/v1/webhook-endpoints", {"events": ["*"], **body}, format="json")


def _codes(response) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


class TestCreate:
    def test_create_returns_the_secret_once(self, host_client):
        response = _create(host_client, url=PUBLIC_URL, events=["order.paid"], description="Orders")

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["url"] == PUBLIC_URL
        assert body["events"] == ["order.paid"]
        assert body["status"] == "enabled"
        assert body["description"] == "Orders"
        assert body["partner"] == host_client.partner.pk
        assert body["id"].startswith("we_")
        secret = body["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
        listed = host_client.get("/api/v1/webhook-endpoints").json()["results"]
        fetched = host_client.get(f"/api/v1/webhook-endpoints/{body['id']}").json()
        assert [e["id"] for e in listed] == [body["id"]]
        assert "secret" not in listed[0] and "secret" not in fetched

    def test_star_stands_alone(self, host_client):
        response = _create(host_client, url=PUBLIC_URL, events=["order.paid", "*"])

        assert response.status_code == 201
        assert response.json()["events"] == ["*"]

    @pytest.mark.parametrize("events", [["order.exploded"], [], "order.paid", [None]])
    def test_unknown_or_missing_event_names_are_400(self, host_client, events):
        response = _create(host_client, url=PUBLIC_URL, events=events)

        assert response.status_code == 400
        assert response.json()["type"] == "validation_error"
        assert response.json()["errors"][0]["attr"].startswith("events")

    def test_staff_have_no_endpoints_to_create(self, ops):
        assert _create(ops, url=PUBLIC_URL).status_code == 403


class TestURLPolicy:
    @pytest.fixture(autouse=True)
    def _production_rules(self, settings):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    @pytest.mark.parametrize(
        "url",
        [
            "http://93.184.216.34/hooks",  # plain http
            "https://127.0.0.1/hooks",  # loopback
            "https://localhost:8443/hooks",
            "https://10.1.2.3/hooks",  # private
            "https://192.168.0.10/hooks",
            "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
            "https://[::1]/hooks",
            "https://[::ffff:127.0.0.1]/hooks",  # IPv4-mapped loopback
            "https://100.64.0.1/hooks",  # carrier-grade NAT, not public
            "https://0.0.0.0/hooks",
        ],
    )
    def test_private_and_plain_http_urls_are_refused(self, host_client, url):
        response = _create(host_client, url=url)

        assert response.status_code == 400, response.content
        assert _codes(response) == ["webhook_url_not_allowed"]
        assert response.json()["errors"][0]["attr"] == "url"
        assert not WebhookEndpoint.objects.exists()

    def test_a_host_name_resolving_to_a_private_address_is_refused(self, host_client, monkeypatch):
        real = socket.getaddrinfo

        def resolve(host, *args, **kwargs):
            if host == "hooks.sneaky.example":
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 443))]
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)

        response = _create(host_client, url="https://hooks.sneaky.example/in")

        assert response.status_code == 400
        # the partner learns why, but not what internal DNS answered (issue 18)
        detail = response.json()["errors"][0]["detail"]
        assert "not public" in detail and "10.0.0.7" not in detail

    def test_a_host_that_does_not_resolve_is_refused(self, host_client, monkeypatch):
        def resolve(host, *args, **kwargs):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", resolve)

        response = _create(host_client, url="https://nowhere.example/in")

        assert response.status_code == 400
        assert _codes(response) == ["webhook_url_not_allowed"]

    def test_a_public_https_url_is_accepted(self, host_client):
        assert _create(host_client, url=PUBLIC_URL).status_code == 201

    def test_link_local_stays_refused_even_when_private_urls_are_allowed(
        self, host_client, settings
    ):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = True

        assert _create(host_client, url="http://127.0.0.1:9/hooks").status_code == 201
        assert _create(host_client, url="http://169.254.169.254/").status_code == 400
        assert _create(host_client, url="http://93.184.216.34/").status_code == 400

    def test_not_a_url_is_400(self, host_client):
        response = _create(host_client, url="ftp://93.184.216.34/x")

        assert response.status_code == 400


class TestChange:
    def test_patch_changes_events_url_and_description(self, host_client, host_app):
        endpoint = make_endpoint(host_app, PUBLIC_URL)

        response = host_client.patch(
            f"/api/v1/webhook-endpoints/{endpoint.pk}",
            {"events": ["order.shipped"], "url": "https://93.184.216.35/x", "description": "d"},
            format="json",
        )

        assert response.status_code == 200, response.content
        assert response.json()["events"] == ["order.shipped"]
        assert response.json()["url"] == "https://93.184.216.35/x"
        assert response.json()["description"] == "d"

    def test_patch_to_a_private_url_is_refused(self, host_client, host_app, settings):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        endpoint = make_endpoint(host_app, PUBLIC_URL)

        response = host_client.patch(
            f"/api/v1/webhook-endpoints/{endpoint.pk}",
            {"url": "https://10.0.0.1/"},
            format="json",
        )

        assert response.status_code == 400
        assert _codes(response) == ["webhook_url_not_allowed"]
        endpoint.refresh_from_db()
        assert endpoint.url == PUBLIC_URL

    def test_disabling_fails_pending_deliveries_and_enabling_restarts(self, host_client, host_app):
        endpoint = make_endpoint(host_app, PUBLIC_URL, failing_since=timezone.now())
        publish(partners=[host_app])
        url = f"/api/v1/webhook-endpoints/{endpoint.pk}"

        disabled = host_client.patch(url, {"status": "disabled"}, format="json")

        assert disabled.status_code == 200
        assert disabled.json()["status"] == "disabled"
        assert disabled.json()["disabled_reason"]
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        assert (delivery.status, delivery.last_error) == ("failed", "endpoint disabled")
        # no new deliveries while disabled
        publish(object_id="ord_other", partners=[host_app])
        assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1

        enabled = host_client.patch(url, {"status": "enabled"}, format="json")

        assert enabled.json()["status"] == "enabled"
        assert enabled.json()["disabled_reason"] is None
        assert enabled.json()["failing_since"] is None

    def test_delete(self, host_client, host_app):
        endpoint = make_endpoint(host_app, PUBLIC_URL)
        publish(partners=[host_app])

        response = host_client.delete(f"/api/v1/webhook-endpoints/{endpoint.pk}")

        assert response.status_code == 204
        assert host_client.get(f"/api/v1/webhook-endpoints/{endpoint.pk}").status_code == 404
        assert not WebhookDelivery.objects.exists()


class TestRotateSecret:
    def test_rotation_returns_a_new_secret_and_keeps_the_old_one_for_a_day(
        self, host_client, host_app
    ):
        endpoint = make_endpoint(host_app, PUBLIC_URL)
        old = endpoint.secret

        response = host_client.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/rotate-secret")

        assert response.status_code == 200, response.content
        body = response.json()
        assert body["secret"].startswith("whsec_") and body["secret"] != old
        endpoint.refresh_from_db()
        expires = endpoint.previous_secret_expires
        assert endpoint.previous_secret == old
        assert timedelta(hours=23) < expires - timezone.now() <= timedelta(hours=24)
        assert endpoint.signing_secrets(timezone.now()) == [body["secret"], old]
        assert endpoint.signing_secrets(expires + timedelta(seconds=1)) == [body["secret"]]

    def test_a_zero_grace_period_drops_the_old_secret_at_once(self, host_client, host_app):
        endpoint = make_endpoint(host_app, PUBLIC_URL)

        response = host_client.post(
            f"/api/v1/webhook-endpoints/{endpoint.pk}/rotate-secret",
            {"grace_period_seconds": 0},
            format="json",
        )

        assert response.status_code == 200
        assert response.json()["previous_secret_expires"] is None
        endpoint.refresh_from_db()
        assert endpoint.signing_secrets(timezone.now()) == [response.json()["secret"]]

    def test_a_negative_grace_period_is_400(self, host_client, host_app):
        endpoint = make_endpoint(host_app, PUBLIC_URL)

        response = host_client.post(
            f"/api/v1/webhook-endpoints/{endpoint.pk}/rotate-secret",
            {"grace_period_seconds": -1},
            format="json",
        )

        assert response.status_code == 400


class TestTenancy:
    def test_a_partner_sees_and_touches_only_its_own_endpoints(self, host_client, brand):
        theirs = make_endpoint(brand, PUBLIC_URL)
        mine = _create(host_client, url=PUBLIC_URL).json()["id"]
        base = f"/api/v1/webhook-endpoints/{theirs.pk}"

        listed = host_client.get("/api/v1/webhook-endpoints").json()["results"]

        assert [e["id"] for e in listed] == [mine]
        assert host_client.get(base).status_code == 404
        assert host_client.patch(base, {"description": "x"}, format="json").status_code == 404
        assert host_client.delete(base).status_code == 404
        assert host_client.post(f"{base}/rotate-secret").status_code == 404
        assert host_client.get(f"{base}/deliveries").status_code == 404
        theirs.refresh_from_db()
        assert theirs.description == ""

    def test_ops_read_every_endpoint_but_change_none(self, ops, host_app, brand):
        make_endpoint(host_app, PUBLIC_URL)
        endpoint = make_endpoint(brand, PUBLIC_URL)

        assert len(ops.get("/api/v1/webhook-endpoints").json()["results"]) == 2
        assert ops.get(f"/api/v1/webhook-endpoints/{endpoint.pk}").status_code == 200
        assert (
            ops.patch(
                f"/api/v1/webhook-endpoints/{endpoint.pk}", {"description": "x"}, format="json"
            ).status_code
            == 403
        )
        assert ops.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/rotate-secret").status_code == 403

    def test_finance_may_not_read_endpoints(self, finance):
        assert finance.get("/api/v1/webhook-endpoints").status_code == 403

    def test_the_endpoint_list_runs_a_fixed_number_of_queries(
        self, host_client, host_app, django_assert_max_num_queries
    ):
        for n in range(3):
            make_endpoint(host_app, f"https://93.184.216.{n + 1}/hooks")
        with django_assert_max_num_queries(4) as few:
            host_client.get("/api/v1/webhook-endpoints")
        for n in range(20):
            make_endpoint(host_app, f"https://93.184.217.{n + 1}/hooks")

        with django_assert_max_num_queries(len(few.captured_queries)):
            response = host_client.get("/api/v1/webhook-endpoints")

        assert len(response.json()["results"]) == 23

    def test_another_brand_key_cannot_see_a_new_brands_endpoint(self, host_client):
        other = BrandFactory()
        other_client = client_for(partner=other)
        created = _create(other_client, url=PUBLIC_URL).json()

        assert host_client.get(f"/api/v1/webhook-endpoints/{created['id']}").status_code == 404
