"""The whole story over HTTP: onboarding, a live session with viewers buying, fulfilment by
webhook, returns, settlement and the commission report, then the finance team's checks.

``run_scenario(...)`` drives the simulators with the keys an operator has (ops and finance) and
returns what happened with a list of checks; ``python -m clients.simulators`` runs it from the
command line against a running service.
"""

from __future__ import annotations

import secrets
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TextIO

from clients.api import LiveCommerceClient
from clients.simulators.finance import (
    Check,
    Finance,
    Settled,
    money,
    print_table,
    report_check,
    settlement_checks,
)
from clients.simulators.fulfillment import FulfillmentPartner
from clients.simulators.host_app import HostApp, Purchase
from clients.simulators.progress import Progress

IN_FLIGHT = ("paid", "accepted", "shipped")
CATALOG = {
    "Glow Cosmetics": [
        ("LIP-RED", "Velvet lipstick, red", "19.99", "beauty"),
        ("SERUM-30", "Vitamin C serum 30 ml", "34.50", "beauty"),
        ("BRUSH-KIT", "Brush kit", "8.25", "beauty"),
    ],
    "Trail Gear": [
        ("JACKET-M", "Rain jacket", "120.00", "outdoor"),
        ("SOCKS-3", "Hiking socks, 3 pairs", "5.99", "outdoor"),
    ],
}


@dataclass
class ScenarioResult:
    purchases: list[Purchase]
    orders: list[dict]
    report: dict
    settled: Settled | None
    checks: list[Check] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def run_scenario(
    base_url: str,
    *,
    ops_key: str,
    finance_key: str,
    viewers: int = 40,
    seed: int | None = None,
    threads: int = 4,
    currency: str = "USD",
    abandon_rate: float = 0.1,
    cancel_rate: float = 0.1,
    return_rate: float = 0.15,
    close_return_windows: Callable[[], object] | None = None,
    completion_timeout: float = 0.0,
    fulfil_timeout: float = 120.0,
    out: TextIO | None = None,
    progress_out: TextIO | None = None,
) -> ScenarioResult:
    """Run the story once; names get a fresh suffix so it can run again on the same service."""
    out = out or sys.stdout
    seed = secrets.randbelow(10**6) if seed is None else seed
    tag = secrets.token_hex(2)
    started = datetime.now(UTC)
    say = _printer(out)

    with (
        LiveCommerceClient(base_url, ops_key) as ops,
        LiveCommerceClient(base_url, finance_key) as finance_api,
    ):
        say(f"== Onboarding (ops), run {tag}, seed {seed}")
        world = _onboard(ops, tag)
        names = world["names"]
        host_api = ops.with_key(world["keys"]["host_app"])
        fulfiller_api = ops.with_key(world["keys"]["fulfillment"])
        fulfiller = FulfillmentPartner(fulfiller_api)
        try:
            products = []
            for brand_id, catalog in world["catalogs"].items():
                items = [
                    {
                        "sku": f"{sku}-{tag}",
                        "title": title,
                        "price": price,
                        "category": category,
                        "currency": currency,
                        "inventory": 30,
                    }
                    for sku, title, price, category in catalog
                ]
                products += fulfiller.stock_catalog(brand_id, items)
            say(f"   {len(products)} products stocked by {names[world['fulfiller']]}")
            if fulfiller.listen():
                say(
                    f"   {names[world['fulfiller']]} receives order.paid webhooks at "
                    f"{fulfiller.receiver.url}"
                )
            else:
                say(
                    "   the service does not call local URLs (WEBHOOK_ALLOW_PRIVATE_URLS is "
                    "off): the fulfillment partner reads its paid orders from the API instead"
                )
            fulfiller.start()

            say(f"== Live session on {names[world['host_app']]} with {names[world['creator']]}")
            host = HostApp(
                host_api,
                seed=seed,
                abandon_rate=abandon_rate,
                cancel_rate=cancel_rate,
                return_rate=return_rate,
            )
            host.go_live(
                title=f"Friday glow-up {tag}",
                creator_id=world["creator"],
                product_ids=[p["id"] for p in products],
            )
            with Progress("Viewers ordering", viewers, out=progress_out) as bar:
                purchases = host.sell(
                    products,
                    viewers=viewers,
                    threads=threads,
                    on_purchase=lambda _: bar.advance(),
                )
            host.end()
            say("   " + _counts(host.stats))

            session_id = host.session["id"]
            to_ship = sum(1 for p in purchases if p.outcome == "paid")
            with Progress("Fulfilment shipping", to_ship, out=progress_out) as bar:

                def shipped() -> bool:
                    statuses = Counter(
                        o["status"]
                        for o in host_api.orders.list(live_session=session_id, page_size=200)
                    )
                    bar.update(statuses["delivered"] + statuses["completed"])
                    return not any(statuses[s] for s in IN_FLIGHT)

                if not fulfiller.wait_until(shipped, timeout=fulfil_timeout):
                    say("   fulfilment did not finish in time")
            fulfiller.stop()
            say(
                "   "
                + _counts(fulfiller.stats, keys=("webhooks", "delivered", "raced", "restocked"))
            )

            orders = list(host_api.orders.list(live_session=session_id, page_size=200))
            refunds = host.returns(orders)
            say(f"== Returns: {len(refunds)} item(s) sent back and refunded")

            if close_return_windows is not None:
                close_return_windows()
            _wait_for_completion(host_api, session_id, completion_timeout)
            orders = list(host_api.orders.list(live_session=session_id, page_size=200))
            statuses = Counter(o["status"] for o in orders)
            say("   orders: " + _counts(statuses))
            if statuses["delivered"]:
                say(
                    f"   {statuses['delivered']} delivered order(s) are still in their return "
                    "window: their money stays pending until the window closes"
                )

            paid = [o for o in orders if o.get("paid_at")]
            breakdowns = [host_api.orders.breakdown(o["id"])["totals"] for o in paid]
            if paid:
                kept = [i for i, o in enumerate(paid) if o["status"] in ("completed", "delivered")]
                example = kept[0] if kept else 0
                _print_split(say, paid[example], breakdowns[example])

            say("== Finance: settlement")
            finance = Finance(finance_api)
            payees = [*world["brands"], world["creator"], world["fulfiller"]]
            settled = finance.settle(
                period_end=datetime.now(UTC).date(),
                currency=currency,
                payees=payees,
                started_after=started,
            )
            _print_settlements(out, settled, names)
            if settled.reused:
                say(
                    "   today's settlement had run already: this run's money settles in the "
                    "next period (settlement checks skipped)"
                )

            say("== Finance: commission report by brand")
            today = datetime.now(UTC).date()
            by_brand = finance.commission_report(
                date_from=started.date(), date_to=today, currency=currency, group_by="brand"
            )
            _print_report(out, by_brand, names, world["brands"])
            by_host = finance.commission_report(
                date_from=started.date(), date_to=today, currency=currency, group_by="host_app"
            )
            host_row = next((r for r in by_host["rows"] if r["group"] == world["host_app"]), None)

            checks = report_check(host_row, breakdowns, names[world["host_app"]])
            if not settled.reused:
                checks += settlement_checks(settled, names)
                # An order nobody has returned anything of, without a creator if there is one:
                # what is left of a returned order may be its tax alone, whose refund leaves
                # the brand owing nothing (the check below would fail for the wrong reason).
                completed = [o for o in paid if o["status"] == "completed"]
                paid_out = sorted(
                    (o for o in completed if Decimal(o["refunded_amount"]) == 0),
                    key=lambda o: bool(o["creator"]),
                )
                if completed and not paid_out:
                    say("   every paid-out order had a return: no money-back check this run")
                if paid_out:
                    say("== Finance: money back (a return after payout)")
                    order = paid_out[0]
                    checks += finance.money_back(
                        refund=lambda o: host_api.orders.refund(
                            o["id"],
                            amount=_minus(o["total"], o["refunded_amount"]),
                            reason="Returned after the payout",
                        ),
                        order=order,
                        payee=order["brand"],
                        others=[world["fulfiller"], world["creator"]],
                        since=started.date(),
                        say=say,
                    )
            checks.insert(0, finance.ledger_check())
            checks.append(
                Check(
                    "fulfilment raised no errors",
                    not fulfiller.errors,
                    "; ".join(fulfiller.errors[:3]),
                )
            )
        finally:
            fulfiller.stop()
            host_api.close()
            fulfiller_api.close()

    say("== Checks")
    for check in checks:
        say(f"   [{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    return ScenarioResult(
        purchases=purchases,
        orders=orders,
        report=by_brand,
        settled=settled,
        checks=checks,
        names=names,
    )


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    return say


def _onboard(ops: LiveCommerceClient, tag: str) -> dict:
    """Ops onboards one of each partner (two brands), a commission plan, and their keys."""
    fulfiller = ops.partners.create(kind="fulfillment", name=f"ShopLive Fulfilment {tag}")
    brands = {
        name: ops.partners.create(
            kind="brand", name=f"{name} {tag}", fulfillment_partner=fulfiller["id"]
        )
        for name in CATALOG
    }
    host_app = ops.partners.create(kind="host_app", name=f"ClipShop {tag}", brand_access="open")
    creator = ops.partners.create(kind="creator", name=f"Ava Makeup {tag}")
    ops.commission_plans.create(
        name=f"ClipShop standard {tag}",
        host_app=host_app["id"],
        currency="USD",
        platform_rate_bps=800,
        creator_rate_bps=500,
        fulfillment_rate_bps=300,
        fulfillment_fee_fixed="0.50",
    )
    keys = {
        "host_app": ops.partners.create_api_key(host_app["id"], name="simulator")["key"],
        "fulfillment": ops.partners.create_api_key(fulfiller["id"], name="simulator")["key"],
    }
    everyone = [fulfiller, *brands.values(), host_app, creator]
    return {
        "fulfiller": fulfiller["id"],
        "brands": [b["id"] for b in brands.values()],
        "catalogs": {brand["id"]: CATALOG[name] for name, brand in brands.items()},
        "host_app": host_app["id"],
        "creator": creator["id"],
        "keys": keys,
        "names": {p["id"]: p["name"] for p in everyone},
    }


def _wait_for_completion(host: LiveCommerceClient, session_id: str, timeout: float) -> None:
    """Give the service's own return-window task time to complete delivered orders."""
    waited = 0.0
    while waited < timeout:
        delivered = list(host.orders.list(live_session=session_id, status="delivered"))
        if not delivered:
            return
        threading.Event().wait(0.5)
        waited += 0.5


def _minus(total: str, refunded: str) -> str:
    """``total - refunded`` as the order's own decimal string (its currency's places)."""
    places = len(total.split(".")[1]) if "." in total else 0
    left = Decimal(total) - Decimal(refunded)
    return f"{left:.{places}f}"


def _counts(counter: Counter, keys: tuple[str, ...] | None = None) -> str:
    items = [(k, counter[k]) for k in keys] if keys else sorted(counter.items())
    return ", ".join(f"{k} {v}" for k, v in items)


def _print_split(say: Callable[[str], None], order: dict, totals: dict) -> None:
    say(f"== Where one order's money went ({order['id']}, {order['currency']})")
    for label, key in [
        ("buyer paid", "paid"),
        ("refunded", "refunded"),
        ("platform commission", "platform_commission"),
        ("creator commission", "creator_commission"),
        ("fulfillment fees", "fulfillment_fees"),
        ("shipping (fulfillment)", "shipping"),
        ("tax (to remit)", "tax"),
        ("brand net", "brand_net"),
    ]:
        say(f"   {label:<24}{totals[key]:>10}")


def _print_settlements(out: TextIO, settled: Settled, names: dict[str, str]) -> None:
    mine = [s for s in settled.settlements if s["partner"] in names]
    run = settled.run
    out.write(
        f"   run {run['id']} for {run['period_end']}: {run['status']}, "
        f"{run['settlement_count']} settlement(s)\n"
    )
    rows = [
        [
            names[s["partner"]],
            s["gross"],
            s["platform_commission"],
            s["creator_commission"],
            s["fulfillment_fees"],
            s["refunds"],
            s["net_payout"],
            s["status"],
        ]
        for s in mine
    ]
    if rows:
        print_table(
            out,
            [
                "payee",
                "gross",
                "platform",
                "creator",
                "fulfilment",
                "refunds",
                "net payout",
                "status",
            ],
            rows,
        )


def _print_report(out: TextIO, report: dict, names: dict[str, str], brands: list[str]) -> None:
    figures = [
        "orders",
        "gross_merchandise_value",
        "refunds",
        "platform_commission",
        "creator_commission",
        "fulfillment_fees",
        "net_to_brands",
    ]
    rows = [r for r in report["rows"] if r["group"] in brands]
    table = [[names[r["group"]], *(str(r[f]) for f in figures)] for r in rows]
    sums = ["these brands"]
    for figure in figures:
        total = sum((money(str(r[figure])) for r in rows), Decimal())
        sums.append(str(total))
    print_table(
        out,
        ["brand", "orders", "GMV", "refunds", "platform", "creator", "fulfilment", "to brands"],
        [*table, sums],
    )
