"""The published OpenAPI schema: valid OpenAPI 3, every contract path, docs render in a browser."""

import json
import shutil
import subprocess
import tempfile

import pytest
import yaml
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

# Every path of the contract (shared/API.md), as the schema spells it.
CONTRACT_PATHS = {
    "/api/v1/partners": {"get", "post"},
    "/api/v1/partners/{id}": {"get", "patch"},
    "/api/v1/partners/{id}/enrollments": {"get", "post", "delete"},
    "/api/v1/partners/{id}/api-keys": {"get", "post"},
    "/api/v1/api-keys/{id}": {"delete"},
    "/api/v1/me": {"get"},
    "/api/v1/commission-plans": {"get", "post"},
    "/api/v1/commission-plans/{id}": {"get", "patch"},
    "/api/v1/products": {"get", "post"},
    "/api/v1/products/{id}": {"get", "patch"},
    "/api/v1/live-sessions": {"get", "post"},
    "/api/v1/live-sessions/{id}": {"get"},
    "/api/v1/live-sessions/{id}/start": {"post"},
    "/api/v1/live-sessions/{id}/end": {"post"},
    "/api/v1/orders": {"get", "post"},
    "/api/v1/orders/{id}": {"get"},
    "/api/v1/orders/{id}/pay": {"post"},
    "/api/v1/orders/{id}/cancel": {"post"},
    "/api/v1/orders/{id}/accept": {"post"},
    "/api/v1/orders/{id}/ship": {"post"},
    "/api/v1/orders/{id}/deliver": {"post"},
    "/api/v1/orders/{id}/refunds": {"post"},
    "/api/v1/orders/{id}/events": {"get"},
    "/api/v1/orders/{id}/breakdown": {"get"},
    "/api/v1/ledger/entries": {"get"},
    "/api/v1/balances": {"get"},
    "/api/v1/settlements/run": {"post"},
    "/api/v1/settlements": {"get"},
    "/api/v1/settlements/{id}": {"get"},
    "/api/v1/settlements/{id}/lines": {"get"},
    "/api/v1/settlements/{id}/mark-paid": {"post"},
    "/api/v1/settlements/{id}/mark-failed": {"post"},
    "/api/v1/reports/commissions": {"get"},
    "/api/v1/webhook-endpoints": {"get", "post"},
    "/api/v1/webhook-endpoints/{id}": {"get", "patch"},
    "/api/v1/webhook-endpoints/{id}/rotate-secret": {"post"},
    "/api/v1/webhook-endpoints/{id}/deliveries": {"get"},
    "/api/v1/webhook-deliveries/{id}/retry": {"post"},
    "/api/v1/events": {"get"},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_is_valid_openapi_3(schema):
    validate(schema)

    assert schema["openapi"].startswith("3.")


def test_schema_lists_every_contract_path_and_method(schema):
    missing = {
        f"{method.upper()} {path}"
        for path, methods in CONTRACT_PATHS.items()
        for method in methods
        if method not in schema["paths"].get(path, {})
    }

    assert not missing, f"contract paths missing from the schema: {sorted(missing)}"


def test_every_operation_has_a_summary_and_error_responses(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), f"{where} has no summary"
            assert any(code.startswith("4") for code in operation["responses"]), where
            if method == "post":
                names = [p["name"] for p in operation.get("parameters", [])]
                assert "Idempotency-Key" in names, where
                assert {"409", "422"} <= set(operation["responses"]), where


def test_bearer_auth_is_declared(schema):
    schemes = schema["components"]["securitySchemes"]

    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
@pytest.mark.parametrize(
    ("path", "expect"),
    [("/api/docs/", "Onboard a partner"), ("/api/redoc/", "Onboard a partner")],
)
def test_docs_render_in_a_real_browser_without_network(live_server, path, expect):
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                live_server.url + path,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    # The DOM after the page's own scripts ran: the UI rendered the operations from the schema.
    assert expect in result.stdout, result.stderr[-2000:]


def test_schema_json_is_served_too(client):
    response = client.get("/api/schema/?format=json")

    assert response.status_code == 200
    assert "paths" in json.loads(response.content)
