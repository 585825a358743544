"""A bounded load test on loopback: many host apps order at once while the fulfillment partner
accepts and ships and support refunds; afterwards nothing is lost, doubled or oversold.

Scaled down for CI (8 host apps x 4 checkout threads, at most 20 s or 4,000 orders, whichever
comes first); ``bench/load.py`` runs the same workload full size. One product is scarce, so
checkouts race for its last units and some are told ``409 insufficient_inventory``; some POSTs
are sent again with the same Idempotency-Key after their answer, and some twice at once.
"""

import threading
import time

import pytest

from tests.system.checks import audit
from tests.system.workload import (
    Fulfiller,
    Journal,
    Refunder,
    Shopper,
    Worker,
    budget,
    build_marketplace,
    run_threads,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

HOST_APPS, THREADS, SECONDS, MAX_ORDERS = 8, 4, 20, 4000
SCARCE = 25  # units of the product everyone wants


class InventoryWatch(Worker):
    """Reads the catalog over the API while the load runs: the lowest inventory ever seen."""

    def __init__(self, name, journal, stop, *, market) -> None:
        super().__init__(name, journal, stop)
        self.client = market.client(market.fulfiller.key)
        self.lowest: dict[str, int] = {}
        self.reads = 0

    def step(self) -> bool:
        for product in self.client.products.list(page_size=50):
            seen = self.lowest.get(product["id"], product["inventory"])
            self.lowest[product["id"]] = min(seen, product["inventory"])
        self.reads += 1
        time.sleep(0.25)
        return True


def test_many_host_apps_ordering_at_once_lose_nothing(live_stack, ops_key, finance_key):
    # given 8 host apps selling one brand's four products, one of them nearly sold out
    market = build_marketplace(
        live_stack.base_url,
        ops_key=ops_key,
        finance_key=finance_key,
        host_apps=HOST_APPS,
        products=4,
    )
    try:
        scarce = market.products[0]
        market.fulfiller.products.update(scarce["id"], inventory=SCARCE)
        market.initial_inventory[scarce["id"]] = SCARCE

        # when 32 checkouts order as fast as they can for 20 s (or 4,000 orders), resending
        # some POSTs with the same key, while the warehouse ships and support refunds
        journal, stop = Journal(), threading.Event()
        shared = budget(count=MAX_ORDERS, seconds=SECONDS)
        shoppers = [
            Shopper(
                f"host{h}-checkout{t}",
                journal,
                stop,
                market=market,
                key=host.key,
                budget=shared,
                seed=h * 100 + t,
                pay_rate=0.85,
                resend_rate=0.1,
                twin_rate=0.05,
                max_quantity=3,
            )
            for h, host in enumerate(market.host_apps)
            for t in range(THREADS)
        ]
        watch = InventoryWatch("inventory-watch", journal, stop, market=market)
        helpers = [
            Fulfiller("warehouse", journal, stop, market=market),
            Refunder("support0", journal, stop, market=market, host=market.host_apps[0], seed=1),
            Refunder("support1", journal, stop, market=market, host=market.host_apps[1], seed=2),
            watch,
        ]
        started = time.monotonic()
        run_threads(shoppers, helpers, stop, timeout=SECONDS + 60)
        elapsed = time.monotonic() - started

        # then nothing was lost, doubled or oversold
        result = audit(journal, market.initial_inventory)
        orders = result.figures["orders"]
        print(f"{elapsed:.1f} s, {orders / elapsed:.1f} orders/s\n{result.report()}")
        assert result.lost == []
        assert min(watch.lowest.values()) >= 0 and watch.reads > 0
        summary = journal.summary()
        for kind in ("create", "pay", "resend", "twin", "accept", "ship", "refund"):
            assert summary.get(kind, {}).get("ok", 0) > 0, (kind, summary)
        assert summary["create"]["failed"] == summary["pay"]["failed"] == 0, summary
        # the scarce product ran out: checkouts were told so rather than oversold
        sold_out = [c for c in journal.of("create") if c.code == "insufficient_inventory"]
        assert sold_out, "no checkout ever raced for the last units"
        # every resend named the first order, and was a replay of it
        resends = journal.of("resend", ok=True)
        assert all(c.replayed for c in resends)
        assert len({c.reference for c in journal.of("create", "resend", "twin", ok=True)}) == (
            orders
        )
    finally:
        market.close()
