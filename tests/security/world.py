"""A small world with real data, built through the API the way partners build it.

Two tenants (``a`` and ``b``), each a full set of partners that deal only with each other: a host
app (invite-only, its own brand enrolled, so it cannot see the other tenant's catalog), a
fulfillment partner, a brand it fulfils and a creator, each with an API key; a product, a live
session, orders in several statuses (one completed and settled), refunds, webhook endpoints with
deliveries, events, a settlement. Staff keys for ``ops`` and ``finance``, one commission plan.

The fuzzing, the isolation matrix and the security tests all start from it, so an id that the
schema names (an order, a settlement, a delivery) exists and belongs to someone known.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from commissions.settlements.models import Settlement
from commissions.settlements.runs import settlement_run_execute
from commissions.settlements.scheduling import settlement_run_request
from orders.services import order_close_return_windows
from partners.choices import StaffRole
from partners.models import Event
from partners.services import api_key_create
from partners.webhooks.models import WebhookDelivery

PARTNER_ROLES = ("host_app", "fulfillment", "brand", "creator")
# The buyer's contact on every order of the world: a creator may never read it (least data).
BUYER_EMAIL = "buyer@example.com"
BUYER_STREET = "742 Evergreen Terrace"
PAYMENT_REFERENCE_PREFIX = "pi_world_"
STAFF_ROLES = ("ops", "finance")


def _api(key: str | None) -> APIClient:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def _ok(response, status: int = 201) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.json() if response.content else {}


@dataclass
class Tenant:
    """One group of partners doing business together, and the ids of what they made."""

    name: str
    partners: dict[str, str] = field(default_factory=dict)  # role -> partner id
    keys: dict[str, str] = field(default_factory=dict)  # role -> raw API key
    key_ids: dict[str, str] = field(default_factory=dict)  # role -> API key id
    spare_key_id: str = ""  # a key nobody calls with (for GET/DELETE /api-keys/{id})
    product: str = ""
    live_session: str = ""
    orders: dict[str, str] = field(default_factory=dict)  # status -> order id
    refund: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)  # role -> webhook endpoint id
    deliveries: dict[str, str] = field(default_factory=dict)  # role -> a delivery's id
    events: dict[str, str] = field(default_factory=dict)  # role -> an event it may see
    settlements: dict[str, str] = field(default_factory=dict)  # payee role -> settlement id

    def client(self, role: str) -> APIClient:
        return _api(self.keys[role])

    def ids(self) -> set[str]:
        """Every id of this tenant's own objects (to look for leaks in another's answers)."""
        found = {
            *self.partners.values(),
            *self.key_ids.values(),
            self.spare_key_id,
            self.product,
            self.live_session,
            *self.orders.values(),
            self.refund,
            *self.endpoints.values(),
            *self.deliveries.values(),
            *self.events.values(),
            *self.settlements.values(),
        }
        found.discard("")
        return found


@dataclass
class World:
    staff_keys: dict[str, str]
    staff_key_ids: dict[str, str]
    plan: str
    settlement_run: str
    audit_entry: str
    tenants: dict[str, Tenant]

    def staff(self, role: str) -> APIClient:
        return _api(self.staff_keys[role])


def _tenant(name: str, ops: APIClient, receiver_url: str | None) -> Tenant:
    tenant = Tenant(name=name)
    # given the partners, each with its key
    fulfillment = _ok(ops.post("/api/v1/partners", {"kind": "fulfillment", "name": f"{name} FF"}))
    brand = _ok(
        ops.post(
            "/api/v1/partners",
            {"kind": "brand", "name": f"{name} Brand", "fulfillment_partner": fulfillment["id"]},
        )
    )
    host_app = _ok(
        ops.post(
            "/api/v1/partners",
            {"kind": "host_app", "name": f"{name} Host", "brand_access": "invite_only"},
        )
    )
    creator = _ok(ops.post("/api/v1/partners", {"kind": "creator", "name": f"{name} Creator"}))
    _ok(ops.post(f"/api/v1/partners/{host_app['id']}/enrollments", {"brand": brand["id"]}))
    for role, partner in (
        ("host_app", host_app),
        ("fulfillment", fulfillment),
        ("brand", brand),
        ("creator", creator),
    ):
        tenant.partners[role] = partner["id"]
        issued = _ok(ops.post(f"/api/v1/partners/{partner['id']}/api-keys", {"name": "main"}))
        tenant.keys[role] = issued["key"]
        tenant.key_ids[role] = issued["id"]
    tenant.spare_key_id = _ok(
        ops.post(f"/api/v1/partners/{host_app['id']}/api-keys", {"name": "spare"})
    )["id"]

    # webhook endpoints first, so that every event below owes deliveries
    if receiver_url:
        for role in PARTNER_ROLES:
            endpoint = _ok(
                tenant.client(role).post(
                    "/api/v1/webhook-endpoints",
                    {
                        # one path per partner, so a test can read what each one was sent
                        "url": f"{receiver_url}/{name}/{role}",
                        "events": ["*"],
                        "description": f"{name} {role}",
                    },
                    format="json",
                )
            )
            tenant.endpoints[role] = endpoint["id"]

    fulfiller, host = tenant.client("fulfillment"), tenant.client("host_app")
    tenant.product = _ok(
        fulfiller.post(
            "/api/v1/products",
            {
                "brand": brand["id"],
                "sku": f"{name}-SKU-1",
                "title": f"{name} lipstick",
                "category": "beauty",
                "price": "19.99",
                "currency": "USD",
                "inventory": 1000,
            },
            format="json",
        )
    )["id"]
    tenant.live_session = _ok(
        host.post(
            "/api/v1/live-sessions",
            {
                "creator": creator["id"],
                "title": f"{name} live",
                "scheduled_start": (timezone.now() + timedelta(hours=1)).isoformat(),
                "products": [tenant.product],
            },
            format="json",
        )
    )["id"]

    def order(status: str) -> str:
        placed = _ok(
            host.post(
                "/api/v1/orders",
                {
                    "lines": [{"product": tenant.product, "quantity": 2}],
                    "live_session": tenant.live_session,
                    "buyer": {"reference": f"{name}-{status}", "email": BUYER_EMAIL},
                    "shipping_address": {"line1": BUYER_STREET, "city": "Austin"},
                    "shipping_amount": "4.99",
                    "tax_amount": "1.00",
                },
                format="json",
            )
        )
        order_id = placed["id"]
        steps = {
            "pending_payment": [],
            "paid": ["pay"],
            "shipped": ["pay", "accept", "ship"],
            "completed": ["pay", "accept", "ship", "deliver"],
        }[status]
        for step in steps:
            client = host if step == "pay" else fulfiller
            body = {
                "pay": {
                    "amount": placed["total"],
                    "payment_reference": f"{PAYMENT_REFERENCE_PREFIX}{name}",
                },
                "ship": {"carrier": "UPS", "tracking_number": "1Z999"},
            }.get(step, {})
            _ok(client.post(f"/api/v1/orders/{order_id}/{step}", body, format="json"), 200)
        return order_id

    for status in ("pending_payment", "paid", "shipped", "completed"):
        tenant.orders[status] = order(status)
    tenant.refund = _ok(
        host.post(
            f"/api/v1/orders/{tenant.orders['paid']}/refunds",
            {"amount": "1.00", "reason": "goodwill"},
            format="json",
        )
    )["id"]
    return tenant


def build_world(*, receiver_url: str | None = None) -> World:
    """Build the world; ``receiver_url`` (a local webhook receiver) adds endpoints and deliveries.

    Runs inside whatever transaction the caller holds; with Celery eager, deliveries to
    ``receiver_url`` are sent when the caller's transaction commits (never inside one).
    """
    staff_keys, staff_key_ids = {}, {}
    for role in STAFF_ROLES:
        api_key, raw = api_key_create(name=f"world {role}", role=getattr(StaffRole, role.upper()))
        staff_keys[role], staff_key_ids[role] = raw, api_key.pk
    ops = _api(staff_keys["ops"])
    plan = _ok(
        ops.post(
            "/api/v1/commission-plans",
            {
                "name": "World default",
                "platform_rate_bps": 800,
                "creator_rate_bps": 500,
                "fulfillment_rate_bps": 300,
                "effective_from": (timezone.now() - timedelta(days=60)).isoformat(),
            },
            format="json",
        )
    )["id"]
    tenants = {name: _tenant(name, ops, receiver_url) for name in ("a", "b")}

    # The delivered orders' return windows close; finance settles today, so payees have one.
    order_close_return_windows(now=timezone.now() + timedelta(days=30))
    run, _ = settlement_run_request(period_end=timezone.now().date(), currency="USD")
    settlement_run_execute(run_id=run.pk)

    for tenant in tenants.values():
        for role in PARTNER_ROLES:
            partner = tenant.partners[role]
            settlement = Settlement.objects.filter(partner_id=partner).first()
            if settlement is not None:
                tenant.settlements[role] = settlement.pk
            event = Event.objects.filter(recipients__partner_id=partner).first()
            if event is not None:
                tenant.events[role] = event.pk
            delivery = WebhookDelivery.objects.filter(endpoint__partner_id=partner).first()
            if delivery is not None:
                tenant.deliveries[role] = delivery.pk
    return World(
        staff_keys=staff_keys,
        staff_key_ids=staff_key_ids,
        plan=plan,
        settlement_run=run.pk,
        audit_entry=AuditEntry.objects.get(action="commission_plan.created", object_id=plan).pk,
        tenants=tenants,
    )
