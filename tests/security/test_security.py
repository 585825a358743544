"""Security basics, each a test that can fail.

- API keys are stored hashed and never logged (a good, a wrong and a revoked key, at DEBUG with
  every SQL statement logged), and webhook secrets never reach the logs;
- the admin shows neither a key's hash nor a webhook endpoint's secrets;
- request bodies over the limit are 413, and a body nested too deeply is a 400, not a 500;
- too many requests are 429 with ``Retry-After``, per key, and a throttled POST is not kept
  for its ``Idempotency-Key``;
- security headers on every answer; HSTS and the https redirect when configured;
- ``manage.py check --deploy`` is clean for production settings;
- the audit trail records who (which API key, which role) changed commission plans, partners,
  enrollments and keys, and staff read it.

The webhook SSRF guard (public https only, checked again at every send, DNS rebinding, no
redirects) is tested in tests/webhooks/test_endpoints_api.py and test_delivery.py.
"""

import io
import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client, override_settings

from audit.models import AuditEntry
from livecommerce.models import IdempotencyRecord
from partners.events import event_publish
from partners.models import APIKey
from partners.webhooks.models import WebhookAttempt, WebhookEndpoint
from tests import factories
from tests.conftest import KeyedClient, client_for

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]


def _logged_text(caplog) -> str:
    """Everything the log records say, formatted, with their arguments and tracebacks."""
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        parts.extend(repr(value) for value in vars(record).values())
    return "\n".join(parts)


@pytest.fixture
def every_log(caplog):
    """Capture every log record at DEBUG, SQL statements and their parameters included."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    caplog.set_level(logging.DEBUG, logger="django.request")
    forced = connection.force_debug_cursor
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = forced


@pytest.fixture
def service_log():
    """What the service's own log handler (settings.LOGGING's ``console``) writes, at DEBUG and
    with every SQL statement logged."""
    root = logging.getLogger()
    handler = next(h for h in root.handlers if h.get_name() == "console")
    output = io.StringIO()
    old_stream = handler.setStream(output)
    old_levels = {name: logging.getLogger(name).level for name in ("", "django.db.backends")}
    for name in old_levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    forced = connection.force_debug_cursor
    connection.force_debug_cursor = True
    yield output
    connection.force_debug_cursor = forced
    for name, level in old_levels.items():
        logging.getLogger(name).setLevel(level)
    handler.setStream(old_stream)


class TestKeys:
    def test_keys_are_stored_hashed_and_never_logged(self, every_log, ops):
        # given a key issued through the API (with an Idempotency-Key, as a careful client does)
        host_app = factories.HostAppFactory()
        issued = ops.post(
            f"/api/v1/partners/{host_app.pk}/api-keys",
            {"name": "prod"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="issue-1",
        ).json()
        raw = issued["key"]
        prefix, secret_part = raw.split(".", 1)
        every_log.clear()

        # when it is used, a wrong secret with its prefix is tried, and it is revoked and used
        good = KeyedClient(raw).get("/api/v1/me")
        wrong = KeyedClient(f"{prefix}.{'x' * len(secret_part)}").get("/api/v1/me")
        made_up = KeyedClient(secrets.token_urlsafe(30)).get("/api/v1/me")
        revoked = ops.delete(f"/api/v1/api-keys/{issued['id']}")
        after = KeyedClient(raw).get("/api/v1/me")

        # then it worked until revoked, and the secret is nowhere in the logs
        assert [r.status_code for r in (good, wrong, made_up, revoked, after)] == [
            200,
            401,
            401,
            204,
            401,
        ]
        logged = _logged_text(every_log)
        assert "SELECT" in logged  # the SQL statements were logged, with their parameters
        assert secret_part not in logged
        # and the database holds a hash, never the key: not on the key, not in the audit trail,
        # not in the answer kept for the Idempotency-Key
        stored = APIKey.objects.get(pk=issued["id"])
        assert stored.hashed_key.startswith("sha512$$")
        assert secret_part not in stored.hashed_key
        for entry in AuditEntry.objects.all():
            assert secret_part not in json.dumps(entry.changes)
        for record in IdempotencyRecord.objects.all():
            assert secret_part.encode() not in bytes(record.body or b"")

    def test_a_replayed_key_creation_does_not_show_the_key_again(self, ops):
        host_app = factories.HostAppFactory()

        def issue():
            return ops.post(
                f"/api/v1/partners/{host_app.pk}/api-keys",
                {"name": "prod"},
                format="json",
                HTTP_IDEMPOTENCY_KEY="issue-twice",
            )

        first, replay = issue(), issue()

        assert first.status_code == replay.status_code == 201
        assert first.json()["key"]
        assert replay["Idempotent-Replayed"] == "true"
        assert replay.json() == {**first.json(), "key": None}  # the same key, not shown again
        assert APIKey.objects.filter(partner=host_app).count() == 1

    def test_webhook_secrets_are_redacted_from_the_log_output(
        self, service_log, django_capture_on_commit_callbacks, settings, webhook_receiver
    ):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
        host = client_for(partner=factories.HostAppFactory())

        # when an endpoint is made, an event is delivered to it (signed), and its secret rotated
        with django_capture_on_commit_callbacks(execute=True):
            created = host.post(
                "/api/v1/webhook-endpoints",
                {"url": webhook_receiver, "events": ["*"]},
                format="json",
            ).json()
            with transaction.atomic():
                event_publish(
                    type="order.created",
                    object_id="ord_test",
                    data={"id": "ord_test"},
                    partner_ids=[host.partner.pk],
                )
        rotated = host.post(
            f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret", {}, format="json"
        ).json()

        # then the delivery was signed and sent, and neither secret is in what the service logged
        # (the SQL that stores them is logged, redacted: a secret is stored readable, to sign)
        assert WebhookAttempt.objects.filter(succeeded=True).exists()
        logged = service_log.getvalue()
        # the service writes JSON lines (livecommerce/logs.py); read their messages
        messages = "\n".join(
            json.loads(line)["message"] for line in logged.splitlines() if line.startswith("{")
        )
        assert 'INSERT INTO "partners_webhookendpoint"' in messages
        assert "whsec_[redacted]" in logged
        for secret in (created["secret"], rotated["secret"]):
            assert secret.removeprefix("whsec_") not in logged


class TestAdmin:
    @pytest.fixture
    def admin_client(self) -> Client:
        user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
        client = Client()
        client.force_login(user)
        return client

    def test_the_admin_never_shows_a_keys_hash_or_a_webhook_secret(self, admin_client, settings):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
        partner = factories.HostAppFactory()
        api_key, raw = APIKey.objects.create_key(name="prod", partner=partner)
        host = KeyedClient(raw)
        endpoint_id = host.post(
            "/api/v1/webhook-endpoints",
            {"url": "http://127.0.0.1:9/hooks", "events": ["*"]},
            format="json",
        ).json()["id"]
        host.post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret", {}, format="json")
        endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
        assert endpoint.secret and endpoint.previous_secret

        pages = {
            "key list": "/admin/partners/apikey/",
            "key page": f"/admin/partners/apikey/{api_key.pk}/change/",
            "endpoint list": "/admin/partners/webhookendpoint/",
            "endpoint page": f"/admin/partners/webhookendpoint/{endpoint_id}/change/",
        }
        for name, url in pages.items():
            response = admin_client.get(url)
            html = response.content.decode()

            assert response.status_code == 200, name
            assert api_key.prefix in html or endpoint_id in html, name  # the page shows the row
            for secret in (
                api_key.hashed_key,
                api_key.hashed_key.split("$")[-1],
                raw.split(".", 1)[1],
                endpoint.secret.removeprefix("whsec_"),
                endpoint.previous_secret.removeprefix("whsec_"),
            ):
                assert secret not in html, name


class TestRequestLimits:
    def test_a_body_over_the_limit_is_413_and_one_at_the_limit_is_read(self, ops):
        limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        name = "x" * limit  # the JSON around it takes the body over the limit
        at_limit = json.dumps({"kind": "creator", "name": ""})
        at_limit = at_limit.replace('""', '"' + "y" * (limit - len(at_limit)) + '"')
        assert len(at_limit.encode()) == limit

        over = ops.post(
            "/api/v1/partners",
            json.dumps({"kind": "creator", "name": name}),
            content_type="application/json",
        )
        just_fits = ops.post("/api/v1/partners", at_limit, content_type="application/json")

        assert over.status_code == 413
        assert over.json()["errors"][0]["code"] == "request_too_large"
        assert just_fits.status_code == 400  # read and validated: the name is too long
        assert just_fits.json()["errors"][0]["attr"] == "name"

    @pytest.mark.parametrize(
        "body",
        ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000],
        ids=["arrays", "objects"],
    )
    def test_json_nested_too_deeply_is_a_400_not_a_500(self, ops, body):
        response = ops.post("/api/v1/partners", body, content_type="application/json")

        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "parse_error"


@pytest.fixture
def throttled():
    """A rate of 3 requests a minute per key, on a cache emptied before and after."""
    cache.clear()
    rest = {**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/min"}}
    with override_settings(REST_FRAMEWORK=rest):
        yield
    cache.clear()


class TestThrottling:
    def test_the_fourth_request_in_a_minute_is_429_for_that_key_only(self, throttled, ops):
        other = client_for(role="ops")

        statuses = [ops.get("/api/v1/me").status_code for _ in range(4)]
        throttled_response = ops.get("/api/v1/me")

        assert statuses == [200, 200, 200, 429]
        assert throttled_response.json() == {
            "type": "client_error",
            "errors": [
                {
                    "code": "throttled",
                    "detail": throttled_response.json()["errors"][0]["detail"],
                    "attr": None,
                }
            ],
        }
        assert 0 < int(throttled_response["Retry-After"]) <= 60
        assert other.get("/api/v1/me").status_code == 200

    def test_a_throttled_post_is_not_kept_for_its_idempotency_key(self, throttled, ops):
        for _ in range(3):
            ops.get("/api/v1/me")

        response = ops.post(
            "/api/v1/partners",
            {"kind": "creator", "name": "Later"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="after-the-wait",
        )

        assert response.status_code == 429
        assert not IdempotencyRecord.objects.filter(key="after-the-wait").exists()


class TestHeaders:
    EXPECTED = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }

    def test_every_kind_of_answer_carries_the_security_headers(self, ops, api_client):
        answers = {
            "200": ops.get("/api/v1/me"),
            "401": api_client.get("/api/v1/me"),
            "404": ops.get("/api/v1/no-such-thing"),
            "400": ops.post("/api/v1/partners", "{not json", content_type="application/json"),
            "health": api_client.get("/healthz"),
            "schema": api_client.get("/api/schema/"),
        }
        for name, response in answers.items():
            for header, value in self.EXPECTED.items():
                assert response.get(header) == value, (name, header)
            # without TLS configured, no HSTS (it would pin browsers to https)
            assert "Strict-Transport-Security" not in response, name

    @override_settings(
        SECURE_SSL_REDIRECT=True,
        SECURE_HSTS_SECONDS=31_536_000,
        SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
        SECURE_HSTS_PRELOAD=True,
    )
    def test_with_tls_configured_http_is_redirected_and_https_gets_hsts(self, ops):
        plain = ops.get("/api/v1/me")
        behind_tls = ops.get("/api/v1/me", HTTP_X_FORWARDED_PROTO="https")

        assert plain.status_code == 301
        assert plain["Location"] == "https://testserver/api/v1/me"
        assert behind_tls.status_code == 200
        assert behind_tls["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains; preload"
        )


PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "api.live-commerce.example",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SETTINGS_MODULE": "livecommerce.settings",
}


def _check_deploy(env: dict) -> subprocess.CompletedProcess:
    clean_env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={**clean_env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_for_the_production_settings():
    result = _check_deploy(PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_would_catch_a_missing_https_redirect():
    # the same, without SECURE_SSL_REDIRECT: the check is real and reports it
    result = _check_deploy({**PRODUCTION_ENV, "SECURE_SSL_REDIRECT": "false"})

    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


class TestAuditTrail:
    def test_who_changed_partners_keys_and_plans_is_recorded_and_staff_read_it(
        self, ops, finance, host_client
    ):
        ops_key_id = ops.get("/api/v1/me").json()["api_key"]["id"]
        # given ops onboards a brand, suspends it, issues and revokes a key, enrolls the brand
        # with an invite-only host app, and sets up and edits a commission plan
        brand = ops.post("/api/v1/partners", {"kind": "brand", "name": "Glow"}).json()["id"]
        ops.patch(f"/api/v1/partners/{brand}", {"status": "suspended"}, format="json")
        key = ops.post(f"/api/v1/partners/{brand}/api-keys", {"name": "prod"}).json()
        ops.delete(f"/api/v1/api-keys/{key['id']}")
        host = ops.post(
            "/api/v1/partners", {"kind": "host_app", "name": "Tok", "brand_access": "invite_only"}
        ).json()["id"]
        ops.post(f"/api/v1/partners/{host}/enrollments", {"brand": brand})
        plan = ops.post(
            "/api/v1/commission-plans", {"platform_rate_bps": 800}, format="json"
        ).json()["id"]
        ops.patch(f"/api/v1/commission-plans/{plan}", {"platform_rate_bps": 750}, format="json")
        # and a refused edit changes nothing, so it records nothing
        refused = ops.patch(
            f"/api/v1/commission-plans/{plan}", {"creator_rate_bps": 9999}, format="json"
        )
        assert refused.status_code == 400

        # when finance reads the trail of what was done with ops' key
        response = finance.get(f"/api/v1/audit-log?api_key={ops_key_id}")

        # then every change is there, newest first, with the key and role that made it
        assert response.status_code == 200
        entries = response.json()["results"]
        assert [(e["action"], e["object_id"]) for e in reversed(entries)] == [
            ("partner.created", brand),
            ("partner.updated", brand),
            ("api_key.created", key["id"]),
            ("api_key.revoked", key["id"]),
            ("partner.created", host),
            ("partner.brand_enrolled", host),
            ("commission_plan.created", plan),
            ("commission_plan.updated", plan),
        ]
        assert {(e["api_key"], e["actor"]) for e in entries} == {(ops_key_id, "staff:ops")}
        by_action = {e["action"]: e for e in entries}
        assert by_action["partner.updated"]["changes"] == {"status": ["active", "suspended"]}
        assert by_action["commission_plan.updated"]["changes"] == {"platform_rate_bps": [800, 750]}
        assert by_action["api_key.created"]["changes"]["prefix"] == [None, key["prefix"]]
        assert key["key"].split(".", 1)[1] not in response.content.decode()
        # filtered by object, and by the key that made the change
        about_plan = finance.get(f"/api/v1/audit-log?object_id={plan}").json()["results"]
        assert [e["action"] for e in about_plan] == [
            "commission_plan.updated",
            "commission_plan.created",
        ]
        # the keys the test fixtures made directly (as create_staff_key does) are the system's
        everything = finance.get("/api/v1/audit-log?action=api_key.created").json()["results"]
        assert {e["actor"] for e in everything} == {"system", "staff:ops"}
        # and partners may not read it
        assert host_client.get("/api/v1/audit-log").status_code == 403

    def test_a_key_made_by_the_bootstrap_command_is_recorded_as_the_system(self):
        call_command("create_staff_key", role="ops", name="Olivia", stdout=io.StringIO())

        entry = AuditEntry.objects.get(action="api_key.created")
        assert entry.actor == "system"
        assert entry.api_key == ""
        assert entry.changes["role"] == [None, "ops"]
