"""A TalkShopLive-style fulfillment partner, as an API client.

It keeps its brands' catalogs and stock, and ships every paid order it learns of: by webhook
when the service can reach it, else by reading its paid orders from the API. It acknowledges a
webhook at once and does the work on its own thread, as a real receiver should, and it catches
up from the API after an outage, since a webhook can be late, repeated or missed.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable

from clients.api import Conflict, LiveCommerceClient, ValidationError
from clients.webhooks import WebhookReceiver

logger = logging.getLogger(__name__)

ACTIONS = {"paid": "accept", "accepted": "ship", "shipped": "deliver"}
DONE = {"delivered", "completed", "canceled", "refunded"}
CARRIERS = ("UPS", "DHL", "FedEx", "USPS")


class FulfillmentPartner:
    """Ships paid orders: accept, ship (carrier and tracking number), deliver.

    ``listen()`` registers a webhook endpoint on a local ``WebhookReceiver``; ``start()`` runs the
    worker; ``catch_up()`` queues every paid order the API lists (what a partner does after an
    outage, and what it does on a timer when it cannot receive webhooks at all).
    """

    def __init__(
        self,
        client: LiveCommerceClient,
        *,
        rng: random.Random | None = None,
        restock_below: int = 5,
        restock_to: int = 50,
    ) -> None:
        self.client = client
        self.rng = rng or random.Random()
        self.restock_below = restock_below
        self.restock_to = restock_to
        self.receiver: WebhookReceiver | None = None
        self.endpoint: dict | None = None
        self.stats: Counter[str] = Counter()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._finished: set[str] = set()
        self._pending: set[str] = set()
        self._errors: list[str] = []

    # --- catalog and stock ---

    def stock_catalog(self, brand_id: str, items: Iterable[dict]) -> list[dict]:
        """List a brand's products: ``items`` are ``{"sku", "title", "price", ...}``."""
        return [self.client.products.create(brand=brand_id, **item) for item in items]

    def restock_if_low(self, product_id: str) -> None:
        product = self.client.products.get(product_id)
        if product["inventory"] < self.restock_below:
            self.client.products.update(product_id, inventory=self.restock_to)
            self.stats["restocked"] += 1

    # --- hearing about orders ---

    def listen(self, *, host: str = "127.0.0.1") -> bool:
        """Receive ``order.paid`` by webhook; False if the service will not call a local URL."""
        receiver = WebhookReceiver(host=host, on_event=self._on_event).start()
        try:
            self.endpoint = self.client.webhook_endpoints.create(
                url=receiver.url, events=["order.paid"], description="fulfillment simulator"
            )
        except ValidationError as error:
            receiver.stop()
            if error.code == "webhook_url_not_allowed":
                return False  # the service runs without WEBHOOK_ALLOW_PRIVATE_URLS
            raise
        receiver.secret = self.endpoint["secret"]
        self.receiver = receiver
        return True

    def _on_event(self, event: dict) -> None:
        # Called on the receiver's thread: only note the work, answer 200 at once.
        with self._lock:  # deliveries may arrive on several receiver threads at once
            self.stats["webhooks"] += 1
        self._enqueue(event["data"]["id"])

    def catch_up(self) -> int:
        """Queue every order the API shows as paid and not yet shipped by us."""
        queued = 0
        for order in self.client.orders.list(status="paid", page_size=200):
            queued += self._enqueue(order["id"])
        return queued

    def _enqueue(self, order_id: str) -> bool:
        """Queue an order once: a webhook and a catch-up may both name it."""
        with self._lock:
            if order_id in self._pending or order_id in self._finished:
                return False
            self._pending.add(order_id)
        self._queue.put(order_id)
        return True

    # --- the worker ---

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="fulfillment", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self.receiver is not None:
            if self.endpoint is not None:
                self.client.webhook_endpoints.disable(self.endpoint["id"])
            self.receiver.stop()
            self.receiver = None

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    def _work(self) -> None:
        while (order_id := self._queue.get()) is not None:
            try:
                self.fulfil(order_id)
            except Exception as exc:  # keep shipping the others; the caller sees ``errors``
                logger.exception("could not fulfil %s", order_id)
                with self._lock:
                    self._errors.append(f"{order_id}: {exc}")
            finally:
                with self._lock:
                    self._pending.discard(order_id)

    def fulfil(self, order_id: str) -> str:
        """Move one order on to ``delivered`` from wherever it is; returns its final status.

        Another actor may move it meanwhile (the host app cancels or refunds it): a 409
        ``invalid_transition`` means "look again", not failure.
        """
        order = self.client.orders.get(order_id)
        while order["status"] in ACTIONS:
            action = ACTIONS[order["status"]]
            try:
                order = self._do(action, order)
            except Conflict as error:
                if error.code != "invalid_transition":
                    raise
                order = self.client.orders.get(order_id)
                self.stats["raced"] += 1
        if order["status"] in DONE:
            with self._lock:
                self._finished.add(order_id)
        self.stats[order["status"]] += 1
        return order["status"]

    def _do(self, action: str, order: dict) -> dict:
        orders = self.client.orders
        if action == "accept":
            accepted = orders.accept(order["id"])
            for product_id in {line["product"] for line in order["lines"]}:
                self.restock_if_low(product_id)
            return accepted
        if action == "ship":
            tracking = f"1Z{self.rng.randrange(10**15):015d}"
            return orders.ship(
                order["id"], carrier=self.rng.choice(CARRIERS), tracking_number=tracking
            )
        return orders.deliver(order["id"])

    def wait_until(self, done: Callable[[], bool], *, poll: float = 0.2, timeout: float) -> bool:
        """Wait for ``done()``, catching up from the API now and then (webhooks may be lost)."""
        waited = 0.0
        ticks = 0
        while not done():
            if waited >= timeout:
                return False
            ticks += 1
            if self.receiver is None or ticks % 25 == 0:
                self.catch_up()
            threading.Event().wait(poll)
            waited += poll
        return True
