"""The isolation matrix: every endpoint x every role x an object of its own and another's.

The operations come from the schema the service publishes (and the schema is checked against
the URL patterns), so a new endpoint is a new row here, and it fails until ``ACCESS`` says who
may call it. For each operation, each caller (ops, finance, and a host app, a fulfillment
partner, a brand and a creator of tenant ``a``, and no key at all) must get:

- no key: ``401``;
- a role the operation does not admit: ``403`` (whatever the object: nothing leaks);
- an admitted partner, on an object of tenant ``b`` (another partner's), or on a webhook
  endpoint, delivery or settlement of another partner of its own tenant: ``404``, never 200;
- an admitted caller on its own object (staff: on any): an answer about the request itself
  (2xx, or 400/409/422 for a body or a state it refuses), never 401/403/404;
- a list: ``200`` with nothing of tenant ``b`` in it (nor another partner's endpoints,
  deliveries or settlements), also when its filters name tenant ``b``'s partners and objects;
- never a 5xx.

Every request runs in a savepoint that is rolled back afterwards, so one world (built once,
``tests.security.world``) serves every row and each answer depends on the row alone.
"""

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from partners.webhooks.models import WebhookDelivery
from partners.webhooks.services import webhook_delivery_attempt
from tests.security.conftest import RECEIVED
from tests.security.world import (
    BUYER_EMAIL,
    BUYER_STREET,
    PARTNER_ROLES,
    PAYMENT_REFERENCE_PREFIX,
    World,
    build_world,
)

ROLES = ("ops", "finance", *PARTNER_ROLES)
CALLERS = (*ROLES, "no key")
ALL_PARTNERS = frozenset(PARTNER_ROLES)
PAYEES = frozenset({"fulfillment", "brand", "creator"})
OPS = frozenset({"ops"})
FINANCE = frozenset({"finance"})
STAFF = OPS | FINANCE


@dataclass(frozen=True)
class Access:
    """Who an operation admits. ``producer_only``: of the admitted partners, only the one that
    made the object may act on it (others, who may see it, are refused with 403)."""

    staff: frozenset[str] = frozenset()
    partners: frozenset[str] = frozenset()
    producer_only: bool = False
    refused_with: int = 403  # the live feed answers 404 to anyone it is not for (contract)

    def admits(self, role: str) -> bool:
        return role in self.staff or role in self.partners


def _a(staff=frozenset(), partners=frozenset(), **kwargs) -> Access:
    return Access(frozenset(staff), frozenset(partners), **kwargs)


# Who may call what (API.md, and the permissions each view declares). Every operation of the
# schema must be here, and nothing else.
ACCESS: dict[str, Access] = {
    "GET /api/v1/me": _a(STAFF, ALL_PARTNERS),
    # partners and keys: ops writes, staff read; partners read the directory of who they deal with
    "GET /api/v1/partners": _a(STAFF, ALL_PARTNERS),
    "POST /api/v1/partners": _a(OPS),
    "GET /api/v1/partners/{id}": _a(STAFF, ALL_PARTNERS),
    "PATCH /api/v1/partners/{id}": _a(OPS),
    "GET /api/v1/partners/{id}/api-keys": _a(OPS),
    "POST /api/v1/partners/{id}/api-keys": _a(OPS),
    "GET /api/v1/partners/{id}/enrollments": _a(STAFF),
    "POST /api/v1/partners/{id}/enrollments": _a(OPS),
    "DELETE /api/v1/partners/{id}/enrollments": _a(OPS),
    "GET /api/v1/api-keys/{id}": _a(OPS),
    "DELETE /api/v1/api-keys/{id}": _a(OPS),
    # commission plans: ops writes, finance reads
    "GET /api/v1/commission-plans": _a(STAFF),
    "POST /api/v1/commission-plans": _a(OPS),
    "GET /api/v1/commission-plans/{id}": _a(STAFF),
    "PATCH /api/v1/commission-plans/{id}": _a(OPS),
    # catalog: kept by the brand or its fulfillment partner, read by who may sell it
    "GET /api/v1/products": _a(STAFF, {"host_app", "fulfillment", "brand"}),
    "POST /api/v1/products": _a(partners={"fulfillment", "brand"}),
    "GET /api/v1/products/{id}": _a(STAFF, {"host_app", "fulfillment", "brand"}),
    "PATCH /api/v1/products/{id}": _a(partners={"fulfillment", "brand"}),
    # live sessions: host apps and fulfillment partners produce them, everyone involved reads
    "GET /api/v1/live-sessions": _a(STAFF, ALL_PARTNERS),
    "POST /api/v1/live-sessions": _a(partners={"host_app", "fulfillment"}),
    "GET /api/v1/live-sessions/{id}": _a(STAFF, ALL_PARTNERS),
    "POST /api/v1/live-sessions/{id}/start": _a(
        partners={"host_app", "fulfillment"}, producer_only=True
    ),
    "POST /api/v1/live-sessions/{id}/end": _a(
        partners={"host_app", "fulfillment"}, producer_only=True
    ),
    "PATCH /api/v1/live-sessions/{id}": _a(
        partners={"host_app", "fulfillment"}, producer_only=True
    ),
    # the live feed: its host apps, its fulfillment partner and staff; 404 to anyone else
    "GET /api/v1/live-sessions/{id}/feed": _a(STAFF, {"host_app", "fulfillment"}, refused_with=404),
    # orders: the status table's "by" column
    "GET /api/v1/orders": _a(STAFF, ALL_PARTNERS),
    "POST /api/v1/orders": _a(partners={"host_app"}),
    "GET /api/v1/orders/{id}": _a(STAFF, ALL_PARTNERS),
    "POST /api/v1/orders/{id}/pay": _a(partners={"host_app"}),
    "POST /api/v1/orders/{id}/cancel": _a(partners={"host_app", "fulfillment"}),
    "POST /api/v1/orders/{id}/accept": _a(partners={"fulfillment"}),
    "POST /api/v1/orders/{id}/ship": _a(partners={"fulfillment"}),
    "POST /api/v1/orders/{id}/deliver": _a(partners={"fulfillment"}),
    "GET /api/v1/orders/{id}/refunds": _a(STAFF, ALL_PARTNERS),
    "POST /api/v1/orders/{id}/refunds": _a(STAFF, {"host_app", "fulfillment"}),
    "GET /api/v1/orders/{id}/events": _a(STAFF, ALL_PARTNERS),
    "GET /api/v1/orders/{id}/breakdown": _a(STAFF, ALL_PARTNERS),
    # ledger: finance everything, a partner its own accounts
    "GET /api/v1/ledger/entries": _a(FINANCE, ALL_PARTNERS),
    "GET /api/v1/balances": _a(FINANCE, ALL_PARTNERS),
    # debts: finance adjusts; a payee reads its own statement
    "GET /api/v1/adjustments": _a(FINANCE),
    "POST /api/v1/adjustments": _a(FINANCE),
    "GET /api/v1/statements": _a(FINANCE, PAYEES),
    # settlements: finance; a payee reads its own
    "GET /api/v1/settlements": _a(FINANCE, PAYEES),
    "GET /api/v1/settlements/{id}": _a(FINANCE, PAYEES),
    "GET /api/v1/settlements/{id}/lines": _a(FINANCE, PAYEES),
    "POST /api/v1/settlements/run": _a(FINANCE),
    "POST /api/v1/settlements/{id}/mark-paid": _a(FINANCE),
    "POST /api/v1/settlements/{id}/mark-failed": _a(FINANCE),
    "GET /api/v1/settlement-runs": _a(FINANCE),
    "GET /api/v1/settlement-runs/{id}": _a(FINANCE),
    # reports: finance
    "GET /api/v1/reports/commissions": _a(FINANCE),
    "GET /api/v1/reports/reconciliation": _a(FINANCE),
    "POST /api/v1/reports/chart-links": _a(FINANCE),
    # webhooks: each partner its own; ops reads every endpoint and delivery and may retry
    "GET /api/v1/webhook-endpoints": _a(OPS, ALL_PARTNERS),
    "POST /api/v1/webhook-endpoints": _a(partners=ALL_PARTNERS),
    "GET /api/v1/webhook-endpoints/{id}": _a(OPS, ALL_PARTNERS),
    "PATCH /api/v1/webhook-endpoints/{id}": _a(partners=ALL_PARTNERS),
    "DELETE /api/v1/webhook-endpoints/{id}": _a(partners=ALL_PARTNERS),
    "GET /api/v1/webhook-endpoints/{id}/deliveries": _a(OPS, ALL_PARTNERS),
    "POST /api/v1/webhook-endpoints/{id}/rotate-secret": _a(partners=ALL_PARTNERS),
    "POST /api/v1/webhook-endpoints/{id}/test": _a(partners=ALL_PARTNERS),
    "POST /api/v1/webhook-endpoints/{id}/replay": _a(partners=ALL_PARTNERS),
    "GET /api/v1/webhook-deliveries/{id}": _a(OPS, ALL_PARTNERS),
    "POST /api/v1/webhook-deliveries/{id}/retry": _a(OPS, ALL_PARTNERS),
    # the event feed
    "GET /api/v1/events": _a(STAFF, ALL_PARTNERS),
    "GET /api/v1/events/{id}": _a(STAFF, ALL_PARTNERS),
    # the audit trail: staff
    "GET /api/v1/audit-log": _a(STAFF),
    "GET /api/v1/audit-log/{id}": _a(STAFF),
}

# API URLs that are not part of the partner API's schema, and why.
NOT_IN_SCHEMA = {
    # A finance chart page for a browser: Django admin login, not API keys (tested below).
    "/api/v1/reports/commissions/chart",
}

OK_FOR_OWN = {200, 201, 202, 204, 400, 409, 422}


@cache
def published_operations() -> dict[str, dict]:
    """``"METHOD /path"`` -> the operation, from the schema the service publishes."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def _routes(patterns, prefix: str = "") -> set[str]:
    found = set()
    for pattern in patterns:
        route = str(pattern.pattern).lstrip("^").rstrip("$").replace("\\Z", "")
        if isinstance(pattern, URLResolver):
            found |= _routes(pattern.url_patterns, prefix + route)
        elif isinstance(pattern, URLPattern):
            found.add(prefix + route)
    return found


def _api_url_paths() -> set[str]:
    """Every routed API path, with path parameters written the schema's way (``{id}``)."""
    return {
        "/" + re.sub(r"<(?:\w+:)?pk>|\(\?P<pk>[^)]*\)", "{id}", route)
        for route in _routes(get_resolver().url_patterns)
        if route.startswith("api/v1/")
    }


def test_every_routed_api_url_is_in_the_schema_or_listed_apart():
    schema_paths = {key.split(" ", 1)[1] for key in published_operations()}
    routed = _api_url_paths()

    assert routed - schema_paths == NOT_IN_SCHEMA
    assert schema_paths <= routed


def test_the_access_table_names_every_published_operation_and_nothing_else():
    published = set(published_operations())

    assert not published - set(ACCESS), "operations missing from ACCESS"
    assert not set(ACCESS) - published, "ACCESS names operations the schema does not publish"


# --- The world and the calls --------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, webhook_receiver):
    """One world for the module, in a transaction rolled back at the end of it."""
    with (
        django_db_blocker.unblock(),
        override_settings(WEBHOOK_ALLOW_PRIVATE_URLS=True),
        transaction.atomic(),
    ):
        built = build_world(receiver_url=webhook_receiver)
        yield built
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def callers(world) -> dict[str, APIClient]:
    tenant = world.tenants["a"]
    keys = {**world.staff_keys, **{role: tenant.keys[role] for role in PARTNER_ROLES}}
    clients = {}
    for role, key in keys.items():
        clients[role] = APIClient()
        clients[role].credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    clients["no key"] = APIClient()
    return clients


def _object_id(world: World, tenant_name: str, resource: str, role: str) -> str:
    """The object of ``resource`` that ``role`` has in ``tenant_name`` (a brand's for staff)."""
    tenant = world.tenants[tenant_name]
    as_partner = role if role in PARTNER_ROLES else "brand"
    payee = as_partner if as_partner in PAYEES else "brand"
    return {
        # a partner the caller deals with (the directory): its own record for a host app
        "partners": tenant.partners[
            {"fulfillment": "brand", "brand": "fulfillment"}.get(as_partner, "host_app")
        ],
        "api-keys": tenant.spare_key_id,
        "commission-plans": world.plan,
        "products": tenant.product,
        "live-sessions": tenant.live_session,
        "orders": tenant.orders["paid"],
        "settlements": tenant.settlements[payee],
        "settlement-runs": world.settlement_run,
        "webhook-endpoints": tenant.endpoints[as_partner],
        "webhook-deliveries": tenant.deliveries[as_partner],
        "events": tenant.events[as_partner],
        "audit-log": world.audit_entry,
    }[resource]


# Objects of one partner alone: another partner of the same tenant must not reach them either.
PER_PARTNER_RESOURCES = {"webhook-endpoints", "webhook-deliveries", "settlements"}

# Objects that belong to no partner: every admitted caller reaches the same one.
SHARED_RESOURCES = {"commission-plans", "settlement-runs", "audit-log"}

# List filters that name a partner or an object, and tenant b's value for them.
FILTER_VALUES = {
    "partner": lambda b: b.partners["brand"],
    "host_app": lambda b: b.partners["host_app"],
    "brand": lambda b: b.partners["brand"],
    "creator": lambda b: b.partners["creator"],
    "fulfillment_partner": lambda b: b.partners["fulfillment"],
    "producer": lambda b: b.partners["host_app"],
    "live_session": lambda b: b.live_session,
    "order": lambda b: b.orders["paid"],
    "object_id": lambda b: b.orders["paid"],
    "endpoint": lambda b: b.endpoints["brand"],
}

# Required query parameters that name no object.
REQUIRED_QUERY = {
    "currency": lambda a: "USD",
    "date_from": lambda a: (date.today() - timedelta(days=30)).isoformat(),
    "date_to": lambda a: date.today().isoformat(),
    "group_by": lambda a: "brand",
}

# A body that gets past each input serializer (ids filled in per call), so a refusal is about
# who calls, not about the shape of the body.
BODIES = {
    "POST /api/v1/partners": lambda w, a: {"kind": "creator", "name": "New creator"},
    "PATCH /api/v1/partners/{id}": lambda w, a: {"name": "Renamed"},
    "POST /api/v1/partners/{id}/api-keys": lambda w, a: {"name": "another"},
    "POST /api/v1/partners/{id}/enrollments": lambda w, a: {"brand": a.partners["brand"]},
    "POST /api/v1/commission-plans": lambda w, a: {"platform_rate_bps": 700},
    "PATCH /api/v1/commission-plans/{id}": lambda w, a: {"name": "Renamed"},
    "POST /api/v1/products": lambda w, a: {
        "brand": a.partners["brand"],
        "sku": "NEW-1",
        "title": "New",
        "price": "5.00",
        "currency": "USD",
    },
    "PATCH /api/v1/products/{id}": lambda w, a: {"inventory": 7},
    "PATCH /api/v1/live-sessions/{id}": lambda w, a: {"live_prices": {a.product: "1.00"}},
    "POST /api/v1/live-sessions": lambda w, a: {
        "title": "Another show",
        "scheduled_start": "2030-01-01T12:00:00Z",
        "products": [a.product],
        "host_apps": [a.partners["host_app"]],
    },
    "POST /api/v1/orders": lambda w, a: {"lines": [{"product": a.product, "quantity": 1}]},
    "POST /api/v1/orders/{id}/pay": lambda w, a: {"amount": "1.00", "payment_reference": "p"},
    "POST /api/v1/orders/{id}/ship": lambda w, a: {"carrier": "UPS", "tracking_number": "1"},
    "POST /api/v1/orders/{id}/refunds": lambda w, a: {"amount": "1.00", "reason": "r"},
    "POST /api/v1/settlements/run": lambda w, a: {"period_end": "2026-01-01", "currency": "USD"},
    "POST /api/v1/adjustments": lambda w, a: {
        "partner": a.partners["creator"],
        "currency": "USD",
        "amount": "1.00",
        "kind": "credit",
        "reason": "goodwill",
    },
    "POST /api/v1/settlements/{id}/mark-paid": lambda w, a: {"payout_reference": "tr_1"},
    "POST /api/v1/settlements/{id}/mark-failed": lambda w, a: {"reason": "bounced"},
    "POST /api/v1/webhook-endpoints": lambda w, a: {
        "url": "https://127.0.0.1/hooks",
        "events": ["*"],
    },
    "PATCH /api/v1/webhook-endpoints/{id}": lambda w, a: {"description": "changed"},
    "POST /api/v1/webhook-endpoints/{id}/test": lambda w, a: {"type": "order.paid"},
    "POST /api/v1/webhook-endpoints/{id}/replay": lambda w, a: {"since": "2020-01-01T00:00:00Z"},
}


def _call(client: APIClient, method: str, path: str, body=None, query=None):
    """One request, rolled back afterwards whatever it did."""
    savepoint = transaction.savepoint()
    try:
        return getattr(client, method.lower())(path, body, format="json", QUERY_STRING=query or "")
    finally:
        transaction.savepoint_rollback(savepoint)


def _query(operation: dict, world: World, extra: dict | None = None) -> str:
    required = {
        p["name"]: p
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    }
    values = dict(extra or {})
    for name in required:
        value = REQUIRED_QUERY.get(name) or FILTER_VALUES[name]
        values.setdefault(name, value(world.tenants["a"]))
    return urlencode(values)


def _foreign_ids(world: World, caller: str) -> set[str]:
    """What a partner of tenant ``a`` must never see: anything of tenant ``b``, and the
    per-partner objects (endpoints, deliveries, settlements) of the other partners of ``a``."""
    a = world.tenants["a"]
    siblings = {
        *(endpoint for role, endpoint in a.endpoints.items() if role != caller),
        *(delivery for role, delivery in a.deliveries.items() if role != caller),
        *(settlement for role, settlement in a.settlements.items() if role != caller),
    }
    return world.tenants["b"].ids() | siblings


def _leaks(response, world: World, caller: str) -> set[str]:
    if getattr(response, "streaming", False):  # the live feed (ends at once: see below)
        body = b"".join(response.streaming_content).decode(errors="replace")
    else:
        body = response.content.decode(errors="replace")
    return {found for found in _foreign_ids(world, caller) if found in body}


# --- Field-level views (least data) ---------------------------------------------------------------
# What a partner of each kind may not read, even of an object it may see: a creator sees the
# orders it earns on (id, lines, amounts, its commission), never the buyer's contact, address or
# payment reference, nor the platform's, fulfillment partner's or brand's shares.
BUYER_DATA = (BUYER_EMAIL, BUYER_STREET, PAYMENT_REFERENCE_PREFIX)
OTHER_SHARES = ("platform_commission", "fulfillment_fee", "fulfillment_fees", "brand_net")
FIELD_LEVEL_HIDDEN = {"creator": BUYER_DATA}


def _hidden_values(data, names: tuple[str, ...]) -> list[str]:
    """Paths of keys in ``names`` that hold a value other than null, at any depth."""
    found, stack = [], [("", data)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in names and value is not None:
                    found.append(f"{path}.{key}")
                stack.append((f"{path}.{key}", value))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", value) for i, value in enumerate(item))
    return found


def _hidden_fields_shown(response, caller: str) -> list[str]:
    if caller not in FIELD_LEVEL_HIDDEN or response.status_code != 200:
        return []
    body = response.content.decode(errors="replace")
    shown = [text for text in FIELD_LEVEL_HIDDEN[caller] if text in body]
    # Other parties' shares, in what describes an order (its breakdown, its events). A payee's
    # own settlement is the contract's statement of what it was paid (gross, the deductions,
    # net_payout), so it is not an order view.
    order_view = response.request["PATH_INFO"].startswith(("/api/v1/orders", "/api/v1/events"))
    if order_view and response.get("Content-Type", "").startswith("application/json"):
        shown += _hidden_values(response.json(), OTHER_SHARES)
    return shown


@pytest.mark.django_db
def test_the_field_level_views_can_see_what_they_hide(world, callers):
    """The check above can fail: the host app, which may read the buyer, does read it."""
    order = world.tenants["a"].orders["paid"]
    host = callers["host_app"].get(f"/api/v1/orders/{order}")
    assert _hidden_fields_shown(host, "creator"), host.content[:300]
    brand = callers["brand"].get(f"/api/v1/orders/{order}/breakdown")
    assert _hidden_values(brand.json(), OTHER_SHARES)
    creator = callers["creator"].get(f"/api/v1/orders/{order}")
    assert creator.status_code == 200 and creator.json()["id"] == order
    assert _hidden_fields_shown(creator, "creator") == []


@pytest.mark.django_db
def test_webhook_bodies_sent_to_a_creator_hold_no_buyer_contact(world):
    """Every body the world's receiver got for a creator's endpoint (both tenants) holds none
    of the buyer's data, while the host app's hold it (so the check can fail)."""
    # The world is built in a transaction that is never committed, so nothing was queued:
    # each delivery of the creators' and host apps' endpoints is sent here, as the task would.
    RECEIVED.clear()
    for tenant in world.tenants.values():
        for role in ("creator", "host_app"):
            for delivery_id in WebhookDelivery.objects.filter(
                endpoint_id=tenant.endpoints[role], status="pending"
            ).values_list("pk", flat=True):
                webhook_delivery_attempt(delivery_id=delivery_id)
    by_role: dict[str, list[str]] = {}
    for path, body in RECEIVED:
        by_role.setdefault(path.rsplit("/", 1)[-1], []).append(body)
    assert by_role.get("creator"), sorted(by_role)
    for body in by_role["creator"]:
        assert not [text for text in BUYER_DATA if text in body], body[:300]
        assert json.loads(body)["data"].get("buyer", None) is None
    assert any(BUYER_EMAIL in body for body in by_role["host_app"])


@pytest.mark.parametrize("operation_key", sorted(set(ACCESS) | set(published_operations())))
@pytest.mark.django_db
@override_settings(LIVE_FEED_SYNC_SECONDS=0, LIVE_FEED_POLL_SECONDS=0)  # one read, then close
def test_each_role_gets_only_what_the_contract_allows(operation_key, world, callers):
    access = ACCESS.get(operation_key)
    assert access is not None, (
        f"{operation_key} is published but ACCESS does not say who may call it"
    )
    operation = published_operations().get(operation_key)
    assert operation is not None, f"{operation_key} is in ACCESS but not published"
    method, template = operation_key.split(" ", 1)
    resource = template.removeprefix("/api/v1/").split("/")[0]
    has_id = "{id}" in template
    tenant_a = world.tenants["a"]
    make_body = BODIES.get(operation_key)
    body = (
        make_body(world, tenant_a) if make_body else ({} if method in {"POST", "PATCH"} else None)
    )
    failures = []

    for caller in CALLERS:
        client = callers[caller]
        own_role = caller if caller in ROLES else "brand"
        targets = [("own", "a", own_role)]
        if has_id and caller in PARTNER_ROLES and resource not in SHARED_RESOURCES:
            targets.append(("another's", "b", own_role))
            if resource in PER_PARTNER_RESOURCES:
                # a partner of its own tenant, which it deals with but whose object this is not
                sibling = "creator" if caller == "brand" else "brand"
                targets.append(("another's", "a", sibling))
        for whose, tenant_name, role in targets:
            path = template
            if has_id:
                path = template.replace("{id}", _object_id(world, tenant_name, resource, role))
            response = _call(client, method, path, body, _query(operation, world))
            status = response.status_code
            where = f"{caller} on {whose} object: {method} {path} -> {status}"
            if status >= 500:
                failures.append(f"{where} (server error)")
            elif caller == "no key":
                if status != 401:
                    failures.append(f"{where}, expected 401")
            elif not access.admits(caller):
                if status != access.refused_with:
                    failures.append(f"{where}, expected {access.refused_with}")
            elif whose == "another's":
                if status != 404:
                    failures.append(f"{where}, expected 404: {response.content[:200]!r}")
            else:
                allowed = set(OK_FOR_OWN)
                if access.producer_only and caller != "host_app":
                    allowed.add(403)  # the world's session was produced by the host app
                if status not in allowed:
                    failures.append(f"{where}, expected one of {sorted(allowed)}")
                if caller in PARTNER_ROLES and (leaked := _leaks(response, world, caller)):
                    failures.append(f"{where} shows another partner's {sorted(leaked)}")
                if hidden := _hidden_fields_shown(response, caller):
                    failures.append(f"{where} shows what {caller} may not read: {hidden}")

    # A list, filtered by another tenant's partners and objects, still shows nothing of theirs.
    if method == "GET" and not has_id:
        filters = [
            p["name"]
            for p in operation.get("parameters", [])
            if p["in"] == "query" and p["name"] in FILTER_VALUES
        ]
        for caller in PARTNER_ROLES:
            if not access.admits(caller):
                continue
            for name in filters:
                value = FILTER_VALUES[name](world.tenants["b"])
                response = _call(
                    callers[caller], method, template, None, _query(operation, world, {name: value})
                )
                where = (
                    f"{caller}: {method} {template}?{name}=<tenant b's> -> {response.status_code}"
                )
                if response.status_code >= 500:
                    failures.append(f"{where} (server error)")
                elif response.status_code == 200 and (leaked := _leaks(response, world, caller)):
                    failures.append(f"{where} shows another partner's {sorted(leaked)}")

    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_the_chart_page_is_not_opened_by_an_api_key(world, callers):
    # (a finance key opens it only through a signed link: tests/reports/test_chart_links.py)
    for caller in CALLERS:
        response = _call(callers[caller], "GET", "/api/v1/reports/commissions/chart")

        assert response.status_code == 302, caller
        assert response["Location"].startswith("/admin/login/")
