"""The fault and load scenarios, sized by their arguments: small in tests/system, full size in
bench/faults.py and bench/load.py. Each runs real clients against a ``LiveStack``, makes its
fault happen, and returns an ``Outcome``: what the clients were told (``journal``), the audits
of the database afterwards (``tests.system.checks``), and what was observed on the way
(``observed``), so a test asserts on it and a bench prints it. ``Outcome.lost`` is everything
that went missing or happened twice: it must be empty.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import requests
from django.db import connection
from django.utils import timezone

from clients import LiveCommerceClient
from clients.webhooks import WebhookReceiver
from commissions.choices import EntryKind
from commissions.models import LedgerEntry, Settlement, SettlementRun
from partners.models import Event
from partners.webhooks.conf import DEFAULT_RETRY_SCHEDULE
from partners.webhooks.models import WebhookDelivery
from tests import factories, flows
from tests.system.checks import Audit, WebhookAudit, audit, webhook_audit
from tests.system.proxy import TCPProxy
from tests.system.stack import LiveStack, wait_until
from tests.system.workload import (
    Fulfiller,
    Journal,
    Marketplace,
    Refunder,
    Shopper,
    Worker,
    budget,
    build_marketplace,
    run_threads,
)


@dataclass
class Outcome:
    journal: Journal
    orders: Audit | None = None
    webhooks: WebhookAudit | None = None
    observed: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)  # for assertions, too long to print

    @property
    def lost(self) -> list[str]:
        return [
            *(self.orders.lost if self.orders else []),
            *(self.webhooks.lost if self.webhooks else []),
        ]

    def report(self) -> str:
        parts = [f"{name}: {value}" for name, value in self.observed.items()]
        if self.webhooks:
            parts.append("webhooks:\n  " + self.webhooks.report().replace("\n", "\n  "))
        if self.orders:
            parts.append("orders and ledger:\n  " + self.orders.report().replace("\n", "\n  "))
        return "\n".join(parts)


def shoppers_for(
    market: Marketplace,
    journal: Journal,
    stop: threading.Event,
    *,
    host: LiveCommerceClient,
    count: int,
    shared_budget,
    **options,
) -> list[Shopper]:
    return [
        Shopper(
            f"{host.partner['name']}-checkout{n}".replace(" ", "-").lower(),
            journal,
            stop,
            market=market,
            key=host.key,
            budget=shared_budget,
            seed=n,
            **options,
        )
        for n in range(count)
    ]


def place_and_pay(client: LiveCommerceClient, market: Marketplace, reference: str) -> dict:
    order = client.orders.create(
        lines=[{"product": market.products[0]["id"], "quantity": 1}],
        buyer={"reference": reference},
    )
    return client.orders.pay(
        order["id"], amount=order["total"], payment_reference=f"ch_{reference}"
    )


def received_ids(receiver: WebhookReceiver) -> set[str]:
    """Event ids the receiver verified and answered 200 (``webhook-id`` is the event id)."""
    return {a.webhook_id for a in list(receiver.attempts) if a.verified and a.status == 200}


# --- The database restarts --------------------------------------------------------------------


def database_restarts(
    stack: LiveStack,
    market: Marketplace,
    *,
    shoppers: int = 4,
    seconds: float = 9,
    outages: tuple[tuple[float, float], ...] = ((2.0, 3.0),),
    resend_rate: float = 0.1,
) -> Outcome:
    """Checkouts place and pay orders while the database "restarts" at each ``(at, for)``.

    A restart: every session of ours is cut off (the proxy aborts the connections, and the
    server side ends with ``pg_terminate_backend``), then connections are refused ``for``
    seconds.
    """
    journal, stop = Journal(), threading.Event()
    host = market.host_apps[0]
    threads = shoppers_for(
        market,
        journal,
        stop,
        host=host,
        count=shoppers,
        shared_budget=budget(count=1_000_000, seconds=seconds),
        resend_rate=resend_rate,
    )
    restarts: list[dict] = []
    started = time.monotonic()

    def restart_the_database() -> None:
        for at, duration in outages:
            time.sleep(max(0.0, started + at - time.monotonic()))
            record = {"at_s": at, "down_s": duration}
            # as a server restart does: stop accepting, end every session (each client hears
            # "terminating connection due to administrator command"), then be gone a while
            stack.db_proxy.cut(abort=False)
            record["sessions_terminated"] = stack.terminate_db_sessions()
            time.sleep(0.2)
            record["connections_cut"] = stack.db_proxy.cut()
            time.sleep(duration)
            stack.db_proxy.restore()
            record["restored_at"] = time.monotonic()
            restarts.append(record)

    fault = threading.Thread(target=restart_the_database, name="database-restarts")
    fault.start()
    run_threads(threads, [], stop, timeout=seconds + 90)
    fault.join()

    last_restored = max(r["restored_at"] for r in restarts)
    observed = {
        "restarts": [{k: v for k, v in r.items() if k != "restored_at"} for r in restarts],
        "orders placed after the last restart": sum(
            1 for c in journal.of("create", ok=True) if c.at > last_restored
        ),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    return Outcome(journal, orders=audit(journal, market.initial_inventory), observed=observed)


# --- The broker hangs, then is down -----------------------------------------------------------


def broker_outage(
    stack: LiveStack,
    market: Marketplace,
    *,
    shoppers: int = 4,
    hang_s: float = 4.0,
    down_s: float = 4.0,
    max_orders: int = 60,
    sweep_interval: float = 1.0,
    delivery_timeout: float = 90,
) -> Outcome:
    """Checkouts keep ordering while the broker hangs (connections accepted, never answered)
    for ``hang_s`` and then is down (connections refused) for ``down_s``; a webhook endpoint
    of the host app must get every event once the broker is back (beat sweeping)."""
    stack.start_beat(sweep_interval=sweep_interval)
    host = market.host_apps[0]
    receiver = WebhookReceiver().start()
    observed: dict = {}
    try:
        endpoint = host.webhook_endpoints.create(url=receiver.url, events=["*"])
        receiver.secret = endpoint["secret"]
        place_and_pay(host, market, "before-the-outage")
        wait_until(lambda: len(received_ids(receiver)) >= 2, message="the first webhooks")

        stack.broker_proxy.cut(hang=True)
        cut_at = timezone.now()
        journal, stop = Journal(), threading.Event()
        threads = shoppers_for(
            market,
            journal,
            stop,
            host=host,
            count=shoppers,
            shared_budget=budget(count=max_orders, seconds=hang_s + down_s),
        )
        traffic = threading.Thread(
            target=run_threads, args=(threads, [], stop), kwargs={"timeout": hang_s + down_s + 90}
        )
        traffic.start()
        time.sleep(hang_s)
        stack.broker_proxy.cut()
        observed["healthz while down"] = _status(f"{stack.base_url}/healthz")
        observed["readyz while down"] = _status(f"{stack.base_url}/readyz")
        traffic.join()

        during = set(
            Event.objects.filter(
                created__gte=cut_at, recipients__partner_id=host.partner["id"]
            ).values_list("pk", flat=True)
        )
        kept = WebhookDelivery.objects.filter(event_id__in=during, endpoint_id=endpoint["id"])
        observed["events published during the outage"] = len(during)
        observed["their deliveries kept in the outbox"] = kept.count()
        observed["their delivery statuses"] = sorted(set(kept.values_list("status", flat=True)))
        observed["of them received during the outage"] = len(received_ids(receiver) & during)
        observed["orders and payments answered 2xx during the outage"] = len(
            journal.of("create", "pay", ok=True)
        )

        stack.broker_proxy.restore()
        back = time.monotonic()
        wait_until(
            lambda: during <= received_ids(receiver),
            timeout=delivery_timeout,
            message=lambda: f"{len(during - received_ids(receiver))} of {len(during)} events",
        )
        observed["all received, seconds after the broker came back"] = round(
            time.monotonic() - back, 1
        )
        wait_until(
            lambda: (
                not WebhookDelivery.objects.filter(
                    endpoint_id=endpoint["id"], status="pending"
                ).exists()
            ),
            message="every delivery to be marked succeeded",
        )
        observed["worker still running (reconnected)"] = stack.worker.running
        return Outcome(
            journal,
            orders=audit(journal, market.initial_inventory),
            webhooks=webhook_audit(
                endpoint_id=endpoint["id"],
                partner_id=host.partner["id"],
                received_ids=received_ids(receiver),
            ),
            observed=observed,
        )
    finally:
        receiver.stop()


def _status(url: str) -> int | str:
    try:
        return requests.get(url, timeout=15).status_code
    except requests.RequestException as exc:
        return type(exc).__name__


# --- A webhook receiver down for hours --------------------------------------------------------


def scaled_retries(hour: float) -> dict[str, str]:
    """The worker environment for production's retry schedule with an hour lasting ``hour`` s.

    Retries further off than 600 scaled seconds are left to the sweeper, as in production.
    """

    return {
        "WEBHOOK_RETRY_SCHEDULE": ",".join(
            f"{s / 3600 * hour:.4f}" for s in DEFAULT_RETRY_SCHEDULE
        ),
        "WEBHOOK_COUNTDOWN_MAX": f"{600 / 3600 * hour:.4f}",
        "WEBHOOK_REQUEUE_AFTER": "2",
        "WEBHOOK_TIMEOUT": "2",
    }


def receiver_down_for_hours(
    stack: LiveStack,
    market: Marketplace,
    *,
    hour: float = 0.5,
    down_hours: float = 6,
    early_orders: int = 3,
    later_orders: int = 1,
    delivery_timeout: float = 60,
) -> Outcome:
    """A receiver refuses connections for ``down_hours`` (scaled) while orders are placed as it
    goes down and halfway through; every event must arrive once it is back."""

    stack.restart_worker(env=scaled_retries(hour))
    stack.start_beat(sweep_interval=1)
    host = market.host_apps[0]
    receiver = WebhookReceiver().start()
    front = TCPProxy(("127.0.0.1", urlsplit(receiver.url).port), name="receiver").start()
    observed: dict = {}
    try:
        url = f"http://127.0.0.1:{front.port}{receiver.path}"
        endpoint = host.webhook_endpoints.create(url=url, events=["*"])
        receiver.secret = endpoint["secret"]

        front.cut()
        down_since = time.monotonic()
        for n in range(early_orders):
            place_and_pay(host, market, f"early-{n}")
        time.sleep(max(0.0, down_since + down_hours / 2 * hour - time.monotonic()))
        for n in range(later_orders):
            place_and_pay(host, market, f"later-{n}")
        early = 2 * early_orders  # two events per order: created, paid
        wait_until(
            lambda: (
                WebhookDelivery.objects.filter(
                    endpoint_id=endpoint["id"], attempt_count__gte=5
                ).count()
                >= early
            ),
            timeout=30 + 8 * hour,
            message="the early deliveries to have been retried for hours",
        )
        time.sleep(max(0.0, down_since + down_hours * hour - time.monotonic()))
        observed["hours down (scaled)"] = round((time.monotonic() - down_since) / hour, 1)
        observed["received while down"] = len(received_ids(receiver))
        front.restore()

        owed = set(
            Event.objects.filter(recipients__partner_id=host.partner["id"]).values_list(
                "pk", flat=True
            )
        )
        back = time.monotonic()
        wait_until(
            lambda: (
                owed <= received_ids(receiver)
                and not WebhookDelivery.objects.filter(endpoint_id=endpoint["id"], status="pending")
            ),
            timeout=delivery_timeout + 10 * hour,
            message=lambda: f"{len(owed - received_ids(receiver))} of {len(owed)} events",
        )
        observed["hours until all arrived after it was back (scaled)"] = round(
            (time.monotonic() - back) / hour, 1
        )
        deliveries = list(host.webhook_endpoints.deliveries(endpoint["id"]))
        observed["events owed"] = len(owed)
        observed["deliveries by attempts"] = dict(
            sorted(Counter(d["attempt_count"] for d in deliveries).items())
        )
        observed["errors of the failed attempts"] = sorted(
            {a["error"] for d in deliveries for a in d["attempts"] if not a["succeeded"]}
        )
        observed["endpoint status"] = host.webhook_endpoints.get(endpoint["id"])["status"]
        return Outcome(
            Journal(),
            webhooks=webhook_audit(
                endpoint_id=endpoint["id"],
                partner_id=host.partner["id"],
                received_ids=received_ids(receiver),
            ),
            observed=observed,
            details={"deliveries": deliveries},
        )
    finally:
        front.close()
        receiver.stop()


# --- Load ----------------------------------------------------------------------------------------


class InventoryWatch(Worker):
    """Reads the catalog over the API while the load runs: the lowest inventory ever seen."""

    def __init__(self, name, journal, stop, *, market: Marketplace, pause: float = 0.25) -> None:
        super().__init__(name, journal, stop)
        self.client = market.client(market.fulfiller.key)
        self.lowest: dict[str, int] = {}
        self.reads = 0
        self.pause = pause

    def step(self) -> bool:
        for product in self.client.products.list(page_size=50):
            seen = self.lowest.get(product["id"], product["inventory"])
            self.lowest[product["id"]] = min(seen, product["inventory"])
        self.reads += 1
        time.sleep(self.pause)
        return True


def load(
    stack: LiveStack,
    *,
    ops_key: str,
    finance_key: str,
    host_apps: int = 8,
    threads: int = 4,
    seconds: float = 20,
    max_orders: int = 4000,
    products: int = 4,
    scarce: int = 25,
    refunders: int = 2,
) -> Outcome:
    """``host_apps`` x ``threads`` checkouts order at once, for ``seconds`` or ``max_orders``,
    whichever comes first, while the fulfillment partner accepts and ships, support refunds
    and cancels, and a watcher reads the inventory. One product has only ``scarce`` units."""
    market = build_marketplace(
        stack.base_url,
        ops_key=ops_key,
        finance_key=finance_key,
        host_apps=host_apps,
        products=products,
    )
    try:
        hot = market.products[0]
        market.fulfiller.products.update(hot["id"], inventory=scarce)
        market.initial_inventory[hot["id"]] = scarce

        journal, stop = Journal(), threading.Event()
        shared = budget(count=max_orders, seconds=seconds)
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
            for t in range(threads)
        ]
        watch = InventoryWatch("inventory-watch", journal, stop, market=market)
        helpers: list[Worker] = [Fulfiller("warehouse", journal, stop, market=market), watch]
        helpers += [
            Refunder(f"support{n}", journal, stop, market=market, host=market.host_apps[n], seed=n)
            for n in range(min(refunders, host_apps))
        ]
        started = time.monotonic()
        run_threads(shoppers, helpers, stop, timeout=seconds + 120)
        elapsed = time.monotonic() - started

        result = audit(journal, market.initial_inventory)
        created = journal.of("create", "resend", "twin", ok=True)
        observed = {
            "checkouts": len(shoppers),
            "elapsed_s": round(elapsed, 1),
            "orders per second": round(result.figures["orders"] / elapsed, 1),
            "lowest inventory seen over the API": min(watch.lowest.values()),
            "catalog reads": watch.reads,
            "told insufficient_inventory": sum(
                1 for c in journal.of("create") if c.code == "insufficient_inventory"
            ),
            "resends": len(journal.of("resend")),
            "resends replayed (Idempotent-Replayed: true)": sum(
                1 for c in journal.of("resend", ok=True) if c.replayed
            ),
            "twins (same POST twice at once)": len(journal.of("twin")),
            "buyers answered 2xx": len({c.reference for c in created}),
        }
        return Outcome(journal, orders=result, observed=observed)
    finally:
        market.close()


def _advisory_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
            " AND l.pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


# --- A pool process killed mid settlement run ------------------------------------------------

# Each settlement entry takes ``delay`` seconds to insert; the one posted after ``at`` entries
# (one of the kill points) takes ``hold`` seconds, and the kill lands in it: the dead process's
# PostgreSQL session lives on until that statement ends, holding the run's lock, as a session
# whose client died in the middle of a long statement does.
SLOW_SETTLEMENT_ENTRIES = """
CREATE OR REPLACE FUNCTION test_slow_settlement() RETURNS trigger AS $$
BEGIN
    IF NEW.kind = 'settlement' THEN
        IF (SELECT count(*) FROM commissions_ledgerentry WHERE kind = 'settlement')
                = ANY(ARRAY[%(at)s]::bigint[]) THEN
            PERFORM pg_sleep(%(hold)s);
        ELSE
            PERFORM pg_sleep(%(delay)s);
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER test_slow_settlement BEFORE INSERT ON commissions_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION test_slow_settlement();
"""
DROP_SLOW = """
DROP TRIGGER IF EXISTS test_slow_settlement ON commissions_ledgerentry;
DROP FUNCTION IF EXISTS test_slow_settlement();
"""


def sales_released_yesterday(*, brands: int) -> tuple:
    """``brands`` brands (one fulfillment partner, one creator) each with a sale whose return
    window closed yesterday; returns (yesterday, the payees)."""

    yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday -= timedelta(days=1)
    factories.CommissionPlanFactory(effective_from=yesterday - timedelta(days=60))
    fulfillment, creator = factories.FulfillmentFactory(), factories.CreatorFactory()
    host_app = factories.HostAppFactory()
    made = [factories.BrandFactory(fulfillment_partner=fulfillment) for _ in range(brands)]
    for brand in made:
        flows.sell(
            SimpleNamespace(brand=brand, host_app=host_app, creator=creator),
            items=((4200, 1),),
            at=yesterday + timedelta(hours=1),
            released_at=yesterday + timedelta(hours=2),
        )
    return yesterday.date(), [*made, fulfillment, creator]


def pool_process_killed_mid_settlement(
    stack: LiveStack,
    *,
    finance_key: str,
    brands: int = 6,
    kills: int = 1,
    entry_delay: float = 0.2,
    hold: float = 3.0,
) -> Outcome:
    """Finance starts a settlement run over the API; the pool process running it is SIGKILLed
    ``kills`` times while it posts the payees' entries (made slow by a trigger), each time in
    the middle of a statement that lasts ``hold`` seconds, so the task comes back while the dead
    process's session still holds the run's lock. The worker's main process stays; the run
    must finish by itself, paying everyone once."""

    def settled() -> int:
        return LedgerEntry.objects.filter(kind=EntryKind.SETTLEMENT).count()

    period_end, payees = sales_released_yesterday(brands=brands)
    owed = {p.pk: flows.available(p) for p in payees}
    stack.restart_worker(env={"DJANGO_SETTINGS_MODULE": "tests.system.worker_settings"})
    finance = LiveCommerceClient(stack.base_url, finance_key)
    observed: dict = {"payees": len(payees), "kills": []}
    targets = [max((n + 1) * len(payees) // (kills + 1), 1) for n in range(kills)]
    with connection.cursor() as cursor:
        cursor.execute(
            SLOW_SETTLEMENT_ENTRIES
            % {
                "delay": float(entry_delay),
                "hold": float(hold),
                "at": ",".join(str(t) for t in targets),
            }
        )
    try:
        run = finance.settlements.run(period_end=period_end, currency="USD")
        for target in targets:
            wait_until(lambda t=target: settled() >= t, timeout=120, message="progress")
            time.sleep(min(0.3, hold / 4))  # inside the next entry's long statement
            status = SettlementRun.objects.get(pk=run["id"]).status
            killed = stack.kill_pool_processes()
            time.sleep(0.3)
            observed["kills"].append(
                {
                    "entries posted": settled(),
                    "run status": status,
                    "pids": len(killed),
                    "run lock still held by the dead session": _advisory_locks() > 0,
                }
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(DROP_SLOW)
    try:
        wait_until(
            lambda: finance.settlements.get_run(run["id"])["status"] == "completed",
            timeout=120,
            message=lambda: f"the run to finish:\n{stack.worker.log_tail(30)}",
        )
    finally:
        finance.close()

    finished = SettlementRun.objects.get(pk=run["id"])
    lost = []
    for payee in payees:
        settlements = list(Settlement.objects.filter(partner=payee))
        if len(settlements) != 1:
            lost.append(f"{payee.pk} has {len(settlements)} settlements")
            continue
        [settlement] = settlements
        events = Event.objects.filter(type="settlement.created", object_id=settlement.pk).count()
        if settlement.net_payout != owed[payee.pk] or flows.in_payout(payee) != owed[payee.pk]:
            lost.append(f"{payee.pk} owed {owed[payee.pk]}, settled {settlement.net_payout}")
        if flows.available(payee) != 0:
            lost.append(f"{payee.pk} still has {flows.available(payee)} available")
        if events != 1:
            lost.append(f"{payee.pk}'s settlement has {events} settlement.created events")
    if settled() != len(payees):
        lost.append(f"{settled()} settlement entries for {len(payees)} payees")
    observed.update(
        {
            "run attempts": finished.attempts,
            "settlements": finished.settlement_count,
            "settlement entries": settled(),
            "worker main process still running": stack.worker.running,
        }
    )
    return Outcome(Journal(), orders=Audit(figures={}, lost=lost), observed=observed)
