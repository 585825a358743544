"""A TikTok-style host app, as an API client: a creator goes live and viewers buy.

Viewers order during the live session and check out without leaving the app. Some abandon
their cart (the unpaid order is canceled), some change their mind after paying (canceled, or
refunded in full if the fulfillment partner already accepted it), and after delivery some send
an item back (a partial refund, restocked).

``HostApp.drop`` runs a drop instead: the creator flashes a live price on a hot product, more
viewers than units tap "buy" at once (the rest get ``409`` with ``available: 0``), a few never
pay and their holds expire (the units come back), and the app watches it all on the show's
live feed (``GET /live-sessions/{id}/feed``).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from clients.api import Conflict, LiveCommerceClient, LiveCommerceError


@dataclass
class DropResult:
    """What a drop did, as the host app saw it."""

    session: dict
    sold: list[dict] = field(default_factory=list)  # paid orders
    sold_out: list[dict] = field(default_factory=list)  # the 409 errors' bodies
    abandoned: list[str] = field(default_factory=list)  # order ids never paid
    expired: list[str] = field(default_factory=list)  # of those, the ones the service expired
    feed: list[tuple[str, str, dict]] = field(default_factory=list)  # (id, event, data)

    def events(self, name: str) -> list[dict]:
        return [data for _, event, data in self.feed if event == name]


@dataclass
class Purchase:
    """What one viewer did, and the order it made (None when sold out)."""

    viewer: str
    outcome: str  # paid | abandoned | canceled | refunded | sold_out
    order: dict | None = None


class HostApp:
    def __init__(
        self,
        client: LiveCommerceClient,
        *,
        seed: int = 0,
        abandon_rate: float = 0.1,
        cancel_rate: float = 0.1,
        return_rate: float = 0.15,
    ) -> None:
        self.client = client
        self.seed = seed
        self.abandon_rate = abandon_rate
        self.cancel_rate = cancel_rate
        self.return_rate = return_rate
        self.session: dict | None = None
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()  # viewers finish on several threads

    # --- the live session ---

    def go_live(self, *, title: str, creator_id: str, product_ids: list[str]) -> dict:
        self.session = self.client.live_sessions.create(
            title=title,
            creator=creator_id,
            scheduled_start=datetime.now(UTC),
            products=product_ids,
        )
        return self.client.live_sessions.start(self.session["id"])

    def end(self) -> dict:
        assert self.session is not None
        return self.client.live_sessions.end(self.session["id"])

    def sell(
        self,
        products: list[dict],
        *,
        viewers: int,
        threads: int = 4,
        on_purchase: Callable[[Purchase], None] | None = None,
    ) -> list[Purchase]:
        """Viewers ``0..viewers-1`` shop concurrently; each one's choices come from the seed."""
        by_brand: dict[str, list[dict]] = {}
        for product in products:
            by_brand.setdefault(product["brand"], []).append(product)
        catalog = [by_brand[brand] for brand in sorted(by_brand)]

        def shop(index: int) -> Purchase:
            purchase = self._viewer(index, catalog)
            if on_purchase is not None:
                on_purchase(purchase)
            return purchase

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="viewer") as pool:
            return list(pool.map(shop, range(viewers)))

    def _viewer(self, index: int, catalog: list[list[dict]]) -> Purchase:
        # Each viewer is its own app session (a requests session is not shared across threads).
        with self.client.with_key(self.client.key or "") as api:
            return self._shop(api, index, catalog)

    def _shop(self, api: LiveCommerceClient, index: int, catalog: list[list[dict]]) -> Purchase:
        rng = random.Random(self.seed * 100_003 + index)
        viewer = f"viewer-{index:04d}"
        brand_products = rng.choice(catalog)
        picks = rng.sample(brand_products, k=min(len(brand_products), rng.choice([1, 1, 2])))
        lines = [{"product": p["id"], "quantity": rng.choice([1, 1, 2, 3])} for p in picks]
        assert self.session is not None
        try:
            order = api.orders.create(
                lines=lines,
                live_session=self.session["id"],
                buyer={"reference": viewer, "email": f"{viewer}@viewers.example"},
                shipping_amount=rng.choice(["0.00", "4.99"]),
                tax_amount=_tax(rng),
            )
        except Conflict as error:
            if error.code != "insufficient_inventory":
                raise
            return self._count(Purchase(viewer, "sold_out"))

        roll = rng.random()
        if roll < self.abandon_rate:
            order = api.orders.cancel(order["id"], reason="cart abandoned")
            return self._count(Purchase(viewer, "abandoned", order))
        order = api.orders.pay(
            order["id"], amount=order["total"], payment_reference=f"psp_{viewer}_{order['id']}"
        )
        if roll < self.abandon_rate + self.cancel_rate:
            return self._count(self.change_of_mind(api, viewer, order))
        return self._count(Purchase(viewer, "paid", order))

    def change_of_mind(self, api: LiveCommerceClient, viewer: str, order: dict) -> Purchase:
        """Cancel a paid order; once the fulfillment partner accepted it, refund it in full."""
        try:
            return Purchase(
                viewer, "canceled", api.orders.cancel(order["id"], reason="changed mind")
            )
        except Conflict as error:
            if error.code != "invalid_transition":
                raise
        # The whole total (a refund by lines would return the merchandise only, leaving the
        # shipping and tax paid and the order to be shipped).
        api.orders.refund(order["id"], amount=order["total"], reason="changed mind")
        return Purchase(viewer, "refunded", api.orders.get(order["id"]))

    # --- a drop ---

    def drop(
        self,
        *,
        creator_id: str,
        product: dict,
        flash_price: str,
        buyers: int,
        abandon: int = 3,
        hold_seconds: int = 5,
        expire: Callable[[], object] | None = None,
        expiry_timeout: float = 60.0,
        say: Callable[[str], None] = print,
        threads: int = 8,
    ) -> DropResult:
        """A flash sale of ``product`` during a live show, watched on the show's feed.

        ``buyers`` viewers tap "buy" (one unit each) at once; the first ``abandon`` orders are
        never paid. ``expire`` is the operator's ``manage.py expire_orders`` (without it the
        service's own periodic task must expire them, within ``expiry_timeout``).
        """
        session = self.client.live_sessions.create(
            title="Flash drop",
            creator=creator_id,
            scheduled_start=datetime.now(UTC),
            products=[product["id"]],
            hold_seconds=hold_seconds,
        )
        self.session = session = self.client.live_sessions.start(session["id"])
        result = DropResult(session=session)
        ended = threading.Event()

        def watch() -> None:
            with self.client.with_key(self.client.key or "") as api:
                try:
                    for message in api.live_sessions.feed(session["id"], should_stop=ended.is_set):
                        result.feed.append(message)
                        _, event, data = message
                        if event == "stats":
                            left = data["available"].get(product["id"])
                            gross = ", ".join(f"{v} {c}" for c, v in data["gross"].items()) or "0"
                            say(
                                f"   [feed] {data['orders']} paid orders, {data['units_sold']} "
                                f"units sold, gross {gross}, {left} left"
                            )
                        else:
                            say(f"   [feed] {event}: {data}")
                except LiveCommerceError as error:
                    if not ended.is_set():
                        say(f"   [feed] stopped: {error}")

        watcher = threading.Thread(target=watch, name="feed", daemon=True)
        watcher.start()
        try:
            time.sleep(1.0)
            self._drop_sales(session, product, flash_price, buyers, abandon, threads, result, say)
            say(f"   Waiting {hold_seconds} s for the abandoned checkouts' holds to end")
            time.sleep(hold_seconds + 1)
            if expire is not None:
                expire()
            deadline = time.monotonic() + expiry_timeout
            while True:
                statuses = {o: self.client.orders.get(o)["status"] for o in result.abandoned}
                result.expired = [o for o, status in statuses.items() if status == "expired"]
                if len(result.expired) == len(result.abandoned) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            say(f"   {len(result.expired)} abandoned orders expired; their units are back on sale")
            time.sleep(2.5)  # the feed shows the units coming back
            self.client.live_sessions.end(session["id"])
            watcher.join(timeout=30)
        finally:
            ended.set()
        return result

    def _drop_sales(
        self,
        session: dict,
        product: dict,
        flash_price: str,
        buyers: int,
        abandon: int,
        threads: int,
        result: DropResult,
        say: Callable[[str], None],
    ) -> None:
        """The flash price, then every viewer taps buy at once and checks out at once, but the
        first ``abandon`` to get an order walk away from the checkout."""
        self.client.live_sessions.update(session["id"], live_prices={product["id"]: flash_price})
        say(
            f"   Flash price: {product['title']} at {flash_price} instead of {product['price']} "
            f"({product['inventory']} units), {buyers} viewers tap buy"
        )
        tickets = iter(range(buyers))
        lock = threading.Lock()

        def buy(index: int) -> None:
            with self.client.with_key(self.client.key or "") as api:
                try:
                    order = api.orders.create(
                        lines=[{"product": product["id"], "quantity": 1}],
                        live_session=session["id"],
                        buyer={"reference": f"drop-viewer-{index:04d}"},
                    )
                except Conflict as error:
                    if error.code != "insufficient_inventory":
                        raise
                    with lock:
                        result.sold_out.append(dict(error.errors[0]))
                    return
                with lock:
                    walks_away = next(tickets) < abandon
                    if walks_away:
                        result.abandoned.append(order["id"])
                if not walks_away:
                    paid = api.orders.pay(
                        order["id"], amount=order["total"], payment_reference=f"psp_{order['id']}"
                    )
                    with lock:
                        result.sold.append(paid)

        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="buyer") as pool:
            list(pool.map(buy, range(buyers)))
        say(
            f"   {len(result.sold) + len(result.abandoned)} orders placed at {flash_price}, "
            f"{len(result.sold)} paid, {len(result.abandoned)} abandoned at checkout; "
            f"{len(result.sold_out)} viewers got 409 insufficient_inventory (available: "
            f"{sorted({e.get('available') for e in result.sold_out})})"
        )

    def _count(self, purchase: Purchase) -> Purchase:
        with self._stats_lock:
            self.stats[purchase.outcome] += 1
        return purchase

    # --- after delivery ---

    def returns(self, orders: list[dict]) -> list[dict]:
        """Some delivered orders send one item back: a partial refund, restocked."""
        rng = random.Random(self.seed + 7)
        refunds = []
        for order in orders:
            if order["status"] != "delivered" or rng.random() >= self.return_rate:
                continue
            line = order["lines"][0]
            refunds.append(
                self.client.orders.refund(
                    order["id"],
                    lines=[{"line": line["id"], "quantity": 1}],
                    reason="returned by the buyer",
                    restock=True,
                )
            )
            self.stats["returned"] += 1
        return refunds


def _tax(rng: random.Random) -> str:
    cents = rng.randrange(0, 300)
    return f"{cents // 100}.{cents % 100:02d}"
