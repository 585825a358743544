"""Benchmark: how many queries each list endpoint and each action runs, at 20 and at 200 items.

    .venv/bin/python bench/bench_queries.py                 # both sizes, print the tables
    .venv/bin/python bench/bench_queries.py --write-docs    # also update docs/benchmarks.md

For each size (20, then 200) a child process makes its own database (``lc_bench_queries_N``)
and builds, through the services, a world where every list has N items for its caller: N
brands with a product each and an order each, N more orders of the first brand (its settlement
covers them), every order paid, shipped, delivered and completed, an order refunded N times,
N live sessions, N API keys, N enrollments, N commission plans, N webhook endpoints, a
settlement run that settles every payee, and N settlement runs. Then, in-process with Django's
test client and ``CaptureQueriesContext``, it calls every list endpoint with a page of N
(``page_size=N``: 20 items, then 200), a few reads, and every action once, counting the
statements each runs (``BEGIN``, ``COMMIT`` and savepoints included, as
``django_assert_max_num_queries`` counts them). Tasks are queued to a Redis database nobody
consumes, so a count is the request's own.

The parent prints one table with both sizes side by side and checks that each count is the
same at 20 as at 200 items (a list that grows with its length has an N+1).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

REDIS_DB = int(os.environ.get("BENCH_QUERIES_REDIS_DB", "14"))
SIZES = (20, 200)


# --- The world (child process) ----------------------------------------------------------------


class World:
    """Everything the calls need, built through the services."""

    def __init__(self, n: int) -> None:
        self.n = n

    def build(self) -> None:
        from django.utils import timezone

        from commissions.models import CommissionPlan
        from commissions.settlements.runs import settlement_run_execute
        from commissions.settlements.scheduling import settlement_run_request
        from orders import services as order_services
        from orders.models import Product
        from partners.choices import BrandAccess, PartnerKind, StaffRole
        from partners.services import api_key_create, enrollment_create, partner_create
        from partners.webhooks.services import webhook_endpoint_create

        n = self.n
        now = timezone.now()
        self.fulfiller = partner_create(kind=PartnerKind.FULFILLMENT, name="Fulfiller")
        self.creator = partner_create(kind=PartnerKind.CREATOR, name="Creator")
        self.host = partner_create(kind=PartnerKind.HOST_APP, name="Host app")
        self.invite_only = partner_create(
            kind=PartnerKind.HOST_APP, name="Invite-only host", brand_access=BrandAccess.INVITE_ONLY
        )
        self.brands = [
            partner_create(
                kind=PartnerKind.BRAND, name=f"Brand {i}", fulfillment_partner=self.fulfiller
            )
            for i in range(n)
        ]
        CommissionPlan.objects.create(
            name="General",
            platform_rate_bps=800,
            creator_rate_bps=500,
            fulfillment_rate_bps=300,
            effective_from=now - timedelta(days=30),
        )
        self.products = Product.objects.bulk_create(
            [
                Product(
                    brand=brand,
                    sku=f"SKU-{i}",
                    title=f"Product {i}",
                    category="beauty",
                    price=1999,
                    currency="USD",
                    inventory=1_000_000,
                )
                for i, brand in enumerate(self.brands)
            ]
        )
        self.keys = {
            "ops": api_key_create(name="ops", role=StaffRole.OPS)[1],
            "finance": api_key_create(name="finance", role=StaffRole.FINANCE)[1],
            "host": api_key_create(name="host", partner=self.host)[1],
            "fulfiller": api_key_create(name="fulfiller", partner=self.fulfiller)[1],
            "brand": api_key_create(name="brand", partner=self.brands[0])[1],
            "creator": api_key_create(name="creator", partner=self.creator)[1],
        }
        for i in range(n - 1):
            api_key_create(name=f"host {i}", partner=self.host)
        self.endpoint = webhook_endpoint_create(
            partner=self.host, url="http://127.0.0.1:9/hooks", events=["*"]
        )
        sessions = [
            order_services.live_session_create(
                producer=self.host,
                title=f"Show {i}",
                scheduled_start=now,
                creator_id=self.creator.pk,
                product_ids=[product.pk],
            )
            for i, product in enumerate(self.products)
        ]
        self.session = sessions[0]
        order_services.live_session_start(session=self.session, actor=self.host)
        actor = f"partner:{self.host.pk}"
        # N orders, one per brand, and N more of the first brand: paid, shipped, delivered.
        products = [*self.products, *[self.products[0]] * (n - 1)]
        for i, product in enumerate(products):
            order = order_services.order_create(
                host_app=self.host,
                lines=[{"product": product.pk, "quantity": 1}],
                live_session_id=self.session.pk if i % 2 else None,
                shipping_amount="4.99",
                tax_amount="1.00",
                actor=actor,
            )
            order = order_services.order_pay(
                order=order, amount=_total(order), payment_reference=f"pi_{i}", actor=actor
            )
            order_services.order_accept(order=order, actor="fulfiller")
            order_services.order_ship(
                order=order, carrier="UPS", tracking_number=f"1Z{i}", actor="fulfiller"
            )
            order_services.order_deliver(order=order, actor="fulfiller")
        order_services.order_close_return_windows(now=now + timedelta(days=60))
        # An order refunded N times, one unit each.
        self.refunded = order_services.order_create(
            host_app=self.host,
            lines=[{"product": self.products[0].pk, "quantity": n + 5}],
            actor=actor,
        )
        self.refunded = order_services.order_pay(
            order=self.refunded,
            amount=_total(self.refunded),
            payment_reference="pi_refunded",
            actor=actor,
        )
        line = self.refunded.lines.get()
        for i in range(n):
            order_services.refund_create(
                order=self.refunded,
                lines=[{"line": line.pk, "quantity": 1}],
                reason=f"return {i}",
                actor=actor,
            )
        for brand in self.brands:
            enrollment_create(host_app=self.invite_only, brand=brand)
        CommissionPlan.objects.bulk_create(
            [
                CommissionPlan(
                    name=f"Brand plan {i}",
                    platform_rate_bps=700,
                    creator_rate_bps=500,
                    fulfillment_rate_bps=300,
                    brand=brand,
                    effective_from=now - timedelta(days=1),
                )
                for i, brand in enumerate(self.brands[1:])
            ]
        )
        # The settlement of every payee, today; then N-1 earlier runs (queued, nothing to do).
        run, _ = settlement_run_request(period_end=now.date(), currency="USD")
        run = settlement_run_execute(run_id=run.pk)
        assert run.status == "completed", run.error
        for i in range(1, n):
            settlement_run_request(period_end=now.date() - timedelta(days=i), currency="USD")
        for i in range(n - 1):
            webhook_endpoint_create(
                partner=self.host, url=f"http://127.0.0.1:9/other/{i}", events=["settlement.paid"]
            )
        from commissions.models import Settlement

        self.settlements = list(Settlement.objects.order_by("-line_count"))
        self.delivery = self.endpoint.deliveries.order_by("created").first()


def _total(order) -> str:
    from livecommerce import money

    return money.to_decimal_string(order.total, order.currency)


def count_calls(world: World) -> dict:
    """Every list, a few reads and every action: their status, items and query count."""
    import uuid

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    clients = {}
    for who, key in world.keys.items():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        clients[who] = client

    results: dict[str, dict] = {}

    def call(label: str, who: str, method: str, path: str, body=None, *, kind: str) -> dict:
        client = clients[who]
        kwargs = {"format": "json"}
        if method == "post":
            kwargs["HTTP_IDEMPOTENCY_KEY"] = uuid.uuid4().hex
        with CaptureQueriesContext(connection) as queries:
            response = getattr(client, method)(path, body, **kwargs)
        data = None
        if response.get("Content-Type", "").startswith("application/json") and response.content:
            data = response.json()
        items = None
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            items = len(data["results"])
        elif isinstance(data, list):
            items = len(data)
        results[label] = {
            "kind": kind,
            "caller": who,
            "method": method.upper(),
            "path": path,
            "status": response.status_code,
            "items": items,
            "queries": len(queries.captured_queries),
        }
        assert response.status_code < 400, (label, response.status_code, data)
        return data

    w = world
    # A page as long as the world is big: 20 items at 20, 200 at 200 (the most a page holds).
    page = f"?page_size={min(w.n, 200)}"
    s_big = w.settlements[0]
    lists = [
        ("GET /partners", "ops", f"/api/v1/partners{page}"),
        ("GET /partners/{id}/api-keys", "ops", f"/api/v1/partners/{w.host.pk}/api-keys{page}"),
        (
            "GET /partners/{id}/enrollments",
            "ops",
            f"/api/v1/partners/{w.invite_only.pk}/enrollments{page}",
        ),
        ("GET /commission-plans", "finance", f"/api/v1/commission-plans{page}"),
        ("GET /products", "host", f"/api/v1/products{page}"),
        ("GET /products (fulfillment partner)", "fulfiller", f"/api/v1/products{page}"),
        ("GET /live-sessions", "host", f"/api/v1/live-sessions{page}"),
        ("GET /orders", "host", f"/api/v1/orders{page}"),
        ("GET /orders (fulfillment partner)", "fulfiller", f"/api/v1/orders{page}"),
        ("GET /orders (staff)", "finance", f"/api/v1/orders{page}"),
        ("GET /orders/{id}/events", "host", f"/api/v1/orders/{w.refunded.pk}/events{page}"),
        ("GET /orders/{id}/refunds", "host", f"/api/v1/orders/{w.refunded.pk}/refunds{page}"),
        ("GET /ledger/entries", "finance", f"/api/v1/ledger/entries{page}"),
        ("GET /ledger/entries (brand)", "brand", f"/api/v1/ledger/entries{page}"),
        ("GET /events", "host", f"/api/v1/events{page}"),
        ("GET /webhook-endpoints", "host", f"/api/v1/webhook-endpoints{page}"),
        (
            "GET /webhook-endpoints/{id}/deliveries",
            "host",
            f"/api/v1/webhook-endpoints/{w.endpoint.pk}/deliveries{page}",
        ),
        ("GET /settlements", "finance", f"/api/v1/settlements{page}"),
        ("GET /settlements (brand)", "brand", f"/api/v1/settlements{page}"),
        ("GET /settlement-runs", "finance", f"/api/v1/settlement-runs{page}"),
        ("GET /settlements/{id}/lines", "finance", f"/api/v1/settlements/{s_big.pk}/lines{page}"),
    ]
    for label, who, path in lists:
        call(label, who, "get", path, kind="list")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    period = f"date_from=2020-01-01&date_to={today}"
    reads = [
        (
            "GET /orders/{id}/breakdown (N refunds)",
            "host",
            f"/api/v1/orders/{w.refunded.pk}/breakdown",
        ),
        ("GET /balances", "brand", "/api/v1/balances"),
        (
            "GET /reports/commissions?group_by=brand",
            "finance",
            f"/api/v1/reports/commissions?group_by=brand&currency=USD&{period}",
        ),
        (
            "GET /reports/reconciliation",
            "finance",
            f"/api/v1/reports/reconciliation?currency=USD&{period}",
        ),
        ("GET /me", "host", "/api/v1/me"),
    ]
    for label, who, path in reads:
        call(label, who, "get", path, kind="read")

    # Actions, each once, on objects made for it.
    product = w.products[1]
    partner = call(
        "POST /partners",
        "ops",
        "post",
        "/api/v1/partners",
        {"kind": "brand", "name": "New brand", "fulfillment_partner": w.fulfiller.pk},
        kind="action",
    )
    call(
        "PATCH /partners/{id}",
        "ops",
        "patch",
        f"/api/v1/partners/{partner['id']}",
        {"name": "Renamed brand"},
        kind="action",
    )
    key = call(
        "POST /partners/{id}/api-keys",
        "ops",
        "post",
        f"/api/v1/partners/{w.host.pk}/api-keys",
        {"name": "extra"},
        kind="action",
    )
    call("DELETE /api-keys/{id}", "ops", "delete", f"/api/v1/api-keys/{key['id']}", kind="action")
    call(
        "POST /partners/{id}/enrollments",
        "ops",
        "post",
        f"/api/v1/partners/{w.invite_only.pk}/enrollments",
        {"brand": partner["id"]},
        kind="action",
    )
    call(
        "DELETE /partners/{id}/enrollments",
        "ops",
        "delete",
        f"/api/v1/partners/{w.invite_only.pk}/enrollments",
        {"brand": partner["id"]},
        kind="action",
    )
    plan = call(
        "POST /commission-plans",
        "ops",
        "post",
        "/api/v1/commission-plans",
        {
            "name": "Promo",
            "platform_rate_bps": 600,
            "creator_rate_bps": 400,
            "fulfillment_rate_bps": 200,
            "host_app": w.host.pk,
            "effective_from": "2020-01-01T00:00:00Z",
            "effective_to": "2020-02-01T00:00:00Z",
        },
        kind="action",
    )
    call(
        "PATCH /commission-plans/{id}",
        "ops",
        "patch",
        f"/api/v1/commission-plans/{plan['id']}",
        {"name": "Promo (old)"},
        kind="action",
    )
    new_product = call(
        "POST /products",
        "fulfiller",
        "post",
        "/api/v1/products",
        {
            "brand": w.brands[0].pk,
            "sku": "NEW-1",
            "title": "New",
            "price": "9.99",
            "currency": "USD",
            "inventory": 50,
        },
        kind="action",
    )
    call(
        "PATCH /products/{id}",
        "fulfiller",
        "patch",
        f"/api/v1/products/{new_product['id']}",
        {"inventory": 70},
        kind="action",
    )
    session = call(
        "POST /live-sessions",
        "host",
        "post",
        "/api/v1/live-sessions",
        {
            "creator": w.creator.pk,
            "title": "Late show",
            "scheduled_start": "2030-01-01T18:00:00Z",
            "products": [product.pk],
        },
        kind="action",
    )
    call(
        "POST /live-sessions/{id}/start",
        "host",
        "post",
        f"/api/v1/live-sessions/{session['id']}/start",
        kind="action",
    )
    call(
        "POST /live-sessions/{id}/end",
        "host",
        "post",
        f"/api/v1/live-sessions/{session['id']}/end",
        kind="action",
    )
    body = {
        "lines": [{"product": product.pk, "quantity": 2}],
        "live_session": w.session.pk,
        "shipping_amount": "4.99",
        "tax_amount": "1.00",
    }
    order = call("POST /orders", "host", "post", "/api/v1/orders", body, kind="action")
    oid = order["id"]
    call(
        "POST /orders/{id}/pay",
        "host",
        "post",
        f"/api/v1/orders/{oid}/pay",
        {"amount": order["total"], "payment_reference": "pi_q"},
        kind="action",
    )
    call(
        "POST /orders/{id}/refunds (a line)",
        "host",
        "post",
        f"/api/v1/orders/{oid}/refunds",
        {"lines": [{"line": order["lines"][0]["id"], "quantity": 1}], "reason": "one back"},
        kind="action",
    )
    call(
        "POST /orders/{id}/refunds (an amount)",
        "host",
        "post",
        f"/api/v1/orders/{oid}/refunds",
        {"amount": "1.00", "reason": "goodwill"},
        kind="action",
    )
    call(
        "POST /orders/{id}/accept",
        "fulfiller",
        "post",
        f"/api/v1/orders/{oid}/accept",
        kind="action",
    )
    call(
        "POST /orders/{id}/ship",
        "fulfiller",
        "post",
        f"/api/v1/orders/{oid}/ship",
        {"carrier": "UPS", "tracking_number": "1Zq"},
        kind="action",
    )
    call(
        "POST /orders/{id}/deliver",
        "fulfiller",
        "post",
        f"/api/v1/orders/{oid}/deliver",
        kind="action",
    )
    other = call("POST /orders (to cancel)", "host", "post", "/api/v1/orders", body, kind="setup")
    call(
        "POST /orders/{id}/pay (to cancel)",
        "host",
        "post",
        f"/api/v1/orders/{other['id']}/pay",
        {"amount": other["total"], "payment_reference": "pi_c"},
        kind="setup",
    )
    call(
        "POST /orders/{id}/cancel (a paid order)",
        "host",
        "post",
        f"/api/v1/orders/{other['id']}/cancel",
        {"reason": "changed mind"},
        kind="action",
    )
    endpoint = call(
        "POST /webhook-endpoints",
        "host",
        "post",
        "/api/v1/webhook-endpoints",
        {"url": "http://127.0.0.1:9/new", "events": ["order.paid"]},
        kind="action",
    )
    call(
        "PATCH /webhook-endpoints/{id}",
        "host",
        "patch",
        f"/api/v1/webhook-endpoints/{endpoint['id']}",
        {"events": ["*"]},
        kind="action",
    )
    call(
        "POST /webhook-endpoints/{id}/rotate-secret",
        "host",
        "post",
        f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
        {},
        kind="action",
    )
    call(
        "DELETE /webhook-endpoints/{id}",
        "host",
        "delete",
        f"/api/v1/webhook-endpoints/{endpoint['id']}",
        kind="action",
    )
    call(
        "POST /webhook-deliveries/{id}/retry",
        "host",
        "post",
        f"/api/v1/webhook-deliveries/{w.delivery.pk}/retry",
        kind="action",
    )
    call(
        "POST /settlements/run",
        "finance",
        "post",
        "/api/v1/settlements/run",
        {"period_end": "2020-01-01", "currency": "USD"},
        kind="action",
    )
    call(
        "POST /settlements/{id}/mark-paid",
        "finance",
        "post",
        f"/api/v1/settlements/{w.settlements[0].pk}/mark-paid",
        {"payout_reference": "po_1"},
        kind="action",
    )
    call(
        "POST /settlements/{id}/mark-failed",
        "finance",
        "post",
        f"/api/v1/settlements/{w.settlements[1].pk}/mark-failed",
        {"reason": "bank refused"},
        kind="action",
    )
    return results


def child(size: int, out: Path) -> None:
    db_name = f"lc_bench_queries_{size}"
    common.create_database(db_name)
    # A broker nobody consumes: tasks are queued, not run in the request (counts are its own).
    common.setup_django(db_name, broker_db=REDIS_DB)
    common.migrate()
    common.flush_redis(REDIS_DB)
    started = time.monotonic()
    world = World(size)
    world.build()
    built = time.monotonic() - started
    results = count_calls(world)
    common.flush_redis(REDIS_DB)
    out.write_text(json.dumps({"size": size, "build_s": built, "calls": results}))


# --- The parent -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.out))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    runs = {}
    for size in sizes:
        out = common.RESULTS_DIR / f"queries-{size}.json"
        common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        print(f"size {size}: building and counting ...", flush=True)
        subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--out", str(out)], check=True
        )
        runs[size] = json.loads(out.read_text())
        print(f"  built in {runs[size]['build_s']:.0f} s", flush=True)
    results = {
        "sizes": sizes,
        "runs": runs,
        "date": common.today(),
        "machine": common.machine(),
    }
    common.save_result("queries", results)
    report = render(results)
    print(report)
    if args.write_docs:
        common.write_section("Query counts", report)


def render(r: dict) -> str:
    sizes = r["sizes"]
    small, large = r["runs"][sizes[0]]["calls"], r["runs"][sizes[-1]]["calls"]
    sections = []
    growing = []
    for kind, title in (("list", "Lists"), ("read", "Reads"), ("action", "Actions")):
        rows = []
        for label, call in large.items():
            if call["kind"] != kind:
                continue
            first = small.get(label, {})
            same = first.get("queries") == call["queries"]
            if not same:
                growing.append(label)
            items = f"{first.get('items')} / {call['items']}" if call["items"] is not None else ""
            rows.append(
                [
                    f"`{label}`",
                    call["caller"],
                    items,
                    first.get("queries", "n/a"),
                    call["queries"],
                    "same" if same else "**grows**",
                ]
            )
        header = [
            title.lower()[:-1],
            "caller",
            f"items at {sizes[0]} / {sizes[-1]}",
            f"queries at {sizes[0]}",
            f"queries at {sizes[-1]}",
            "",
        ]
        sections += [f"{title}:", "", common.table(header, rows, "llrrrl"), ""]
    verdict = (
        "Every count is the same at both sizes."
        if not growing
        else f"Counts that grow with the data: {', '.join(growing)}."
    )
    lines = [
        f"`bench/bench_queries.py` on {r['date']}: for each size a world built through the "
        "services (each list holding that many items for its caller, read with `page_size` set to "
        "the size: a page of 20, then of 200), every "
        "call made once in-process with Django's test client and counted with "
        "`CaptureQueriesContext`: `BEGIN`, `COMMIT` and savepoints count, as "
        "`django_assert_max_num_queries` counts them; tasks are queued to a Redis database no "
        "worker reads, so the counts are the request's own. A POST carries an "
        "`Idempotency-Key` (its record costs 3-4 of the statements). Built in "
        f"{r['runs'][sizes[0]]['build_s']:.0f} s and {r['runs'][sizes[-1]]['build_s']:.0f} s.",
        "",
        verdict,
        "",
        *sections,
    ]
    return "\n".join(lines).rstrip()


if __name__ == "__main__":
    main()
