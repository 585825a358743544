"""The published OpenAPI schema: valid OpenAPI 3, every contract path, docs render in a browser,
Redocly's recommended rules pass, and what integrators rely on is in it (callers, tags, headers,
bounds, an example of every event type).

The checks read whatever the schema contains, so an endpoint added later is held to the same.
"""

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from django.test import Client
from openapi_spec_validator import validate

from livecommerce.errors import ERROR_CODES
from partners.webhooks.choices import EVENT_TYPES
from partners.webhooks.examples import EVENT_EXAMPLES, event_type_component

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
    "/api/v1/webhook-endpoints/{id}/test": {"post"},
    "/api/v1/webhook-endpoints/{id}/replay": {"post"},
    "/api/v1/reports/chart-links": {"post"},
}
# Redocly CLI, pinned: `npx --yes` fetches it from the npm registry the first time.
REDOCLY = "@redocly/cli@2.77.0"
MAX_REDOCLY_WARNINGS = 10


@pytest.fixture(scope="module")
def schema(django_db_blocker):
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


@pytest.mark.slow
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


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield f"{method.upper()} {path}", method, operation


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npx") is None, reason="Node's npx is not installed")
def test_redocly_recommended_rules_find_no_error(tmp_path, django_db_blocker):
    with django_db_blocker.unblock():
        served = Client().get("/api/schema/")
    path = tmp_path / "schema.yaml"
    path.write_bytes(served.content)

    result = subprocess.run(
        ["npx", "--yes", REDOCLY, "lint", "--format=json", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )

    report = json.loads(result.stdout[result.stdout.index("{") :])
    problems = [
        f"{p['severity']} {p['ruleId']}: {p['message']} at {p['location'][0]['pointer']}"
        for p in report["problems"]
    ]
    errors = [p for p in problems if p.startswith("error")]
    assert not errors, "\n".join(errors)
    assert len(problems) <= MAX_REDOCLY_WARNINGS, "\n".join(problems)


def test_no_hash_named_enum_reaches_a_client(schema):
    hashed = [n for n in schema["components"]["schemas"] if re.search(r"[0-9a-f]{3}Enum$", n)]

    assert not hashed, f"name these in ENUM_NAME_OVERRIDES or inline them: {hashed}"


def test_tags_are_described_and_ordered_as_a_host_app_meets_them(schema):
    tags = [tag["name"] for tag in schema["tags"]]
    used = {t for _, _, op in _operations(schema) for t in op.get("tags", [])}

    assert used <= set(tags), f"tags without a description: {used - set(tags)}"
    assert all(tag.get("description") for tag in schema["tags"])
    assert tags[:4] == ["directory", "catalog", "live sessions", "orders"]
    assert tags.index("partners") > tags.index("reports")  # ops onboarding after
    # each path is placed by the tag of its first operation (GET /partners is the directory;
    # POST /partners, on the same path, is ops onboarding)
    first_tags = [
        next(op for m, op in ops.items() if m in {"get", "post", "patch", "delete"})["tags"][0]
        for ops in schema["paths"].values()
    ]
    assert first_tags == sorted(first_tags, key=tags.index), "paths follow the tag order"


def test_every_operation_says_who_may_call_it(schema):
    for where, _, operation in _operations(schema):
        assert operation.get("x-callers"), where
        assert "**Who may call:**" in operation.get("description", ""), where


def test_servers_and_every_post_documents_idempotency_key_limits(schema):
    assert schema["servers"] and schema["servers"][0]["url"]
    for where, method, operation in _operations(schema):
        if method != "post":
            continue
        (header,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert header["in"] == "header", where
        assert (header["schema"]["minLength"], header["schema"]["maxLength"]) == (1, 255)


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _list_item(schema, operation):
    content = operation["responses"].get("200", {}).get("content", {})
    body = content.get("application/json", {}).get("schema")
    page = _resolve(schema, body) if body else {}
    if "results" not in page.get("properties", {}):
        return None
    return _resolve(schema, page["properties"]["results"]["items"])


def test_every_list_is_a_bounded_page_filterable_by_created(schema):
    lists = 0
    for where, method, operation in _operations(schema):
        if method != "get" or (item := _list_item(schema, operation)) is None:
            continue
        lists += 1
        params = {p["name"]: p for p in operation.get("parameters", [])}
        bounds = params["page_size"]["schema"]
        assert (bounds["minimum"], bounds["maximum"]) == (1, 200), where
        assert bounds.get("nullable") is not True, where
        if "created" in item.get("properties", {}) or "oneOf" in item:
            assert {"created_after", "created_before"} <= set(params), where
    assert lists > 15
    for path in ("/api/v1/partners/{id}/enrollments", "/api/v1/partners/{id}/api-keys"):
        assert _list_item(schema, schema["paths"][path]["get"]) is not None, path


def test_request_bodies_refuse_unknown_fields_and_say_so(schema):
    for where, _method, operation in _operations(schema):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if not body:
            continue
        request = _resolve(schema, body["schema"])
        if "properties" in request:
            assert request.get("additionalProperties") is False, where
    assert "UnknownFieldError" in schema["components"]["schemas"]


def test_every_event_type_has_a_documented_example(schema):
    missing = [t for t in EVENT_TYPES if t not in EVENT_EXAMPLES]
    assert not missing, f"add an example to partners/webhooks/examples.py for {missing}"
    callbacks = schema["paths"]["/api/v1/webhook-endpoints"]["post"]["callbacks"]
    assert set(callbacks) == set(EVENT_TYPES)
    for event_type in EVENT_TYPES:
        component = schema["components"]["schemas"][event_type_component(event_type)]
        assert component["example"]["type"] == event_type
        assert component["example"]["data"] == EVENT_EXAMPLES[event_type]
        assert component["properties"]["type"]["enum"] == [event_type]


def test_the_contracts_error_codes_are_documented(schema):
    text = json.dumps(schema)
    for code in ("unknown_field", "invalid_page_size", "webhook_endpoint_disabled"):
        assert code in text, code


def test_every_api_operation_documents_503_with_retry_after(schema):
    # the service answers 503 service_unavailable on any operation while the database or broker
    # is away (tests/trust/test_unavailable.py); the schema must say so for each one
    unavailable = schema["components"]["responses"]["ServiceUnavailable"]
    missing = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in operations.items()
        if method != "parameters" and "503" not in operation["responses"]
    ]

    assert not missing, missing
    assert "Retry-After" in unavailable["headers"]
    example = unavailable["content"]["application/json"]["example"]
    assert example["errors"][0]["code"] == "service_unavailable"


def test_the_integrators_guide_lists_every_error_code():
    # integrators branch on `code`: the guide's table names every code the service has
    guide = (Path(__file__).resolve().parent.parent / "docs" / "integrators.md").read_text()
    rows = {line.split("`")[1] for line in guide.splitlines() if line.startswith("| `")}

    assert not set(ERROR_CODES) - rows, sorted(set(ERROR_CODES) - rows)
