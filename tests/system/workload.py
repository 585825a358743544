"""Traffic for the system tests and bench/faults.py, bench/load.py: real clients over HTTP.

Everything here speaks to the service only through ``clients.LiveCommerceClient`` (the SDK a
partner app uses: an ``Idempotency-Key`` on every POST, retries with backoff on network errors,
5xx, 429 and ``409 idempotency_key_in_use``). What each client asked and what it got back is
recorded as ``Call`` rows, which ``tests.system.checks`` compares with the database afterwards.

- ``build_marketplace``: ops onboards a fulfillment partner, a brand, host apps (each with its
  own key) and a commission plan; the fulfillment partner lists products with inventory.
- ``Shopper``: one host-app thread placing orders (one buyer each, ``buyer.reference`` unique
  per logical order, so a second order for one buyer can only come from a retry gone wrong) and
  paying most of them; some POSTs are deliberately sent again with the same Idempotency-Key,
  one after the other or two at once.
- ``Fulfiller``: accepts and ships paid orders. ``Refunder``: refunds part of some paid orders
  (restocking) and cancels some unpaid ones.
- ``run_threads``: runs them all until a count or a deadline, whichever comes first.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from clients import LiveCommerceClient
from clients.api import ApiError, Conflict, LiveCommerceError, RetryInfo

# Patient enough to ride out a few seconds of outage: about 10 s of backoff in all.
FAULT_TOLERANT = {"timeout": 15, "max_retries": 9, "backoff": 0.2, "max_backoff": 2.0}


@dataclass
class Call:
    """One logical API call as the client saw it (after its own retries)."""

    actor: str
    kind: str  # create | pay | resend | twin | accept | ship | refund | cancel
    key: str | None
    order_id: str | None
    ok: bool
    status: int | None = None
    code: str | None = None
    reference: str | None = None
    replayed: bool = False
    detail: str = ""
    at: float = field(default_factory=time.monotonic)


class Journal:
    """Calls and retries from every thread, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.retries: list[RetryInfo] = []

    def add(self, call: Call) -> Call:
        with self._lock:
            self.calls.append(call)
        return call

    def on_retry(self, info: RetryInfo) -> None:
        with self._lock:
            self.retries.append(info)

    def of(self, *kinds: str, ok: bool | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.kind in kinds and (ok is None or c.ok == ok)]

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for call in self.calls:
                row = out.setdefault(call.kind, {"ok": 0, "refused": 0, "failed": 0})
                if call.ok:
                    row["ok"] += 1
                elif call.status is not None and 400 <= call.status < 500:
                    row["refused"] += 1  # an answer the service meant (409 sold out, ...)
                else:
                    row["failed"] += 1  # no answer, or 5xx after every retry
        return out


@dataclass
class Marketplace:
    base_url: str
    ops: LiveCommerceClient
    finance: LiveCommerceClient
    fulfiller: LiveCommerceClient
    brand: LiveCommerceClient
    host_apps: list[LiveCommerceClient]
    products: list[dict]
    initial_inventory: dict[str, int]
    client_options: dict[str, Any]
    clients: list[LiveCommerceClient] = field(default_factory=list)

    def client(self, key: str, journal: Journal | None = None) -> LiveCommerceClient:
        """A new client (own session: one per thread) with the marketplace's retry settings."""
        options = dict(self.client_options)
        if journal is not None:
            options["on_retry"] = journal.on_retry
        made = LiveCommerceClient(self.base_url, key, **options)
        self.clients.append(made)
        return made

    def close(self) -> None:
        for made in self.clients:
            made.close()


def build_marketplace(
    base_url: str,
    *,
    ops_key: str,
    finance_key: str,
    host_apps: int = 1,
    products: int = 3,
    inventory: int = 1000,
    price: str = "19.99",
    client_options: dict[str, Any] | None = None,
) -> Marketplace:
    """One fulfillment partner, one brand, ``host_apps`` open host apps, a plan, products."""
    options = dict(FAULT_TOLERANT if client_options is None else client_options)
    made: list[LiveCommerceClient] = []

    def client(key: str) -> LiveCommerceClient:
        made.append(LiveCommerceClient(base_url, key, **options))
        return made[-1]

    ops = client(ops_key)

    def partner(kind: str, name: str, **fields: Any) -> LiveCommerceClient:
        created = ops.partners.create(kind=kind, name=name, **fields)
        partner_client = client(ops.partners.create_api_key(created["id"], name="system")["key"])
        partner_client.partner = created  # type: ignore[attr-defined]
        return partner_client

    fulfiller = partner("fulfillment", "Fulfiller")
    brand = partner("brand", "Brand", fulfillment_partner=fulfiller.partner["id"])
    hosts = [partner("host_app", f"Host app {n}", brand_access="open") for n in range(host_apps)]
    ops.commission_plans.create(
        name="Standard", platform_rate_bps=800, creator_rate_bps=500, fulfillment_rate_bps=300
    )
    listed = [
        fulfiller.products.create(
            brand=brand.partner["id"],
            sku=f"SKU-{n}",
            title=f"Product {n}",
            price=price,
            currency="USD",
            inventory=inventory,
        )
        for n in range(products)
    ]
    return Marketplace(
        base_url=base_url,
        ops=ops,
        finance=client(finance_key),
        fulfiller=fulfiller,
        brand=brand,
        host_apps=hosts,
        products=listed,
        initial_inventory={p["id"]: inventory for p in listed},
        client_options=options,
        clients=made,
    )


def _failed(call: Call, exc: Exception) -> Call:
    call.ok = False
    if isinstance(exc, ApiError):
        call.status, call.code, call.detail = exc.status, exc.code, exc.detail[:200]
    else:
        call.detail = f"{type(exc).__name__}: {exc}"[:300]
    return call


class Worker(threading.Thread):
    """A thread that repeats ``step()`` until told to stop or out of budget."""

    def __init__(self, name: str, journal: Journal, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.journal = journal
        self.stop_event = stop
        self.error: BaseException | None = None

    def step(self) -> bool:
        """One unit of work; False when there is nothing left to do."""
        raise NotImplementedError

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                if not self.step():
                    break
        except BaseException as exc:  # a bug in the workload itself: the test must see it
            self.error = exc
            raise


class Shopper(Worker):
    """A host app's checkout: place an order for a buyer, then pay it (most of the time).

    ``resend_rate``: the create is sent again with the same key and body after its answer (a
    client that lost the answer); ``twin_rate``: sent twice at the same time (a double tap).
    """

    def __init__(
        self,
        name: str,
        journal: Journal,
        stop: threading.Event,
        *,
        market: Marketplace,
        key: str,
        budget: Callable[[], bool],
        seed: int,
        pay_rate: float = 0.9,
        resend_rate: float = 0.0,
        twin_rate: float = 0.0,
        max_quantity: int = 2,
        pause: float = 0.0,
    ) -> None:
        super().__init__(name, journal, stop)
        self.market = market
        self.key = key
        self.client = market.client(key, journal)
        self.budget = budget
        self.random = random.Random(seed)
        self.pay_rate = pay_rate
        self.resend_rate = resend_rate
        self.twin_rate = twin_rate
        self.max_quantity = max_quantity
        self.pause = pause
        self.count = 0

    def step(self) -> bool:
        if not self.budget():
            return False
        self.count += 1
        reference = f"{self.name}-{self.count}-{uuid.uuid4().hex[:8]}"
        key = str(uuid.uuid4())
        product = self.random.choice(self.market.products)
        body = {
            "lines": [
                {"product": product["id"], "quantity": self.random.randint(1, self.max_quantity)}
            ],
            "buyer": {"reference": reference, "email": f"{reference}@example.com"},
        }
        if self.random.random() < self.twin_rate:
            order = self._twins(body, key, reference)
        else:
            order = self._create(self.client, body, key, reference, kind="create")
            if order is not None and self.random.random() < self.resend_rate:
                self._create(self.client, body, key, reference, kind="resend", first=order)
        if order is not None and self.random.random() < self.pay_rate:
            call = Call(self.name, "pay", None, order["id"], True, reference=reference)
            try:
                self.client.orders.pay(
                    order["id"], amount=order["total"], payment_reference=f"ch_{reference}"
                )
            except LiveCommerceError as exc:
                _failed(call, exc)
            self.journal.add(call)
        if self.pause:
            time.sleep(self.pause)
        return True

    def _create(
        self,
        client: LiveCommerceClient,
        body: dict,
        key: str,
        reference: str,
        *,
        kind: str,
        first: dict | None = None,
    ) -> dict | None:
        call = Call(self.name, kind, key, None, True, reference=reference)
        try:
            order = client.orders.create(idempotency_key=key, **body)
        except LiveCommerceError as exc:
            self.journal.add(_failed(call, exc))
            return None
        call.order_id = order["id"]
        response = client.last_response
        call.replayed = bool(response is not None and response.headers.get("Idempotent-Replayed"))
        if first is not None and order["id"] != first["id"]:
            call.ok = False
            call.detail = f"the resend made another order: {order['id']} != {first['id']}"
        self.journal.add(call)
        return order

    def _twins(self, body: dict, key: str, reference: str) -> dict | None:
        """The same POST twice at once, from two connections; both must name one order."""
        twin = self.market.client(self.key, self.journal)
        barrier = threading.Barrier(2)

        def send(client: LiveCommerceClient, kind: str) -> dict | None:
            barrier.wait(5)
            return self._create(client, body, key, reference, kind=kind)

        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(send, [self.client, twin], ["create", "twin"])
        twin.close()
        if first and second and first["id"] != second["id"]:
            self.journal.add(
                Call(
                    self.name,
                    "twin",
                    key,
                    second["id"],
                    False,
                    reference=reference,
                    detail=f"twins made two orders: {first['id']} and {second['id']}",
                )
            )
        return first or second


class Fulfiller(Worker):
    """The fulfillment partner's warehouse: accepts and ships paid orders, page by page."""

    def __init__(self, name, journal, stop, *, market: Marketplace, pause: float = 0.2) -> None:
        super().__init__(name, journal, stop)
        self.client = market.client(market.fulfiller.key, journal)
        self.pause = pause

    def step(self) -> bool:
        page = self.client.get("/orders", status="paid", page_size=20)
        for order in page["results"]:
            if self.stop_event.is_set():
                break
            for kind, act in (
                ("accept", lambda o=order: self.client.orders.accept(o["id"])),
                (
                    "ship",
                    lambda o=order: self.client.orders.ship(
                        o["id"], carrier="UPS", tracking_number=f"1Z{o['id'][-10:]}"
                    ),
                ),
            ):
                call = Call(self.name, kind, None, order["id"], True)
                try:
                    act()
                except Conflict as exc:  # refunded or canceled meanwhile: the service said no
                    _failed(call, exc)
                    self.journal.add(call)
                    break
                except LiveCommerceError as exc:
                    self.journal.add(_failed(call, exc))
                    break
                self.journal.add(call)
        if not page["results"]:
            time.sleep(self.pause)
        return True


class Refunder(Worker):
    """The host app's support desk: partial refunds (restocked) of paid orders, and cancels."""

    def __init__(
        self,
        name,
        journal,
        stop,
        *,
        market: Marketplace,
        host: LiveCommerceClient,
        seed: int,
        pause: float = 0.2,
    ) -> None:
        super().__init__(name, journal, stop)
        self.client = market.client(host.key, journal)
        self.random = random.Random(seed)
        self.pause = pause

    def step(self) -> bool:
        status = self.random.choice(["paid", "accepted", "pending_payment"])
        page = self.client.get("/orders", status=status, page_size=5)
        for order in page["results"][:2]:
            if status == "pending_payment":
                call = Call(self.name, "cancel", None, order["id"], True)
                try:
                    self.client.orders.cancel(order["id"], reason="buyer changed their mind")
                except LiveCommerceError as exc:
                    _failed(call, exc)
                self.journal.add(call)
                continue
            line = order["lines"][0]
            left = line["quantity"] - line["refunded_quantity"]
            if left < 1:
                continue
            call = Call(self.name, "refund", None, order["id"], True)
            try:
                self.client.orders.refund(
                    order["id"],
                    lines=[{"line": line["id"], "quantity": 1}],
                    reason="damaged",
                    restock=True,
                )
            except LiveCommerceError as exc:
                _failed(call, exc)
            self.journal.add(call)
        time.sleep(self.pause)
        return True


def budget(count: int, seconds: float) -> Callable[[], bool]:
    """A shared budget: at most ``count`` steps in all, and nothing after ``seconds``."""
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    left = [count]

    def take() -> bool:
        with lock:
            if left[0] <= 0 or time.monotonic() > deadline:
                return False
            left[0] -= 1
            return True

    return take


def run_threads(
    shoppers: Iterable[Worker],
    helpers: Iterable[Worker],
    stop: threading.Event,
    *,
    timeout: float,
) -> None:
    """Run the shoppers to the end of their budget, the helpers alongside; re-raise any bug."""
    shoppers, helpers = list(shoppers), list(helpers)
    for thread in shoppers + helpers:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in shoppers:
        thread.join(max(deadline - time.monotonic(), 0))
    stop.set()
    for thread in shoppers + helpers:
        thread.join(max(deadline - time.monotonic(), 5))
    stuck = [t.name for t in shoppers + helpers if t.is_alive()]
    if stuck:
        raise AssertionError(f"threads still running after {timeout}s: {stuck}")
    for thread in shoppers + helpers:
        if thread.error is not None:
            raise thread.error
