"""The contract's shared plumbing: idempotency, errors, pagination limits, throttling, health."""

import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from livecommerce.idempotency import purge_expired
from livecommerce.models import IdempotencyRecord
from partners.models import Partner
from tests.conftest import KeyedClient, client_for

pytestmark = pytest.mark.django_db

CREATOR = {"kind": "creator", "name": "Ava"}


def _post(client, body, key, **extra):
    return client.post("/api/v1/partners", body, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra)


class TestIdempotency:
    def test_same_key_and_body_replays_the_first_response(self, ops):
        first = _post(ops, CREATOR, "k-1")
        second = _post(ops, CREATOR, "k-1")

        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
        assert Partner.objects.filter(name="Ava").count() == 1

    def test_same_key_with_another_body_is_422(self, ops):
        _post(ops, CREATOR, "k-2")

        response = _post(ops, {**CREATOR, "name": "Bea"}, "k-2")

        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == "idempotency_key_reused"
        assert not Partner.objects.filter(name="Bea").exists()

    def test_keys_are_per_credential(self, ops):
        other_ops = _ops_client()

        first = _post(ops, CREATOR, "shared")
        second = _post(other_ops, CREATOR, "shared")

        assert first.json()["id"] != second.json()["id"]
        assert "Idempotent-Replayed" not in second

    def test_an_error_response_is_replayed_too(self, ops):
        first = _post(ops, {"kind": "creator"}, "k-bad")
        second = _post(ops, {"kind": "creator"}, "k-bad")

        assert first.status_code == second.status_code == 400
        assert second.json() == first.json()
        assert second["Idempotent-Replayed"] == "true"

    def test_a_key_over_255_characters_is_400(self, ops):
        response = _post(ops, CREATOR, "x" * 256)

        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "idempotency_key_invalid"

    def test_a_key_in_progress_is_409(self, ops):
        # given a request that holds the key and has not finished
        _post(ops, CREATOR, "k-busy")
        IdempotencyRecord.objects.filter(key="k-busy").update(in_progress=True)

        response = _post(ops, CREATOR, "k-busy")

        assert response.status_code == 409
        assert response.json()["errors"][0]["code"] == "idempotency_key_in_use"

    def test_an_abandoned_lock_is_taken_over(self, ops):
        _post(ops, CREATOR, "k-dead")
        IdempotencyRecord.objects.filter(key="k-dead").update(
            in_progress=True, locked_at=timezone.now() - timedelta(minutes=5)
        )

        response = _post(ops, CREATOR, "k-dead")

        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response

    def test_after_24_hours_the_key_is_forgotten(self, ops):
        _post(ops, CREATOR, "k-old")
        IdempotencyRecord.objects.filter(key="k-old").update(
            created=timezone.now() - timedelta(hours=25)
        )

        response = _post(ops, CREATOR, "k-old")

        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response
        assert Partner.objects.filter(name="Ava").count() == 2

    def test_purge_removes_only_expired_records(self, ops):
        _post(ops, CREATOR, "k-keep")
        _post(ops, CREATOR, "k-gone")
        IdempotencyRecord.objects.filter(key="k-gone").update(
            created=timezone.now() - timedelta(hours=30)
        )

        assert purge_expired() == 1
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["k-keep"]

    def test_unauthenticated_responses_are_not_kept(self, api_client):
        api_client.credentials(HTTP_AUTHORIZATION="Bearer wrong.key")

        response = _post(api_client, CREATOR, "k-anon")

        assert response.status_code == 401
        assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_run_once():
    # given one credential and eight threads sending the same key at the same moment
    client_key = _ops_client().key
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def send():
        client = KeyedClient(client_key)
        barrier.wait()
        response = _post(client, {"kind": "creator", "name": "Racer"}, "race")
        with lock:
            statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then exactly one partner exists; the others were told 409 or got the replay
    assert Partner.objects.filter(name="Racer").count() == 1
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}


class TestErrors:
    def test_malformed_json_is_400_not_500(self, ops):
        response = ops.post("/api/v1/partners", "{not json", content_type="application/json")

        assert response.status_code == 400
        assert response.json()["type"] == "client_error"
        assert response.json()["errors"][0]["code"] == "parse_error"

    def test_a_json_array_body_is_a_validation_error(self, ops):
        response = ops.post("/api/v1/partners", [1, 2], format="json")

        assert response.status_code == 400
        assert response.json()["type"] == "validation_error"

    def test_unsupported_media_type_is_415(self, ops):
        response = ops.post("/api/v1/partners", "kind=creator", content_type="text/plain")

        assert response.status_code == 415

    @override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
    def test_oversized_body_is_413(self, ops):
        response = ops.post("/api/v1/partners", {"kind": "creator", "name": "x" * 2000})

        assert response.status_code == 413
        assert response.json()["errors"][0]["code"] == "request_too_large"
        assert not Partner.objects.exists()

    def test_unknown_url_is_a_json_404(self, ops):
        response = ops.get("/api/v1/no-such-thing")

        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "not_found"


def test_throttling_answers_429_with_retry_after(ops):
    cache.clear()
    rates = {"api_key": "3/min"}
    with override_settings(
        REST_FRAMEWORK={
            **__import__("django.conf").conf.settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": rates,
        }
    ):
        statuses = [ops.get("/api/v1/me").status_code for _ in range(4)]
        throttled = ops.get("/api/v1/me")
        other_key = _ops_client().get("/api/v1/me")
    cache.clear()

    assert statuses == [200, 200, 200, 429]
    assert throttled.json()["errors"][0]["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
    assert other_key.status_code == 200


class TestOperations:
    def test_healthz(self, api_client):
        assert api_client.get("/healthz").json() == {"status": "ok"}

    def test_readyz_checks_database_and_broker(self, api_client):
        response = api_client.get("/readyz")

        assert response.status_code == 200
        assert set(response.json().values()) == {"OK"}
        assert any("Database" in name for name in response.json())

    @override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    def test_readyz_is_503_when_the_broker_is_unreachable(self, api_client):
        response = api_client.get("/readyz")

        assert response.status_code == 503
        assert "Broker()" in response.json()

    def test_metrics_are_prometheus_text(self, api_client, settings):
        settings.METRICS_TOKEN = "scraper-token"
        api_client.get("/healthz")

        response = api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer scraper-token")

        assert response.status_code == 200
        assert b"django_http_requests_total_by_method_total" in response.content

    def test_docs_are_served_without_any_cdn(self, api_client):
        for path in ("/api/docs/", "/api/redoc/"):
            html = api_client.get(path).content.decode()
            assert "/static/drf_spectacular_sidecar/" in html
            assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html


def test_production_settings_refuse_the_development_secret_key():
    env = {**os.environ, "DEBUG": "false", "DJANGO_SETTINGS_MODULE": "livecommerce.settings"}
    env.pop("SECRET_KEY", None)

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "SECRET_KEY is the development key" in result.stderr


def _ops_client() -> KeyedClient:
    return client_for(role="ops")
