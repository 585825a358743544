"""Finding 6 of issue 18: unsafe defaults. DEBUG was on and the development key in use when
the environment said nothing, /metrics was public, answers showing a secret once could be
cached, the HTML pages had no Content-Security-Policy, webhook URLs could name any port,
fec0::/10 counted as public, and the URL guard's errors echoed internal DNS answers."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from partners.webhooks import services
from tests.conftest import client_for
from tests.webhooks.helpers import make_endpoint, publish

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, **env_changes) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "livecommerce.settings"}
    for name in ("DEBUG", "SECRET_KEY"):
        env.pop(name, None)
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


class TestDebugAndKey:
    def test_with_nothing_set_the_service_refuses_to_serve(self):
        result = _python("import livecommerce.wsgi")
        assert result.returncode != 0
        assert "SECRET_KEY is the development key" in result.stderr

    def test_with_nothing_set_debug_is_off_and_commands_still_run(self):
        result = _python(
            "import django; django.setup(); from django.conf import settings; "
            "print('DEBUG', settings.DEBUG)"
        )
        assert result.returncode == 0, result.stderr
        assert "DEBUG False" in result.stdout

    def test_debug_true_said_explicitly_serves_with_the_development_key(self):
        result = _python(
            "import livecommerce.wsgi; from django.conf import settings; print(settings.DEBUG)",
            DEBUG="true",
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "True"

    def test_a_real_key_serves_with_debug_off(self):
        result = _python(
            "import livecommerce.wsgi; from django.conf import settings; print(settings.DEBUG)",
            SECRET_KEY="a-real-deployment-key-0123456789-abcdefghijklmnop",
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "False"

    def test_the_image_runs_with_debug_off(self):
        dockerfile = (REPO / "Dockerfile").read_text()
        assert "DEBUG=false" in dockerfile.split("CMD", 1)[0]


@pytest.mark.django_db
class TestMetrics:
    def test_metrics_are_not_public(self, api_client):
        response = api_client.get("/metrics")
        assert response.status_code == 404
        assert b"django_http" not in response.content

    def test_a_scraper_with_the_token_reads_them(self, api_client, settings):
        settings.METRICS_TOKEN = "s3cret-scrape"
        assert api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
        response = api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape")
        assert response.status_code == 200
        assert b"django_http_requests" in response.content

    def test_an_allowed_network_reads_them(self, api_client, settings):
        settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
        assert api_client.get("/metrics").status_code == 404  # the test client is 127.0.0.1
        settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
        assert api_client.get("/metrics").status_code == 200


@pytest.mark.django_db
class TestSecretsAreNotCached:
    def test_a_new_api_key_is_no_store(self, ops, host_app):
        response = ops.post(f"/api/v1/partners/{host_app.pk}/api-keys", {}, format="json")
        assert response.status_code == 201
        assert response.json()["key"]
        assert response["Cache-Control"] == "no-store"

    def test_a_webhook_secret_is_no_store_at_creation_and_rotation(self, settings, host_app):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        client = client_for(partner=host_app)
        created = client.post(
            "/api/v1/webhook-endpoints",
            {"url": "https://93.184.216.34/hooks", "events": ["*"]},
            format="json",
        )
        assert created.status_code == 201
        assert created.json()["secret"].startswith("whsec_")
        assert created["Cache-Control"] == "no-store"
        rotated = client.post(f"/api/v1/webhook-endpoints/{created.json()['id']}/rotate-secret")
        assert rotated.status_code == 200
        assert rotated["Cache-Control"] == "no-store"


@pytest.mark.django_db
class TestContentSecurityPolicy:
    @pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
    def test_the_html_pages_carry_a_csp_and_no_inline_script(self, api_client, path):
        response = api_client.get(path)
        assert response.status_code == 200
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp
        html = response.content.decode()
        # every <script> loads a file of this service: CSP allows no inline script
        assert "<script>" not in html.replace(" ", "")

    def test_json_answers_need_no_csp(self, api_client):
        assert "Content-Security-Policy" not in api_client.get("/healthz")


@pytest.mark.django_db
class TestWebhookURLGuard:
    @pytest.fixture(autouse=True)
    def _production_rules(self, settings):
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    @pytest.mark.parametrize(
        "url",
        [
            "https://1.1.1.1:6379/",  # a public address, Redis's port
            "https://93.184.216.34:22/hooks",
            "https://93.184.216.34:80/hooks",
            "https://[fec0::1]/hooks",  # site-local (deprecated) is not public
            "https://[fec0:1234::5]:443/hooks",
        ],
    )
    def test_other_ports_and_site_local_addresses_are_refused(self, host_app, url):
        response = client_for(partner=host_app).post(
            "/api/v1/webhook-endpoints", {"url": url, "events": ["*"]}, format="json"
        )
        assert response.status_code == 400, response.content
        assert response.json()["errors"][0]["code"] == "webhook_url_not_allowed"

    def test_port_443_said_explicitly_is_fine_and_an_allow_list_opens_others(
        self, host_app, settings
    ):
        client = client_for(partner=host_app)
        body = {"url": "https://93.184.216.34:443/hooks", "events": ["*"]}
        assert client.post("/api/v1/webhook-endpoints", body, format="json").status_code == 201
        settings.WEBHOOK_ALLOWED_PORTS = [443, 8443]
        body = {"url": "https://93.184.216.34:8443/hooks", "events": ["*"]}
        assert client.post("/api/v1/webhook-endpoints", body, format="json").status_code == 201

    def test_the_guard_names_no_address_it_resolved(self, host_app):
        response = client_for(partner=host_app).post(
            "/api/v1/webhook-endpoints",
            {"url": "https://localhost/hooks", "events": ["*"]},
            format="json",
        )
        detail = response.json()["errors"][0]["detail"]
        assert response.status_code == 400
        assert "127.0.0.1" not in detail and "::1" not in detail

    def test_a_send_to_a_refused_address_records_no_address_either(self, host_app, settings):
        endpoint = make_endpoint(host_app, "https://localhost/hooks")
        event = publish(partners=[host_app])
        delivery = endpoint.deliveries.get(event=event)
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.last_error.startswith("URL not allowed")
        assert "127.0.0.1" not in delivery.last_error
