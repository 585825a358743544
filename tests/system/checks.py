"""After the traffic: what the clients were told, against what the database holds.

``audit(journal, initial_inventory)`` returns an ``Audit``: the figures (orders, payments,
refunds, ledger entries, what the clients saw) and ``lost``, every way something went missing or
happened twice. A fault or load test asserts ``audit.lost == []`` and prints the figures, so a
run states what was lost: nothing. Reads go straight to the database (this process's own
connection), not through the API, so nothing the API might hide escapes.

The invariants:

1. every order a client got a 2xx for exists, with the buyer it was placed for; an order whose
   create was not answered 2xx in the end (the client gave up in an outage) exists only if its
   Idempotency-Key holds the answer, so the client's next retry is told of it;
2. no buyer has two orders: one logical order per ``buyer.reference``, however many times its
   POST was retried, resent or sent twice at once, and every resend named the first order;
3. every payment a client got a 2xx for left the order paid; every paid order has exactly one
   ``sale`` entry, for its total; every refund has exactly one ``refund`` entry, for its amount,
   and an order's refunds add up to its ``refunded_amount``;
4. every ledger entry balances (debits = credits), and so does the whole ledger;
5. no product's inventory is negative, and none was lost or made up: for each product, the
   initial inventory = what is left + every unit sold and not put back;
6. the database's own guards are in place (the inventory CheckConstraint, the ledger's
   one-sided lines), so "never negative" held at every instant, not only at the end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, F, Q, Sum

from commissions.choices import EntryKind
from commissions.models import LedgerEntry, LedgerLine
from livecommerce.models import IdempotencyRecord
from orders.models import Order, OrderLine, Product, Refund
from partners.models import EventRecipient
from partners.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.system.workload import Journal


@dataclass
class Audit:
    figures: dict = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"{name}: {value}" for name, value in self.figures.items()]
        lines.append("lost: " + ("nothing" if not self.lost else f"{len(self.lost)} problems"))
        lines += [f"  - {problem}" for problem in self.lost[:50]]
        return "\n".join(lines)


def _sample(items, n: int = 5) -> str:
    items = list(items)
    return ", ".join(map(str, items[:n])) + (" ..." if len(items) > n else "")


def audit(journal: Journal, initial_inventory: dict[str, int]) -> Audit:
    result = Audit()
    lost = result.lost
    calls = journal.calls

    # 1-2. Orders: one per buyer, every answered one present.
    orders = {
        o["id"]: o
        for o in Order.objects.filter(product_lines_filter(initial_inventory)).values(
            "id", "buyer_reference", "status", "paid_at", "total", "refunded_amount"
        )
    }
    per_buyer = Counter(o["buyer_reference"] for o in orders.values())
    twice = [ref for ref, n in per_buyer.items() if n > 1]
    if twice:
        lost.append(f"{len(twice)} buyers got more than one order: {_sample(twice)}")
    created = [c for c in calls if c.kind in ("create", "resend", "twin") and c.ok]
    missing = [c.order_id for c in created if c.order_id not in orders]
    if missing:
        lost.append(
            f"{len(missing)} orders answered 2xx are not in the database: {_sample(missing)}"
        )
    # An order whose create got no 2xx in the end (the client gave up during an outage) may
    # exist only if its commit's acknowledgement was what got lost; then its key holds the
    # answer, and the client's next retry with that key is told about the order.
    by_reference = {o["buyer_reference"]: oid for oid, o in orders.items()}
    unanswered = {
        c.reference: c.key
        for c in calls
        if c.kind == "create" and not c.ok and c.reference in by_reference
    }
    answered = {c.reference for c in created}
    made_unanswered = {ref: key for ref, key in unanswered.items() if ref not in answered}
    kept = dict(
        IdempotencyRecord.objects.filter(
            key__in=made_unanswered.values(), in_progress=False, status_code=201
        ).values_list("key", "body")
    )
    unknowable = [
        by_reference[ref]
        for ref, key in made_unanswered.items()
        if by_reference[ref].encode() not in bytes(kept.get(key) or b"")
    ]
    if unknowable:
        lost.append(
            f"{len(unknowable)} orders were made but no retry can learn of them: "
            f"{_sample(unknowable)}"
        )
    wrong_buyer = [
        c.order_id
        for c in created
        if c.order_id in orders and orders[c.order_id]["buyer_reference"] != c.reference
    ]
    if wrong_buyer:
        lost.append(f"{len(wrong_buyer)} orders carry another buyer: {_sample(wrong_buyer)}")
    bad_resends = [
        c.detail
        for c in calls
        if c.kind in ("resend", "twin")
        and not c.ok
        and c.detail.startswith(("the resend", "twins"))
    ]
    if bad_resends:
        lost.append(
            f"{len(bad_resends)} idempotent resends made another order: {_sample(bad_resends)}"
        )
    first_by_key = {c.key: c.order_id for c in calls if c.kind == "create" and c.ok}
    diverged = [
        c.key
        for c in calls
        if c.kind in ("resend", "twin")
        and c.ok
        and first_by_key.get(c.key, c.order_id) != c.order_id
    ]
    if diverged:
        lost.append(f"{len(diverged)} keys answered with two different orders: {_sample(diverged)}")

    # 3. Payments, sales and refunds in the ledger.
    paid_ok = {c.order_id for c in calls if c.kind == "pay" and c.ok}
    unpaid = [oid for oid in paid_ok if oid not in orders or orders[oid]["paid_at"] is None]
    if unpaid:
        lost.append(f"{len(unpaid)} payments answered 2xx left no paid order: {_sample(unpaid)}")
    paid_orders = {oid for oid, o in orders.items() if o["paid_at"] is not None}
    sales = {
        row["order_id"]: row
        for row in LedgerEntry.objects.filter(kind=EntryKind.SALE, order_id__in=orders)
        .values("order_id")
        .annotate(n=Count("id", distinct=True), debit=Sum("lines__debit"))
    }
    no_sale = [oid for oid in paid_orders if oid not in sales]
    if no_sale:
        lost.append(f"{len(no_sale)} paid orders have no sale entry: {_sample(no_sale)}")
    double_sale = [oid for oid, row in sales.items() if row["n"] != 1]
    if double_sale:
        lost.append(f"{len(double_sale)} orders have several sale entries: {_sample(double_sale)}")
    wrong_sale = [
        oid for oid, row in sales.items() if row["n"] == 1 and row["debit"] != orders[oid]["total"]
    ]
    if wrong_sale:
        lost.append(
            f"{len(wrong_sale)} sale entries differ from the order total: {_sample(wrong_sale)}"
        )
    sale_unpaid = [oid for oid in sales if oid not in paid_orders]
    if sale_unpaid:
        lost.append(f"{len(sale_unpaid)} sale entries for unpaid orders: {_sample(sale_unpaid)}")

    refunds = list(
        Refund.objects.filter(order_id__in=orders)
        .annotate(entries=Count("ledger_entries", distinct=True))
        .values("id", "order_id", "amount", "entries")
    )
    refund_debits = dict(
        LedgerLine.objects.filter(entry__refund_id__in=[r["id"] for r in refunds])
        .values("entry__refund_id")
        .annotate(d=Sum("debit"))
        .values_list("entry__refund_id", "d")
    )
    bad_refunds = [
        r["id"] for r in refunds if r["entries"] != 1 or refund_debits.get(r["id"]) != r["amount"]
    ]
    if bad_refunds:
        lost.append(
            f"{len(bad_refunds)} refunds without exactly one matching entry: {_sample(bad_refunds)}"
        )
    refunded: Counter = Counter()
    for r in refunds:
        refunded[r["order_id"]] += r["amount"]
    off = [oid for oid, o in orders.items() if o["refunded_amount"] != refunded.get(oid, 0)]
    if off:
        lost.append(
            f"{len(off)} orders' refunded_amount differs from their refunds: {_sample(off)}"
        )

    # 4. The ledger balances, entry by entry and in all.
    unbalanced = list(
        LedgerLine.objects.values("entry_id", "currency")
        .annotate(d=Sum("debit"), c=Sum("credit"))
        .exclude(d=F("c"))
        .values_list("entry_id", flat=True)
    )
    if unbalanced:
        lost.append(f"{len(unbalanced)} ledger entries do not balance: {_sample(unbalanced)}")
    totals = LedgerLine.objects.aggregate(d=Sum("debit"), c=Sum("credit"))
    if (totals["d"] or 0) != (totals["c"] or 0):
        lost.append(f"the ledger does not balance: debits {totals['d']} != credits {totals['c']}")
    empty = LedgerEntry.objects.filter(lines__isnull=True).count()
    if empty:
        lost.append(f"{empty} ledger entries have no lines")

    # 5. Inventory: never negative, nothing lost or invented.
    inventory = dict(
        Product.objects.filter(pk__in=initial_inventory).values_list("pk", "inventory")
    )
    held = dict(
        OrderLine.objects.filter(product_id__in=initial_inventory)
        .values("product_id")
        .annotate(units=Sum(F("quantity") - F("restocked_quantity")))
        .values_list("product_id", "units")
    )
    for product_id, initial in initial_inventory.items():
        left, sold = inventory[product_id], held.get(product_id, 0) or 0
        if left < 0:
            lost.append(f"product {product_id} has negative inventory {left}")
        if left + sold != initial:
            lost.append(
                f"product {product_id}: {initial} at first, {left} left + {sold} sold"
                f" = {left + sold}"
            )

    # 6. The database refuses what the checks look for, at every instant.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conname IN"
            " ('product_inventory_gte_0', 'ledger_line_one_side_positive')"
        )
        guards = {name for (name,) in cursor.fetchall()}
    for guard in ("product_inventory_gte_0", "ledger_line_one_side_positive"):
        if guard not in guards:
            lost.append(f"the database constraint {guard} is missing")

    statuses = Counter(o["status"] for o in orders.values())
    result.figures = {
        "calls (after the client's own retries)": journal.summary(),
        "retries by the clients": len(journal.retries),
        "retried because": dict(
            Counter(
                r.code or (f"http {r.status}" if r.status else "network error")
                for r in journal.retries
            ).most_common(6)
        ),
        "calls not answered 2xx": Counter(
            f"{c.kind} {c.status or ''} {c.code or c.detail[:60]}".strip()
            for c in calls
            if not c.ok
        ).most_common(8),
        "orders made whose create was not answered 2xx (a retry replays them)": len(
            made_unanswered
        ),
        "orders": len(orders),
        "orders by status": dict(sorted(statuses.items())),
        "paid orders": len(paid_orders),
        "sale entries": sum(row["n"] for row in sales.values()),
        "refunds": len(refunds),
        "ledger entries": LedgerEntry.objects.count(),
        "ledger lines": LedgerLine.objects.count(),
        "inventory left": sum(inventory.values()),
        "units sold and kept": sum(v or 0 for v in held.values()),
    }
    return result


def product_lines_filter(initial_inventory: dict[str, int]):
    """Orders with a line of one of the products (this run's orders)."""

    return Q(pk__in=OrderLine.objects.filter(product_id__in=initial_inventory).values("order_id"))


@dataclass
class WebhookAudit:
    figures: dict = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"{name}: {value}" for name, value in self.figures.items()]
        lines.append("lost: " + ("nothing" if not self.lost else f"{len(self.lost)} problems"))
        lines += [f"  - {problem}" for problem in self.lost[:50]]
        return "\n".join(lines)


def webhook_audit(*, endpoint_id: str, partner_id: str, received_ids: set[str]) -> WebhookAudit:
    """Every event the partner should hear of has one delivery row, succeeded, and arrived.

    ``received_ids``: the ``webhook-id`` of every delivery the receiver verified (the event id).
    """

    result = WebhookAudit()
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    # The service's notices about this endpoint itself (webhook_endpoint.recovered after an
    # outage) go to the partner's other endpoints, not to this one.
    owed = set(
        EventRecipient.objects.filter(partner_id=partner_id, event__created__gte=endpoint.created)
        .exclude(event__object_id=endpoint_id, event__type__startswith="webhook_endpoint.")
        .values_list("event_id", flat=True)
    )
    deliveries = list(
        WebhookDelivery.objects.filter(endpoint_id=endpoint_id).values(
            "event_id", "status", "attempt_count"
        )
    )
    rows = Counter(d["event_id"] for d in deliveries)
    no_row = owed - set(rows)
    if no_row:
        result.lost.append(f"{len(no_row)} events have no delivery row: {_sample(no_row)}")
    not_done = [d["event_id"] for d in deliveries if d["status"] != "succeeded"]
    if not_done:
        result.lost.append(f"{len(not_done)} deliveries did not succeed: {_sample(not_done)}")
    never_arrived = owed - received_ids
    if never_arrived:
        result.lost.append(f"{len(never_arrived)} events never arrived: {_sample(never_arrived)}")
    if endpoint.status != "enabled":
        result.lost.append(f"the endpoint was disabled: {endpoint.disabled_reason}")
    attempts = Counter(d["attempt_count"] for d in deliveries)
    result.figures = {
        "events owed": len(owed),
        "delivery rows": len(deliveries),
        "arrived": len(owed & received_ids),
        "deliveries by attempts": dict(sorted(attempts.items())),
        "endpoint": endpoint.status,
    }
    return result
