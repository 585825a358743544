"""Benchmark: the order rush of a live show, against gunicorn on PostgreSQL, side by side.

    .venv/bin/python bench/bench_orders.py                 # measure and print the tables
    .venv/bin/python bench/bench_orders.py --write-docs    # also update docs/benchmarks.md
    .venv/bin/python bench/bench_orders.py --duration 5    # a quick try

Makes its own database (``lc_bench_orders``, dropped and re-created) with one host app, a brand
with its fulfillment partner, a creator hosting a live show that features 20 products (a
billion units each), a commission plan, 16 API keys of the host app (one per client) and a
webhook endpoint of the host app subscribed to every event, pointing at a loopback receiver.
Then it starts, on 127.0.0.1, the receiver, gunicorn (``--workers``, sync by default) and a
Celery worker on its own Redis database, so every order's webhooks are really sent while the
clients run, and measures, each phase for ``--duration`` seconds with ``--clients`` threads
(``requests.Session`` each, no think time, an ``Idempotency-Key`` on every POST as the Python
client sends):

1. baseline, pgbench: ``bench/pgbench_order.sql``, the writes of one order created and paid as
   one SQL transaction, with the same number of clients, before anything else runs;
2. baseline, the minimal DRF endpoint (``bench/endpoints.py``) under the same gunicorn (which
   runs with ``DJANGO_SETTINGS_MODULE=bench.settings``, production's plus that endpoint);
3. ``POST /orders`` alone (two products from the show), then ``POST /orders/{id}/pay`` alone
   on the orders just placed: each call's own requests/s and latency; then the minimal endpoint,
   create and pay again with ``--fewer-clients`` (8) clients, so both calls are compared with the
   minimal endpoint at 8 and at 16 clients in the same run (issue 14);
4. the rush: each client places an order and pays it, again and again: orders/s;
5. the same at half that rate, paced: the latency a client sees when the service keeps up;
6. a py-spy profile of the gunicorn workers during a further rush (not timed);
7. the hot SKU, with ``--hot-clients`` clients (64) placing and paying one-unit orders: all of
   one product, then the same rush spread over the show's 20 products (orders/s of each);
8. a drop of ``--drop-units`` units (2,000) of one product, bought by those clients until each
   is told ``409 insufficient_inventory``; what sold is counted in the database afterwards.

Each phase also reads the gunicorn workers' CPU time from ``/proc`` (CPU per call under load).
The database options of ``livecommerce/settings.py`` (``DATABASE_POOL``,
``DATABASE_SERVER_SIDE_BINDING``) apply when set in this process's environment.

Prints the tables, saves ``bench/results/orders.json`` and, with ``--write-docs``, replaces
the "Order rush" and "Profile of the order path" sections of docs/benchmarks.md.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = os.environ.get("BENCH_ORDERS_DB", "lc_bench_orders")
REDIS_DB = int(os.environ.get("BENCH_ORDERS_REDIS_DB", "12"))
PRODUCTS = 20
PRODUCT_PREFIX = "prd_bench_"
PRICE = 1999  # minor units (USD)
SHIPPING, TAX = "4.99", "3.20"
PGBENCH_SCRIPT = common.ROOT / "bench" / "pgbench_order.sql"
HOT_PRODUCT = f"{PRODUCT_PREFIX}hot"  # one product all the hot rush's clients buy
DROP_PRODUCT = f"{PRODUCT_PREFIX}drop"  # the drop's ``--drop-units`` units
TARGET_HOT_RATIO = 0.50  # the hot rush's orders/s, of the spread rush's (issue 14)
# Production's settings plus the minimal endpoint (bench/settings.py, bench/urls.py).
BENCH_SETTINGS = "bench.settings"

# Targets from issue 10 (ratios measured in the same run).
TARGET_CALL_RATIO = 0.40  # create and pay, each, of the minimal endpoint's requests/s
TARGET_P99_MS = 50.0
TARGET_PGBENCH_RATIO = 0.10  # orders/s (create + pay) of pgbench's transactions/s


# --- Data -------------------------------------------------------------------------------------


def prepare(receiver_url: str, clients: int, drop_units: int = 0) -> dict:
    """The partners, catalog, live show, plan, keys and webhook endpoint; their ids and keys."""
    from django.utils import timezone

    from commissions.models import CommissionPlan
    from orders.models import Product
    from orders.services import live_session_create, live_session_start
    from partners.choices import PartnerKind
    from partners.services import api_key_create, partner_create
    from partners.webhooks.services import webhook_endpoint_create

    fulfiller = partner_create(kind=PartnerKind.FULFILLMENT, name="Bench fulfiller")
    brand = partner_create(
        kind=PartnerKind.BRAND, name="Bench brand", fulfillment_partner=fulfiller
    )
    creator = partner_create(kind=PartnerKind.CREATOR, name="Bench creator")
    host_app = partner_create(kind=PartnerKind.HOST_APP, name="Bench host app")
    plan = CommissionPlan.objects.create(
        name="Bench plan",
        platform_rate_bps=800,
        creator_rate_bps=500,
        fulfillment_rate_bps=300,
        effective_from=timezone.now() - timedelta(days=1),
    )
    Product.objects.bulk_create(
        [
            Product(
                id=f"{PRODUCT_PREFIX}{n:03d}",
                brand=brand,
                sku=f"SKU-{n}",
                title=f"Product {n}",
                category="beauty",
                price=PRICE,
                currency="USD",
                inventory=1_000_000_000,
            )
            for n in range(1, PRODUCTS + 1)
        ]
        + [
            # The hot-SKU phases: one product everyone buys, and a drop of ``drop_units``.
            Product(
                id=product_id,
                brand=brand,
                sku=product_id,
                title=product_id,
                category="beauty",
                price=PRICE,
                currency="USD",
                inventory=inventory,
            )
            for product_id, inventory in ((HOT_PRODUCT, 1_000_000_000), (DROP_PRODUCT, drop_units))
        ]
    )
    session = live_session_create(
        producer=host_app,
        title="Bench live show",
        scheduled_start=timezone.now(),
        creator_id=creator.pk,
        product_ids=[
            *(f"{PRODUCT_PREFIX}{n:03d}" for n in range(1, PRODUCTS + 1)),
            HOT_PRODUCT,
            DROP_PRODUCT,
        ],
    )
    live_session_start(session=session, actor=host_app)
    keys = [api_key_create(name=f"bench {n}", partner=host_app)[1] for n in range(clients)]
    endpoint = webhook_endpoint_create(partner=host_app, url=receiver_url, events=["*"])
    return {
        "host_app": host_app.pk,
        "brand": brand.pk,
        "fulfiller": fulfiller.pk,
        "creator": creator.pk,
        "session": session.pk,
        "plan": plan.pk,
        "endpoint": endpoint.pk,
        "keys": keys,
    }


def single_line_body(n: int, session: str, product_id: str) -> dict:
    """An order of one unit of ``product_id`` (the hot-SKU phases)."""
    return {
        "lines": [{"product": product_id, "quantity": 1}],
        "live_session": session,
        "buyer": {"reference": f"viewer-{n}", "email": "viewer@example.com"},
        "shipping_address": {"line1": "1 Main St", "city": "Austin", "country": "US"},
        "shipping_amount": SHIPPING,
        "tax_amount": TAX,
    }


def order_body(n: int, session: str, rng) -> dict:
    first = rng.randrange(1, PRODUCTS + 1)
    second = 1 + (first + rng.randrange(0, PRODUCTS - 1)) % PRODUCTS
    return {
        "lines": [
            {"product": f"{PRODUCT_PREFIX}{first:03d}", "quantity": 1},
            {"product": f"{PRODUCT_PREFIX}{second:03d}", "quantity": 1},
        ],
        "live_session": session,
        "buyer": {"reference": f"viewer-{n}", "email": "viewer@example.com"},
        "shipping_address": {"line1": "1 Main St", "city": "Austin", "country": "US"},
        "shipping_amount": SHIPPING,
        "tax_amount": TAX,
    }


def in_process_order(data: dict) -> dict:
    """One order placed and paid in this process through the API (Django's test client): the
    queries each call runs, and what the order wrote (for the pgbench script's parameters)."""
    import random

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from commissions.models import LedgerAccount
    from partners.models import Event

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {data['keys'][0]}")
    calls = {}
    with CaptureQueriesContext(connection) as create_queries:
        response = client.post(
            "/api/v1/orders",
            order_body(0, data["session"], random.Random(0)),
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )
    assert response.status_code == 201, response.content
    order = response.json()
    calls["create"] = [q["sql"] for q in create_queries.captured_queries]
    with CaptureQueriesContext(connection) as pay_queries:
        response = client.post(
            f"/api/v1/orders/{order['id']}/pay",
            {"amount": order["total"], "payment_reference": "pi_warmup"},
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )
    assert response.status_code == 200, response.content
    calls["pay"] = [q["sql"] for q in pay_queries.captured_queries]
    accounts = {
        (a.purpose, a.partner_id): a.pk for a in LedgerAccount.objects.filter(currency="USD")
    }
    events = {e.type: e for e in Event.objects.filter(object_id=order["id"])}
    return {"order": order, "queries": calls, "accounts": accounts, "events": events}


def cpu_per_call(data: dict, iterations: int = 30) -> dict[str, dict[str, float]]:
    """In this process, one call at a time (Django's test client, no HTTP, no contention):
    the CPU time and wall time of each call, the minimal endpoint's included. Python's share
    of a call is what the throughput under load is made of on a machine this small."""
    import random

    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {data['keys'][0]}")
    anonymous = APIClient()
    rng = random.Random(7)
    totals = {call: [0.0, 0.0] for call in ("ping", "create", "pay")}

    def timed(call, function):
        wall, cpu = time.perf_counter(), time.process_time()
        response = function()
        totals[call][0] += time.perf_counter() - wall
        totals[call][1] += time.process_time() - cpu
        assert response.status_code < 300, response.content
        return response

    for n in range(iterations + 3):
        if n == 3:  # the first calls warm imports and caches
            totals = {call: [0.0, 0.0] for call in totals}
        timed("ping", lambda: anonymous.post("/api/v1/_bench/ping-insert", {}, format="json"))
        order = timed(
            "create",
            lambda n=n: client.post(
                "/api/v1/orders",
                order_body(n, data["session"], rng),
                format="json",
                HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            ),
        ).json()
        timed(
            "pay",
            lambda order=order: client.post(
                f"/api/v1/orders/{order['id']}/pay",
                {"amount": order["total"], "payment_reference": "pi_cpu"},
                format="json",
                HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            ),
        )
    return {
        call: {"wall_ms": wall / iterations * 1000, "cpu_ms": cpu / iterations * 1000}
        for call, (wall, cpu) in totals.items()
    }


def statement_kinds(queries: list[str]) -> dict[str, int]:
    kinds: Counter = Counter()
    for sql in queries:
        word = sql.lstrip().split(None, 1)[0].upper()
        if word == "SELECT" and "FOR UPDATE" in sql.upper():
            word = "SELECT ... FOR UPDATE"
        kinds[word] += 1
    return dict(kinds)


# --- pgbench ----------------------------------------------------------------------------------


def pgbench_variables(data: dict, warm: dict) -> dict[str, str]:
    from livecommerce import money

    split = money.split_line(
        paid=PRICE, platform_rate_bps=800, creator_rate_bps=500, fulfillment_rate_bps=300
    )
    accounts = warm["accounts"]
    created, paid = warm["events"]["order.created"], warm["events"]["order.paid"]
    shipping = money.to_minor(SHIPPING, "USD")
    tax = money.to_minor(TAX, "USD")
    return {
        "products": str(PRODUCTS),
        "product_prefix": PRODUCT_PREFIX,
        "price": str(PRICE),
        "shipping": str(shipping),
        "tax": str(tax),
        "total_text": money.to_decimal_string(2 * PRICE + shipping + tax, "USD"),
        "platform": str(split.platform_commission),
        "creator_share": str(split.creator_commission),
        "fulfillment": str(split.fulfillment_fee),
        "brand_net": str(split.brand_net),
        "platform_bps": "800",
        "creator_bps": "500",
        "fulfillment_bps": "300",
        "host_app": data["host_app"],
        "brand": data["brand"],
        "fulfiller": data["fulfiller"],
        "creator": data["creator"],
        "session": data["session"],
        "plan": data["plan"],
        "endpoint": data["endpoint"],
        "acc_clearing": accounts[("buyer_funds_clearing", None)],
        "acc_platform": accounts[("platform_revenue", None)],
        "acc_tax": accounts[("tax_payable", None)],
        "acc_creator": accounts[("partner_pending", data["creator"])],
        "acc_fulfiller": accounts[("partner_pending", data["fulfiller"])],
        "acc_brand": accounts[("partner_pending", data["brand"])],
        "created_data": json.dumps(created.data),
        "created_body": created.body,
        "paid_data": json.dumps(paid.data),
        "paid_body": paid.body,
    }


def run_pgbench(variables: dict, *, clients: int, duration: float) -> dict:
    """pgbench with the order script; transactions/s and per-transaction latency."""
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise SystemExit("pgbench is missing: apt-get install postgresql-client (see run_all.sh)")
    log_dir = common.LOG_DIR / "pgbench"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    command = [
        pgbench,
        "-n",
        "-M",
        "extended",
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-T",
        str(int(duration)),
        "-f",
        str(PGBENCH_SCRIPT),
        "-l",
        "--log-prefix",
        str(log_dir / "tx"),
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
    ]
    for name, value in variables.items():
        command += ["-D", f"{name}={value}"]
    command.append(DB_NAME)
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{completed.stdout}\n{completed.stderr}")
    out = completed.stdout
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out)
    latencies = []
    for path in log_dir.glob("tx*"):
        for line in path.read_text().splitlines():
            parts = line.split()
            latencies.append(int(parts[2]) / 1000)  # microseconds -> ms
    return {
        "tps": tps,
        "transactions": len(latencies),
        "failed": int(failed.group(1)) if failed else 0,
        "p50_ms": common.percentile(latencies, 50),
        "p95_ms": common.percentile(latencies, 95),
        "p99_ms": common.percentile(latencies, 99),
        "statements": sum(
            1
            for line in PGBENCH_SCRIPT.read_text().split(";")
            if re.search(r"^\s*(SELECT|INSERT|UPDATE|BEGIN|COMMIT)", line, re.M)
        ),
    }


def drop_pgbench_outbox() -> int:
    """Delete the webhook deliveries pgbench's script wrote; how many.

    The script writes each order's outbox rows as the service does (pending, due now) but sends
    nothing. Left pending, they would be sent by the service's worker during the phases after
    it: a batch of an endpoint's takes along the endpoint's other due deliveries, oldest first
    (``_taken_along``), so the first phases measured (16 clients) paid for sending pgbench's
    webhooks (11,874 of them in one run; seen: the worker's and the receiver's CPU per create
    2-3x that of the same phase at 8 clients, and more POSTs received than the service
    published). Deleted rather than marked sent, so that no count of deliveries afterwards
    (``wait_for_deliveries``) includes rows nothing sent; pgbench's events stay."""
    from django.db import connections

    from partners.webhooks.models import WebhookDelivery

    dropped, _ = WebhookDelivery.objects.filter(pk__startswith="wd_pgb").delete()
    connections.close_all()
    return dropped


# --- Load -------------------------------------------------------------------------------------


@dataclass
class Phase:
    """What the clients saw in one phase: per call, its latencies (ms) and statuses."""

    name: str
    started: float = 0.0
    ended: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: str, elapsed: float, status: int | str) -> None:
        with self.lock:
            self.statuses[call][status] += 1
            if isinstance(status, int) and 200 <= status < 300:
                self.latencies[call].append(elapsed * 1000)

    def summary(self, call: str) -> dict:
        seconds = self.ended - self.started
        ok = self.latencies[call]
        failed = sum(n for s, n in self.statuses[call].items() if s not in (200, 201))
        return {
            "calls": len(ok),
            "per_s": len(ok) / seconds if seconds else 0.0,
            "errors": failed,
            "statuses": {str(k): v for k, v in self.statuses[call].items()},
            "p50_ms": common.percentile(ok, 50),
            "p95_ms": common.percentile(ok, 95),
            "p99_ms": common.percentile(ok, 99),
            "mean_ms": statistics.fmean(ok) if ok else float("nan"),
            "seconds": seconds,
        }


def run_clients(
    phase: Phase,
    *,
    clients: int,
    duration: float,
    iteration,
    pace: float = 0.0,
    stop: threading.Event | None = None,
):
    """``clients`` threads calling ``iteration(session, client, phase)`` until the deadline.

    With ``pace`` (seconds), each client starts an iteration every ``pace`` seconds at most
    (staggered), so the clients together offer a fixed rate instead of all they can. With
    ``stop``, the clients also end once it is set.
    """
    import requests

    start_barrier = threading.Barrier(clients + 1)
    cpu_before = time.process_time()

    def client(number: int) -> None:
        session = requests.Session()
        start_barrier.wait()
        next_start = phase.started + (pace * number / clients if pace else 0.0)
        try:
            while True:
                now = time.monotonic()
                if pace and next_start > now:
                    time.sleep(next_start - now)
                if time.monotonic() >= phase.started + duration or (stop and stop.is_set()):
                    return
                next_start = max(next_start + pace, time.monotonic()) if pace else 0.0
                try:
                    iteration(session, number, phase)
                except Exception as exc:  # a broken connection is an error of that call
                    with phase.lock:
                        phase.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                        phase.statuses["exception"][type(exc).__name__] += 1
        finally:
            session.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    phase.started = time.monotonic()
    start_barrier.wait()
    for thread in threads:
        thread.join()
    phase.ended = time.monotonic()
    phase.client_cpu_s = time.process_time() - cpu_before
    return phase


def _error_code(response) -> str:
    try:
        return response.json()["errors"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def drop_in_database() -> dict:
    """What the drop sold, counted in the database (not from the answers): the units on order
    lines, the orders and those paid, and the product's inventory left."""
    from django.db import connections
    from django.db.models import Sum

    from orders.models import Order, OrderLine, Product

    lines = OrderLine.objects.filter(product_id=DROP_PRODUCT)
    orders = Order.objects.filter(lines__product_id=DROP_PRODUCT).distinct()
    counted = {
        "units_on_orders": lines.aggregate(units=Sum("quantity"))["units"] or 0,
        "orders": orders.count(),
        "paid_orders": orders.filter(status="paid").count(),
        "inventory_left": Product.objects.values_list("inventory", flat=True).get(pk=DROP_PRODUCT),
    }
    connections.close_all()
    return counted


def workers_cpu_s(master_pid: int) -> float:
    """CPU seconds (user + system) the gunicorn master's workers have used so far, from
    ``/proc``: per call under load, the figure the requests/s of a 2-core machine follow."""
    return sum(cpu for parent, _, cpu in _processes().values() if parent == master_pid)


def _processes() -> dict[int, tuple[int, str, float]]:
    """Every process now: pid -> (parent pid, command name, CPU seconds used by it and by its
    children that ended, user + system)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, _, rest = (entry / "stat").read_text().rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        # utime, stime, then cutime, cstime: the CPU of children already gone (a PostgreSQL
        # backend that closed, a worker replaced) stays counted in their parent's.
        found[int(entry.name)] = (
            int(fields[1]),
            head.partition("(")[2],
            sum(int(v) for v in fields[11:15]) / tick,
        )
    return found


def machine_cpu_s(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far, by group: each of ``roots`` (a process and its descendants),
    PostgreSQL's processes, this process (the load generator), the rest of the machine, and the
    machine's busy and idle time (``/proc/stat``). Two readings' difference says where a phase's
    CPU went."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in processes.items():
        children.setdefault(parent, []).append(pid)

    def tree(pid: int) -> set[int]:
        found, stack = set(), [pid]
        while stack:
            current = stack.pop()
            if current in processes and current not in found:
                found.add(current)
                stack.extend(children.get(current, []))
        return found

    groups = {name: tree(pid) for name, pid in roots.items()}
    groups["postgres"] = {pid for pid, (_, name, _) in processes.items() if name == "postgres"}
    groups["load generator (this process)"] = {os.getpid()}
    used = {name: sum(processes[pid][2] for pid in pids) for name, pids in groups.items()}
    with open("/proc/stat") as stat:
        jiffies = [int(v) for v in stat.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = (jiffies[3] + jiffies[4]) / tick  # idle + iowait
    busy = sum(jiffies[:8]) / tick - idle  # user nice system idle iowait irq softirq steal
    used["other processes"] = busy - sum(used.values())
    used["machine busy"], used["machine idle"] = busy, idle
    return used


def database_options() -> dict[str, str]:
    """The database options of this run as the service's settings made them
    (``livecommerce/settings.py``, from the environment): the pool, server-side binding and the
    prepared statements' threshold."""
    from django.conf import settings

    options = settings.DATABASES["default"].get("OPTIONS", {})
    return {
        name: str(options[name])
        for name in ("pool", "server_side_binding", "prepare_threshold")
        if name in options
    }


def timed_post(session, phase: Phase, call: str, url: str, body: dict, headers: dict):
    started = time.monotonic()
    response = session.post(url, json=body, headers=headers, timeout=30)
    phase.record(call, time.monotonic() - started, response.status_code)
    return response


class ActivitySampler(threading.Thread):
    """pg_stat_activity of the bench database every 20 ms: where its connections were."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples = 0
        self.states: Counter = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(f"{common.DB_HOST}/{DB_NAME}", autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    """SELECT state, wait_event_type FROM pg_stat_activity
                        WHERE datname = %s AND backend_type = 'client backend'
                          AND pid <> pg_backend_pid()""",
                    [DB_NAME],
                ).fetchall()
                self.samples += 1
                for state, wait in rows:
                    self.states[_activity(state, wait)] += 1
                time.sleep(0.02)

    def summary(self) -> dict[str, float]:
        """Connections in each state, on average over the samples."""
        return {k: v / max(self.samples, 1) for k, v in self.states.most_common()}


def _activity(state: str | None, wait: str | None) -> str:
    if state == "active":
        return {
            None: "running a statement (CPU)",
            "Lock": "waiting for a row lock",
            "LWLock": "waiting for an internal lock",
            "IO": "waiting for I/O (WAL flush at commit)",
        }.get(wait, f"waiting ({wait})")
    if state == "idle in transaction":
        return "in a transaction, waiting for the app (Python)"
    return "idle (between requests)"


# --- Profile ----------------------------------------------------------------------------------


def profile(master_pid: int, seconds: int, out: Path) -> bool:
    """py-spy record of every gunicorn worker (``--subprocesses``), idle frames included (a
    worker waiting for PostgreSQL is idle), as collapsed stacks; False if py-spy cannot attach."""
    py_spy = common.VENV_BIN / "py-spy"
    if not py_spy.exists():
        return False
    completed = subprocess.run(
        [
            str(py_spy),
            "record",
            "--pid",
            str(master_pid),
            "--subprocesses",
            "--idle",
            "--rate",
            "200",
            "--duration",
            str(seconds),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0 or not out.exists():
        print(f"py-spy could not record: {completed.stderr.strip()[:500]}")
        return False
    return True


# Buckets for the profile's table: the first rule a sample's stack matches (innermost frames
# first) names where the worker was.
PROFILE_BUCKETS = [
    ("in psycopg: waiting for PostgreSQL, or for a CPU", ("psycopg", "pq_")),
    ("JSON rendering / parsing", ("json", "renderers.py", "parsers.py")),
    ("serializers (to_representation, validation)", ("serializers", "fields.py")),
    ("ORM: building SQL, making model objects", ("django/db/models",)),
    ("API key check (hashing)", ("rest_framework_api_key", "hashers")),
    ("Celery: queueing webhooks on commit (Redis)", ("kombu", "celery", "redis")),
    ("middleware (sessions, idempotency, metrics, ...)", ("middleware", "idempotency")),
]


def summarise_profile(raw: Path) -> dict:
    """From py-spy's collapsed stacks of the workers: where request time went."""
    in_request = 0
    buckets: Counter = Counter()
    own: Counter = Counter()
    cumulative: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        count = int(count)
        frames = stack.split(";")
        if not any("django/core/handlers" in f for f in frames):
            continue  # the worker between requests (waiting for a connection)
        in_request += count
        own[_frame_name(frames[-1])] += count
        seen = set()
        for frame in frames:
            name = _frame_name(frame)
            if name not in seen and _is_project(frame):
                cumulative[name] += count
                seen.add(name)
        text = ";".join(reversed(frames))
        for label, needles in PROFILE_BUCKETS:
            if any(n in text for n in needles):
                buckets[label] += count
                break
        else:
            buckets["other Python (Django, DRF, our code)"] += count
    return {
        "samples_in_requests": in_request,
        "buckets": buckets.most_common(),
        "own": own.most_common(15),
        "project_cumulative": cumulative.most_common(25),
    }


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    match = re.match(r"(.*) \((.*?):?(\d*)\)$", frame)
    if not match:
        return frame
    function, path, _ = match.groups()
    short = path.split("site-packages/")[-1].replace(str(common.ROOT) + "/", "")
    return f"{function} ({short})"


PROJECT_PACKAGES = ("livecommerce/", "partners/", "orders/", "commissions/")


def _is_project(frame: str) -> bool:
    # py-spy shortens paths to the package: "order_create (orders/services/placing.py:40)"
    match = re.match(r".* \((.*?):?\d*\)$", frame)
    path = match.group(1) if match else ""
    return path.replace(str(common.ROOT) + "/", "").startswith(PROJECT_PACKAGES)


# --- The run ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--fewer-clients",
        type=int,
        default=8,
        help="the minimal endpoint, create and pay again with this many clients; 0: not",
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help=">1: gthread workers")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--profile-seconds", type=int, default=15)
    parser.add_argument(
        "--hot-clients", type=int, default=64, help="the hot-SKU and drop phases' clients; 0: none"
    )
    parser.add_argument("--drop-units", type=int, default=2000, help="0: no drop")
    parser.add_argument("--drop-timeout", type=float, default=300)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    load_before = common.load_average()
    common.create_database(DB_NAME)
    # The bench process queues to the worker's broker too: the in-process order's webhooks
    # leave through Redis as they do from gunicorn, instead of being sent inline (eager).
    # bench.settings: production's plus the minimal endpoint, for the in-process timing.
    common.setup_django(DB_NAME, broker_db=REDIS_DB, settings_module=BENCH_SETTINGS)
    common.migrate()
    common.flush_redis(REDIS_DB)

    receiver = common.Receiver("orders-receiver")
    try:
        data = prepare(receiver.url, args.clients, args.drop_units)
        warm = in_process_order(data)
        cpu = cpu_per_call(data)
        variables = pgbench_variables(data, warm)
        results = measure(args, data, variables, receiver_pid=receiver.process.popen.pid)
    finally:
        receiver.stop()
    results["webhooks_received"] = len(receiver.arrivals())
    results["cpu_per_call"] = cpu
    results["queries"] = {
        call: {"count": len(queries), "kinds": statement_kinds(queries)}
        for call, queries in warm["queries"].items()
    }
    results["load_before"] = load_before
    results["load_after"] = common.load_average()
    results["config"] = vars(args)
    results["machine"] = common.machine()
    results["date"] = common.today()
    common.save_result("orders", results)
    report = render(results)
    print(report)
    if args.write_docs:
        common.write_section("Order rush", report)
        if results.get("profile"):
            common.write_section("Profile of the order path", render_profile(results))


def measure(args, data: dict, variables: dict, *, receiver_pid: int) -> dict:
    import random

    from django.db import connections

    connections.close_all()
    results: dict = {}
    print(f"pgbench: {args.clients} clients, {args.duration:.0f} s ...", flush=True)
    results["pgbench"] = run_pgbench(variables, clients=args.clients, duration=args.duration)
    results["pgbench"]["outbox_rows_dropped"] = drop_pgbench_outbox()
    print(json.dumps(results["pgbench"]), flush=True)

    port = common.free_port()
    base = f"http://127.0.0.1:{port}"
    broker = f"{common.REDIS_BASE}/{REDIS_DB}"
    env = {
        **common.SERVICE_ENV,
        "DATABASE_URL": f"{common.DB_HOST}/{DB_NAME}",
        "CELERY_BROKER_URL": broker,
        "DJANGO_SETTINGS_MODULE": BENCH_SETTINGS,  # the minimal endpoint is mounted there
    }
    web = common.gunicorn(port=port, env=env, workers=args.workers, threads=args.threads)
    worker = common.celery_worker(env=env, concurrency=args.celery_concurrency)
    cpu_roots = {
        "gunicorn": web.popen.pid,
        "celery worker": worker.popen.pid,
        "webhook receiver": receiver_pid,
    }
    with common.running(worker, web):
        common.wait_http(f"{base}/healthz", web)
        common.wait_celery(broker, worker)
        keys = data["keys"]
        rngs = [random.Random(n) for n in range(max(args.clients, args.fewer_clients))]
        counter = iter(range(1, 10**9))

        def headers(client: int) -> dict:
            return {
                "Authorization": f"Bearer {keys[client % len(keys)]}",
                "Idempotency-Key": uuid.uuid4().hex,
            }

        def ping(session, client, phase):
            timed_post(session, phase, "ping", f"{base}/api/v1/_bench/ping-insert", {}, {})

        pending: list[tuple[int, str, str]] = []
        pending_lock = threading.Lock()

        def place(session, client, phase):
            body = order_body(next(counter), data["session"], rngs[client])
            response = timed_post(
                session, phase, "create", f"{base}/api/v1/orders", body, headers(client)
            )
            if response.status_code == 201:
                return response.json()
            phase.errors.append(f"create {response.status_code}: {response.text[:200]}")
            return None

        def create(session, client, phase):
            order = place(session, client, phase)
            if order is not None:
                with pending_lock:
                    pending.append((client, order["id"], order["total"]))

        def pay_one(session, client, phase, order_id, total):
            response = timed_post(
                session,
                phase,
                "pay",
                f"{base}/api/v1/orders/{order_id}/pay",
                {"amount": total, "payment_reference": f"pi_{order_id}"},
                headers(client),
            )
            if response.status_code != 200:
                phase.errors.append(f"pay {response.status_code}: {response.text[:200]}")

        def pay(session, client, phase):
            with pending_lock:
                if not pending:
                    raise StopIteration
                _, order_id, total = pending.pop()
            pay_one(session, client, phase, order_id, total)

        def rush(session, client, phase):
            order = place(session, client, phase)
            if order is not None:
                pay_one(session, client, phase, order["id"], order["total"])

        def run(name, iteration, duration=args.duration, pace=0.0, clients=args.clients, stop=None):
            print(f"{name}: {clients} clients, {duration:.0f} s ...", flush=True)
            cpu_before = workers_cpu_s(web.popen.pid)
            machine_before = machine_cpu_s(cpu_roots)
            phase = run_clients(
                Phase(name),
                clients=clients,
                duration=duration,
                iteration=iteration,
                pace=pace,
                stop=stop,
            )
            server_cpu_s = workers_cpu_s(web.popen.pid) - cpu_before
            machine_after = machine_cpu_s(cpu_roots)
            machine = {k: machine_after[k] - machine_before[k] for k in machine_after}
            calls = {call: phase.summary(call) for call in phase.latencies}
            for call, summary in calls.items():
                print(f"  {call}: {json.dumps(summary)}", flush=True)
            answered = sum(sum(phase.statuses[call].values()) for call in calls)
            print(
                f"  gunicorn workers' CPU: {server_cpu_s:.2f} s,"
                f" {server_cpu_s * 1000 / max(answered, 1):.2f} ms per call",
                flush=True,
            )
            print(
                "  machine CPU, s: "
                + ", ".join(f"{name} {seconds:.1f}" for name, seconds in machine.items()),
                flush=True,
            )
            if phase.errors:
                print(f"  errors: {Counter(phase.errors).most_common(3)}")
            return {
                "machine_cpu_s": machine,
                "calls": calls,
                "errors": len(phase.errors),
                "exceptions": dict(phase.statuses.get("exception", {})),
                "client_cpu_s": phase.client_cpu_s,
                "server_cpu_s": server_cpu_s,
                "server_cpu_ms_per_call": server_cpu_s * 1000 / max(answered, 1),
                "seconds": phase.ended - phase.started,
            }

        run("warm-up", rush, duration=3)
        results["ping"] = run("minimal DRF endpoint", ping)
        results["create"] = run("POST /orders", create)
        results["pay"] = run("POST /orders/{id}/pay", _until_empty(pay))
        results["pending_left_unpaid"] = len(pending)
        if args.fewer_clients:
            # The same three phases with fewer clients: the ratios the issue asks at 8 as well.
            fewer = args.fewer_clients
            results["fewer"] = {
                "clients": fewer,
                "ping": run("minimal DRF endpoint", ping, clients=fewer),
                "create": run("POST /orders", create, clients=fewer),
                "pay": run("POST /orders/{id}/pay", _until_empty(pay), clients=fewer),
            }
            results["pending_left_unpaid"] += len(pending)
        sampler = ActivitySampler()
        sampler.start()
        results["rush"] = run("rush: create + pay", rush)
        sampler.stop.set()
        sampler.join()
        results["rush_activity"] = sampler.summary()
        rush_rate = results["rush"]["calls"]["pay"]["per_s"]
        pace = args.clients / max(rush_rate / 2, 1.0)
        results["paced"] = run("paced rush at half the rate", rush, pace=pace)
        results["paced"]["offered_orders_per_s"] = args.clients / pace
        results["deliveries"] = wait_for_deliveries(timeout=15)

        raw = common.LOG_DIR / "orders-profile.txt"
        raw.unlink(missing_ok=True)
        profiler = threading.Thread(
            target=lambda: results.__setitem__(
                "profile_ok", profile(web.popen.pid, args.profile_seconds, raw)
            )
        )
        profiler.start()
        run("rush under py-spy (not timed)", rush, duration=args.profile_seconds + 2)
        profiler.join()
        if results.get("profile_ok"):
            results["profile"] = summarise_profile(raw)

        # The hot SKU: single-line orders (create + pay) by ``--hot-clients`` clients, all of
        # one product, then the same rush spread over the show's 20 products.
        def single(product_of):
            def iteration(session, client, phase):
                body = single_line_body(next(counter), data["session"], product_of(client))
                response = timed_post(
                    session, phase, "create", f"{base}/api/v1/orders", body, headers(client)
                )
                if response.status_code != 201:
                    phase.errors.append(f"create {response.status_code}: {response.text[:200]}")
                    return
                order = response.json()
                pay_one(session, client, phase, order["id"], order["total"])

            return iteration

        def sampled(name, iteration, **kwargs):
            sampler = ActivitySampler()
            sampler.start()
            try:
                result = run(name, iteration, **kwargs)
            finally:
                sampler.stop.set()
                sampler.join()
            result["activity"] = sampler.summary()
            return result

        if args.hot_clients:
            spread_rngs = [random.Random(1000 + n) for n in range(args.hot_clients)]
            results["hot"] = {
                "hot": sampled(
                    "hot rush: one product",
                    single(lambda client: HOT_PRODUCT),
                    clients=args.hot_clients,
                ),
                "spread": sampled(
                    f"spread rush: {PRODUCTS} products",
                    single(
                        lambda client: (
                            f"{PRODUCT_PREFIX}{spread_rngs[client].randrange(1, PRODUCTS + 1):03d}"
                        )
                    ),
                    clients=args.hot_clients,
                ),
            }
        if args.drop_units and args.hot_clients:
            # The drop: ``--drop-units`` units of one product, bought (create + pay, one unit an
            # order) by ``--hot-clients`` clients, each until it is told the product is gone.
            sold_out: set[int] = set()
            everyone_told = threading.Event()
            refusals: Counter = Counter()
            refusals_lock = threading.Lock()

            def buy_the_drop(session, client, phase):
                if client in sold_out:
                    time.sleep(0.01)
                    return
                body = single_line_body(next(counter), data["session"], DROP_PRODUCT)
                response = timed_post(
                    session, phase, "create", f"{base}/api/v1/orders", body, headers(client)
                )
                if response.status_code == 201:
                    order = response.json()
                    pay_one(session, client, phase, order["id"], order["total"])
                    return
                code = _error_code(response)
                with refusals_lock:
                    refusals[f"{response.status_code} {code}"] += 1
                    if response.status_code == 409 and code == "insufficient_inventory":
                        sold_out.add(client)
                        if len(sold_out) == args.hot_clients:
                            everyone_told.set()
                    else:
                        phase.errors.append(f"create {response.status_code}: {response.text[:200]}")

            results["drop"] = sampled(
                f"drop of {args.drop_units:,} units",
                buy_the_drop,
                duration=args.drop_timeout,
                clients=args.hot_clients,
                stop=everyone_told,
            )
            results["drop"].update(
                units=args.drop_units,
                refusals=dict(refusals),
                clients_told=len(sold_out),
                database=drop_in_database(),
            )
            print(f"  drop: {json.dumps(results['drop']['database'])} {dict(refusals)}")
        results["gunicorn"] = {"workers": args.workers, "threads": args.threads}
        results["database_options"] = database_options()
    return results


def _until_empty(iteration):
    def wrapped(session, client, phase):
        try:
            iteration(session, client, phase)
        except StopIteration:
            time.sleep(0.01)

    return wrapped


def wait_for_deliveries(timeout: float) -> dict:
    """After the rush: how long the Celery worker took to send what the orders owed."""
    from django.db import connections

    from partners.webhooks.models import WebhookDelivery

    started = time.monotonic()
    while True:
        pending = WebhookDelivery.objects.filter(status="pending").count()
        if pending == 0 or time.monotonic() - started > timeout:
            break
        time.sleep(0.5)
    counts = Counter(WebhookDelivery.objects.values_list("status", flat=True))
    connections.close_all()
    return {
        "by_status": dict(counts),
        "drained_after_s": round(time.monotonic() - started, 1),
        "pending": pending,
    }


# --- Report -----------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def call_figures(r: dict) -> list[dict]:
    """Create and pay each against the minimal endpoint, per number of clients (fewest first):
    requests/s, the ratios the issue sets a target for, p99 and errors (also for
    bench/summary.py). The run's ``--clients`` phases are at the top level of the results,
    the ``--fewer-clients`` ones (when run) under ``fewer``."""
    measured = [(r["config"]["clients"], r)]
    if r.get("fewer"):
        measured.append((r["fewer"]["clients"], r["fewer"]))
    figures = []
    for clients, phases in sorted(measured, key=lambda item: item[0]):
        ping = phases["ping"]["calls"]["ping"]["per_s"]
        create = phases["create"]["calls"]["create"]
        pay = phases["pay"]["calls"]["pay"]
        figures.append(
            {
                "clients": clients,
                "ping_per_s": ping,
                "create_per_s": create["per_s"],
                "pay_per_s": pay["per_s"],
                "create_ratio": create["per_s"] / ping if ping else 0.0,
                "pay_ratio": pay["per_s"] / ping if ping else 0.0,
                "create_p99_ms": create["p99_ms"],
                "pay_p99_ms": pay["p99_ms"],
                "errors": sum(
                    c["errors"]
                    for name in ("create", "pay")
                    for c in phases[name]["calls"].values()
                )
                + sum(phases[name]["errors"] for name in ("create", "pay")),
            }
        )
    return figures


def run_errors(r: dict) -> int:
    """Every error of the timed call phases: create and pay alone at each number of clients
    (``call_figures``) and the rush (also for bench/summary.py)."""
    rush = r["rush"]
    return (
        sum(c["errors"] for c in call_figures(r))
        + sum(c["errors"] for c in rush["calls"].values())
        + rush["errors"]
    )


def render_calls(r: dict) -> str:
    """The minimal endpoint, create and pay at each number of clients, side by side."""
    f = common.fmt
    rows = [
        [
            c["clients"],
            f(c["ping_per_s"]),
            f(c["create_per_s"]),
            f"{c['create_ratio']:.0%}",
            f(c["pay_per_s"]),
            f"{c['pay_ratio']:.0%}",
            f"{f(c['create_p99_ms'])} / {f(c['pay_p99_ms'])}",
            c["errors"],
        ]
        for c in call_figures(r)
    ]
    return common.table(
        [
            "clients",
            "minimal endpoint req/s",
            "`POST /orders` req/s",
            "of minimal",
            "`POST /orders/{id}/pay` req/s",
            "of minimal",
            "p99 ms create / pay",
            "errors",
        ],
        rows,
        "rrrrrrrr",
    )


def render(r: dict) -> str:
    m = r["machine"]
    pg, ping = r["pgbench"], r["ping"]["calls"]["ping"]
    create = r["create"]["calls"]["create"]
    pay = r["pay"]["calls"]["pay"]
    rush_create, rush_pay = r["rush"]["calls"]["create"], r["rush"]["calls"]["pay"]
    paced_create, paced_pay = r["paced"]["calls"]["create"], r["paced"]["calls"]["pay"]
    orders_per_s = rush_pay["per_s"]
    clients = r["config"]["clients"]
    f = common.fmt
    rows = [
        [
            "baseline: pgbench, the order's writes as one SQL transaction",
            f"{f(pg['tps'])} tx/s",
            f(pg["p50_ms"]),
            f(pg["p95_ms"]),
            f(pg["p99_ms"]),
            pg["failed"],
        ],
        [
            f"baseline: minimal DRF endpoint inserting one row ({clients} clients)",
            f"{f(ping['per_s'])} req/s",
            f(ping["p50_ms"]),
            f(ping["p95_ms"]),
            f(ping["p99_ms"]),
            ping["errors"],
        ],
        [
            f"`POST /orders` alone ({clients} clients)",
            f"{f(create['per_s'])} req/s",
            f(create["p50_ms"]),
            f(create["p95_ms"]),
            f(create["p99_ms"]),
            create["errors"],
        ],
        [
            f"`POST /orders/{{id}}/pay` alone ({clients} clients)",
            f"{f(pay['per_s'])} req/s",
            f(pay["p50_ms"]),
            f(pay["p95_ms"]),
            f(pay["p99_ms"]),
            pay["errors"],
        ],
        [
            "rush: create + pay, `POST /orders`",
            f"{f(orders_per_s)} orders/s",
            f(rush_create["p50_ms"]),
            f(rush_create["p95_ms"]),
            f(rush_create["p99_ms"]),
            rush_create["errors"],
        ],
        [
            "rush: create + pay, `POST /orders/{id}/pay`",
            "",
            f(rush_pay["p50_ms"]),
            f(rush_pay["p95_ms"]),
            f(rush_pay["p99_ms"]),
            rush_pay["errors"],
        ],
        [
            f"paced at {f(r['paced']['offered_orders_per_s'])} orders/s: `POST /orders`",
            f"{f(paced_pay['per_s'])} orders/s",
            f(paced_create["p50_ms"]),
            f(paced_create["p95_ms"]),
            f(paced_create["p99_ms"]),
            paced_create["errors"],
        ],
        [
            "paced: `POST /orders/{id}/pay`",
            "",
            f(paced_pay["p50_ms"]),
            f(paced_pay["p95_ms"]),
            f(paced_pay["p99_ms"]),
            paced_pay["errors"],
        ],
    ]
    pgbench_ratio = orders_per_s / pg["tps"]
    errors = run_errors(r)
    targets = []
    for c in call_figures(r):
        targets += [
            [
                f"`POST /orders` req/s / minimal endpoint req/s, {c['clients']} clients",
                f"{c['create_ratio']:.0%}",
                "≥ 40%",
                _verdict(c["create_ratio"] >= TARGET_CALL_RATIO),
            ],
            [
                f"`POST /orders/{{id}}/pay` req/s / minimal endpoint req/s, {c['clients']} clients",
                f"{c['pay_ratio']:.0%}",
                "≥ 40%",
                _verdict(c["pay_ratio"] >= TARGET_CALL_RATIO),
            ],
        ]
    targets += [
        [
            f"p99 at half the rush's maximum rate ({f(r['paced']['offered_orders_per_s'])}"
            " orders/s offered), create / pay",
            f"{f(paced_create['p99_ms'])} / {f(paced_pay['p99_ms'])} ms",
            "< 50 ms",
            _verdict(max(paced_create["p99_ms"], paced_pay["p99_ms"]) < TARGET_P99_MS),
        ],
        ["errors (create, pay, rush)", str(errors), "0", _verdict(errors == 0)],
        [
            "rush orders/s / pgbench order tx/s",
            f"{pgbench_ratio:.1%}",
            "≥ 10%",
            _verdict(pgbench_ratio >= TARGET_PGBENCH_RATIO),
        ],
    ]
    q = r["queries"]
    cpu = r["cpu_per_call"]
    deliveries = r["deliveries"]
    gun = r["gunicorn"]
    kind = (
        f"{gun['workers']} sync workers"
        if gun["threads"] == 1
        else (f"{gun['workers']} gthread workers x {gun['threads']} threads")
    )
    lines = [
        f"`bench/bench_orders.py` on {r['date']}, {m['nproc']} CPUs ({m['cpu_model']}), "
        f"PostgreSQL {m['postgresql']}, Redis {m['redis']}, Python {m['python']}. 1-minute load "
        f"average before / after: {r['load_before']:.2f} / {r['load_after']:.2f}.",
        "",
        f"gunicorn with {kind}, a Celery worker (prefork, concurrency "
        f"{r['config']['celery_concurrency']}) on Redis sending every order's webhooks to a "
        f"loopback receiver, {clients} client threads in one process "
        "(`requests.Session` each, no think time, an `Idempotency-Key` on every POST; "
        + (
            f"the minimal endpoint, create and pay also with {r['fewer']['clients']}), "
            if r.get("fewer")
            else "), "
        )
        + f"{r['config']['duration']:.0f} s per phase, all on 127.0.0.1. Each order: two products "
        "of a live show, shipping and tax. The pgbench script (`bench/pgbench_order.sql`, "
        f"{pg['statements']} statements) writes what one order created and paid writes, as one "
        "transaction, with the same number of clients.",
        "",
        common.table(
            ["what", "throughput", "p50 ms", "p95 ms", "p99 ms", "errors"], rows, "lrrrrr"
        ),
        "",
        "Each call alone against the minimal endpoint, at each number of clients (the same "
        "gunicorn, one phase after the other):",
        "",
        render_calls(r),
        "",
        common.table(["target (same run)", "measured", "target", ""], targets, "lrrl"),
        "",
        f"Queries per call (in-process, the same order): `POST /orders` {q['create']['count']} "
        f"({_kinds(q['create']['kinds'])}), `POST /orders/{{id}}/pay` {q['pay']['count']} "
        f"({_kinds(q['pay']['kinds'])}); the pgbench script: {pg['statements']} statements for "
        "both.",
        "",
        f"Webhooks during the runs: the worker sent {r['webhooks_received']:,} deliveries to the "
        f"receiver; after the rush the outbox was {'empty' if not deliveries['pending'] else ''}"
        f"{'' if not deliveries['pending'] else str(deliveries['pending']) + ' still pending'} "
        f"{deliveries['drained_after_s']} s later ({_kinds(deliveries['by_status'])})"
        + (
            f"; the {pg['outbox_rows_dropped']:,} outbox rows pgbench's script wrote were deleted "
            "before the service's phases, which would otherwise have sent them."
            if pg.get("outbox_rows_dropped")
            else "."
        ),
        "",
        "One call at a time in this process (Django's test client, no HTTP, nothing else "
        "running in it; mean of 30): "
        + "; ".join(
            f"{_label(call)} {v['cpu_ms']:.1f} ms of CPU ({v['wall_ms']:.1f} ms wall)"
            for call, v in r["cpu_per_call"].items()
        )
        + f". Per call, create costs {cpu['create']['cpu_ms'] / cpu['ping']['cpu_ms']:.0f}x, pay "
        f"{cpu['pay']['cpu_ms'] / cpu['ping']['cpu_ms']:.0f}x the minimal endpoint's CPU.",
        "",
        "PostgreSQL connections of the service during the rush, on average (sampled every "
        "20 ms from `pg_stat_activity`): "
        + "; ".join(f"{name} {count:.1f}" for name, count in r["rush_activity"].items())
        + ".",
        "",
        f"Client process CPU during the rush: {r['rush']['client_cpu_s']:.1f} s of "
        f"{r['rush']['seconds']:.1f} s (the load generator shares the {m['nproc']} CPUs).",
    ]
    if "server_cpu_ms_per_call" in r["rush"]:
        lines += [
            "",
            "gunicorn workers' CPU per call under load (`/proc`, user + system, over each phase): "
            + "; ".join(
                f"{label} {r[phase]['server_cpu_ms_per_call']:.1f} ms"
                for phase, label in (
                    ("ping", "the minimal endpoint"),
                    ("create", "`POST /orders`"),
                    ("pay", "`POST /orders/{id}/pay`"),
                    ("rush", "rush (create + pay, per call)"),
                )
            )
            + ". Database options (Django's `OPTIONS`): "
            + (", ".join(f"`{k}={v}`" for k, v in r.get("database_options", {}).items()) or "none")
            + ".",
        ]
    if "machine_cpu_s" in r["rush"]:
        lines += ["", render_machine_cpu(r)]
        budget = render_cpu_budget(r)
        if budget:
            lines += ["", budget]
    if r.get("hot") or r.get("drop"):
        lines += ["", render_hot(r)]
    return "\n".join(lines)


MACHINE_GROUPS = (
    "gunicorn",
    "celery worker",
    "webhook receiver",
    "postgres",
    "load generator (this process)",
    "other processes",
)


def render_machine_cpu(r: dict) -> str:
    """Where the machine's CPU went in each phase, per call answered (``machine_cpu_s``)."""
    phases = [("ping", "minimal endpoint"), ("create", "`POST /orders`"), ("pay", "pay")]
    if r.get("fewer"):
        phases += [
            (("fewer", name), f"{label}, {r['fewer']['clients']} clients") for name, label in phases
        ]
    phases += [("rush", "rush, per order (create + pay)"), ("paced", "paced rush, per order")]
    rows = []
    for key, label in phases:
        phase = r[key[0]][key[1]] if isinstance(key, tuple) else r[key]
        cpu = phase.get("machine_cpu_s")
        if not cpu:
            continue
        per_call = _per_call_ms(phase)
        busy = cpu["machine busy"]
        rows.append(
            [
                label,
                *(f"{per_call[group]:.2f}" for group in (*MACHINE_GROUPS, "machine busy")),
                f"{busy / max(busy + cpu['machine idle'], 1e-9):.0%}",
            ]
        )
    return (
        "Where the machine's CPU went, ms per call answered (per order in the rushes), from "
        "`/proc` over each phase; every process on the machine counts, so the load generator and "
        "the Celery worker sending each order's webhooks share the 2 CPUs with gunicorn and "
        'PostgreSQL ("other": py-spy, the shell, other engineers\' work):\n\n'
        + common.table(
            ["phase", *MACHINE_GROUPS, "machine busy", "busy share"],
            rows,
            "l" + "r" * (len(MACHINE_GROUPS) + 2),
        )
    )


def _answered(calls: dict) -> int:
    """A phase's calls answered; in a rush (create and pay), its orders: the pays."""
    if "pay" in calls and "create" in calls:
        return calls["pay"]["calls"]
    return sum(c["calls"] for c in calls.values())


def _per_call_ms(phase: dict) -> dict[str, float]:
    """``machine_cpu_s`` of a phase, in ms per call answered (``_answered``)."""
    answered = _answered(phase["calls"])
    return {k: v * 1000 / max(answered, 1) for k, v in phase["machine_cpu_s"].items()}


def cpu_budget(r: dict) -> list[dict]:
    """For create and pay at each client count: the machine CPU per call that 40% of the
    minimal endpoint's requests/s allows, what the call spends outside gunicorn (PostgreSQL,
    the webhook's worker and receiver, the load generator), and so what gunicorn could spend.

    On a machine kept busy (the busy share is ~100% in these phases), requests/s follow the
    machine's CPU per call: 40% of the minimal endpoint's rate is 2.5x its CPU per call."""
    runs = [(r, r.get("config", {}).get("clients"))]
    if r.get("fewer"):
        runs.append((r["fewer"], r["fewer"]["clients"]))
    budgets = []
    for run, clients in runs:
        if not all(run.get(k, {}).get("machine_cpu_s") for k in ("ping", "create", "pay")):
            continue
        ping = _per_call_ms(run["ping"])
        allowed = ping["machine busy"] / TARGET_CALL_RATIO
        for call in ("create", "pay"):
            spent = _per_call_ms(run[call])
            outside = spent["machine busy"] - spent["gunicorn"]
            budgets.append(
                {
                    "call": call,
                    "clients": clients,
                    "ping_ms": ping["machine busy"],
                    "ping_gunicorn_ms": ping["gunicorn"],
                    "allowed_ms": allowed,
                    "spent_ms": spent["machine busy"],
                    "outside_gunicorn_ms": outside,
                    "gunicorn_ms": spent["gunicorn"],
                    "gunicorn_allowed_ms": allowed - outside,
                    "ratio_if_gunicorn_as_minimal": ping["machine busy"]
                    / (outside + ping["gunicorn"]),
                }
            )
    return budgets


def render_cpu_budget(r: dict) -> str:
    budgets = cpu_budget(r)
    if not budgets:
        return ""
    rows = [
        [
            f"`{b['call']}`, {b['clients']} clients",
            f"{b['ping_ms']:.2f}",
            f"{b['allowed_ms']:.2f}",
            f"{b['spent_ms']:.2f}",
            f"{b['outside_gunicorn_ms']:.2f}",
            f"{b['gunicorn_allowed_ms']:.2f}",
            f"{b['gunicorn_ms']:.2f} ({b['ping_gunicorn_ms']:.2f})",
            f"{b['ratio_if_gunicorn_as_minimal']:.0%}",
        ]
        for b in budgets
    ]
    return (
        f"The budget of {TARGET_CALL_RATIO:.0%}, from the table above: with the machine kept busy, "
        "requests/s follow the machine's CPU per call, so a call reaches "
        f"{TARGET_CALL_RATIO:.0%} of the minimal endpoint's rate when it costs the machine at "
        f"most {1 / TARGET_CALL_RATIO:.1f}x the minimal endpoint's CPU. What the call spends "
        "outside gunicorn (PostgreSQL, the Celery worker and receiver of its webhook, the load "
        "generator) leaves what gunicorn may spend; the last column is the ratio the call "
        "would reach if its gunicorn CPU were the minimal endpoint's own (ms per call):\n\n"
        + common.table(
            [
                "call",
                "minimal endpoint",
                "allowed",
                "spent",
                "outside gunicorn",
                "gunicorn allowed",
                "gunicorn spent (minimal's)",
                "ratio at minimal's gunicorn",
            ],
            rows,
            "lrrrrrrr",
        )
    )


def hot_figures(r: dict) -> dict | None:
    """The hot-SKU phases' headline figures (also for bench/summary.py); None if not run."""
    hot = r.get("hot")
    drop = r.get("drop")
    if not hot and not drop:
        return None
    figures: dict = {}
    if hot:
        figures["hot_per_s"] = hot["hot"]["calls"]["pay"]["per_s"]
        figures["spread_per_s"] = hot["spread"]["calls"]["pay"]["per_s"]
        figures["ratio"] = figures["hot_per_s"] / max(figures["spread_per_s"], 1e-9)
    if drop:
        counted = drop["database"]
        created = drop["calls"]["create"]["statuses"].get("201", 0)
        others = {k: v for k, v in drop["refusals"].items() if k != "409 insufficient_inventory"}
        figures.update(
            units=drop["units"],
            sold_answers=created,
            sold_counted=counted["units_on_orders"],
            inventory_left=counted["inventory_left"],
            told=drop["refusals"].get("409 insufficient_inventory", 0),
            other_refusals=sum(others.values()),
            exact=(
                counted["units_on_orders"] == drop["units"] == created
                and counted["inventory_left"] == 0
                and not others
                and not drop["errors"]
            ),
        )
    return figures


def render_hot(r: dict) -> str:
    """The hot SKU against the spread rush, and the drop, beside each other."""
    f = common.fmt
    figures = hot_figures(r)
    clients = r["config"]["hot_clients"]
    rows = []
    for key, label in (("spread", f"spread over {PRODUCTS} products"), ("hot", "one product")):
        phase = (r.get("hot") or {}).get(key)
        if phase:
            create, pay = phase["calls"]["create"], phase["calls"]["pay"]
            rows.append(
                [
                    f"rush, {label}",
                    f"{f(pay['per_s'])} orders/s",
                    f"{f(create['p50_ms'])} / {f(create['p99_ms'])}",
                    f"{f(pay['p50_ms'])} / {f(pay['p99_ms'])}",
                    f"{phase['activity'].get('waiting for a row lock', 0.0):.1f}",
                    create["errors"] + pay["errors"] + phase["errors"],
                ]
            )
    drop = r.get("drop")
    if drop:
        create, pay = drop["calls"]["create"], drop["calls"].get("pay", {})
        rows.append(
            [
                f"drop of {drop['units']:,} units",
                f"{f(pay.get('calls', 0) / max(drop['seconds'], 1e-9))} orders/s",
                f"{f(create['p50_ms'])} / {f(create['p99_ms'])}",
                f"{f(pay.get('p50_ms', float('nan')))} / {f(pay.get('p99_ms', float('nan')))}",
                f"{drop['activity'].get('waiting for a row lock', 0.0):.1f}",
                drop["errors"],
            ]
        )
    lines = [
        f"**Hot SKU** ({clients} clients, each placing one-unit orders and paying them, no think "
        f"time, {r['config']['duration']:.0f} s per rush; the same run and gunicorn):",
        "",
        common.table(
            [
                "what",
                "throughput",
                "create p50 / p99 ms",
                "pay p50 / p99 ms",
                "connections waiting for a row lock",
                "errors",
            ],
            rows,
            "lrrrrr",
        ),
    ]
    if figures and "ratio" in figures:
        lines += [
            "",
            f"One product's rush is {figures['ratio']:.0%} of the spread rush's orders/s "
            f"(target ≥ 50%: {_verdict(figures['ratio'] >= TARGET_HOT_RATIO)}).",
        ]
    if figures and "units" in figures:
        counted = drop["database"]
        refusals = ", ".join(f"{n:,} `{k}`" for k, n in sorted(drop["refusals"].items()))
        lines += [
            "",
            f"The drop: {figures['sold_answers']:,} orders placed (201) for {figures['units']:,} "
            f"units; counted in the database afterwards: {counted['units_on_orders']:,} units on "
            f"order lines, {counted['orders']:,} orders ({counted['paid_orders']:,} paid), "
            f"{counted['inventory_left']:,} units left. Refused: {refusals or 'none'}; every "
            f"one of the {drop['clients_told']} clients was told `409 insufficient_inventory`, "
            f"in {drop['seconds']:.1f} s. Exactly {figures['units']:,} sold: "
            f"{_verdict(figures['exact'])}.",
        ]
    return "\n".join(lines)


def _label(call: str) -> str:
    return {
        "ping": "the minimal endpoint",
        "create": "`POST /orders`",
        "pay": "`POST /orders/{id}/pay`",
    }[call]


def _kinds(kinds: dict) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))


def render_profile(r: dict) -> str:
    p = r["profile"]
    total = p["samples_in_requests"] or 1
    buckets = [[label, f"{count / total:.0%}"] for label, count in p["buckets"]]
    own = [[f"`{name}`", f"{count / total:.1%}"] for name, count in p["own"]]
    cumulative = [[f"`{name}`", f"{count / total:.0%}"] for name, count in p["project_cumulative"]]
    return "\n".join(
        [
            f"py-spy {r['config']['profile_seconds']} s at 200 Hz on every gunicorn worker "
            "(`--subprocesses --idle`, so time waiting for PostgreSQL counts) during a further "
            f"rush after the timed phases; {total:,} samples inside a request. Where request "
            "time went (first match, innermost frame first):",
            "",
            common.table(["where", "share of request time"], buckets, "lr"),
            "",
            "Our code, cumulative (a frame and everything it called):",
            "",
            common.table(["function", "share"], cumulative, "lr"),
            "",
            "Innermost frames (self time):",
            "",
            common.table(["function", "share"], own, "lr"),
        ]
    )


if __name__ == "__main__":
    main()
