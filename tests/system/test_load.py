"""A bounded load test on loopback: many host apps order at once while the fulfillment partner
accepts and ships and support refunds; afterwards nothing is lost, doubled or oversold.

Scaled down for CI: 8 host apps x 4 checkout threads, for 20 s or 4,000 orders, whichever comes
first (``bench/load.py`` runs it full size). One product is scarce, so checkouts race for its
last units and some are told ``409 insufficient_inventory``; some POSTs are sent again with the
same Idempotency-Key after their answer, and some twice at once.
"""

import pytest

from tests.system import scenarios

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def test_many_host_apps_ordering_at_once_lose_nothing(live_stack, ops_key, finance_key):
    outcome = scenarios.load(
        live_stack,
        ops_key=ops_key,
        finance_key=finance_key,
        host_apps=8,
        threads=4,
        seconds=20,
        max_orders=4000,
        scarce=25,
    )

    print(outcome.report())
    # nothing lost or doubled; the ledger balances; inventory conserved, never negative
    assert outcome.lost == []
    seen = outcome.observed
    assert seen["lowest inventory seen over the API"] >= 0 and seen["catalog reads"] > 0
    summary = outcome.journal.summary()
    for kind in ("create", "pay", "resend", "twin", "accept", "ship", "refund"):
        assert summary.get(kind, {}).get("ok", 0) > 0, (kind, summary)
    assert summary["create"]["failed"] == summary["pay"]["failed"] == 0, summary
    # the scarce product ran out: checkouts were told so rather than oversold
    assert seen["told insufficient_inventory"] > 0
    # every resend was a replay of the first answer, and each buyer has one order
    assert seen["resends replayed (Idempotent-Replayed: true)"] == seen["resends"] > 0
    assert seen["buyers answered 2xx"] == outcome.orders.figures["orders"]
