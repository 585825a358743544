"""Property-based: any plans, orders, payments, refunds, cancels and completions keep the ledger
exact, in currencies with 0, 2 and 3 decimals.

Each example runs in a transaction rolled back at its end, so it sees only its own ledger.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from commissions.choices import AccountPurpose as P
from commissions.choices import EntryKind
from commissions.models import LedgerEntry, LedgerLine
from commissions.selectors import order_breakdown
from livecommerce.errors import AppError
from orders.choices import OrderStatus
from orders.models import Order
from tests import factories, flows

pytestmark = pytest.mark.django_db

CATEGORIES = ("beauty", "shoes")


@st.composite
def plans(draw, currency: str):
    platform = draw(st.integers(0, 10_000))
    creator = draw(st.integers(0, 10_000 - platform))
    fulfillment = draw(st.integers(0, 10_000 - platform - creator))
    fee = draw(st.sampled_from([0, 0, 1, 3, 150, 10_000]))
    return {
        "platform_rate_bps": platform,
        "creator_rate_bps": creator,
        "fulfillment_rate_bps": fulfillment,
        "fulfillment_fee_fixed": fee,
        "currency": currency if fee else draw(st.sampled_from(["", currency])),
        "category": draw(st.sampled_from(["", "", *CATEGORIES])),
        "days_ago": draw(st.integers(1, 30)),
    }


GENERAL = {
    "platform_rate_bps": 1000,
    "creator_rate_bps": 700,
    "fulfillment_rate_bps": 300,
    "fulfillment_fee_fixed": 0,
    "currency": "",
    "category": "",
    "days_ago": 60,
}
prices = st.one_of(st.integers(0, 9), st.integers(10, 5_000), st.integers(5_000, 10**8))
items = st.tuples(prices, st.integers(1, 3), st.sampled_from(CATEGORIES))
orders = st.fixed_dictionaries(
    {
        "items": st.lists(items, min_size=1, max_size=3),
        "shipping": st.sampled_from([0, 1, 500, 999]),
        "tax": st.sampled_from([0, 7, 516]),
        "creator": st.booleans(),
    }
)
# (what, which order, which line, how much of what is left in percent)
actions = st.tuples(
    st.sampled_from(["refund_line", "refund_amount", "refund_extras", "cancel", "complete"]),
    st.integers(0, 3),
    st.integers(0, 2),
    st.integers(1, 100),
)


@st.composite
def scenarios(draw):
    currency = draw(st.sampled_from(["JPY", "USD", "KWD"]))
    return {
        "currency": currency,
        # Mostly with a plan for every line; sometimes only category plans, so some orders
        # find no plan in force.
        "plans": draw(st.lists(plans(currency), min_size=1, max_size=3))
        + draw(st.sampled_from([[GENERAL], [GENERAL], [GENERAL], []])),
        "orders": draw(st.lists(orders, min_size=1, max_size=4)),
        "actions": draw(st.lists(actions, max_size=10)),
    }


def run(scenario) -> list[Order]:
    """Build the scenario, pay every order, then play the actions; returns the paid orders."""
    currency = scenario["currency"]
    host_app = factories.HostAppFactory()
    brand = factories.BrandFactory()
    creator = factories.CreatorFactory()
    for spec in scenario["plans"]:
        factories.CommissionPlanFactory(
            platform_rate_bps=spec["platform_rate_bps"],
            creator_rate_bps=spec["creator_rate_bps"],
            fulfillment_rate_bps=spec["fulfillment_rate_bps"],
            fulfillment_fee_fixed=spec["fulfillment_fee_fixed"],
            currency=spec["currency"],
            category=spec["category"],
            effective_from=timezone.now() - timedelta(days=spec["days_ago"]),
        )

    paid: list[Order] = []
    for spec in scenario["orders"]:
        order = flows.make_order(
            brand=brand,
            host_app=host_app,
            currency=currency,
            items=spec["items"],
            shipping=spec["shipping"],
            tax=spec["tax"],
            creator=creator if spec["creator"] else None,
        )
        try:
            with transaction.atomic():
                paid.append(flows.pay(order))
        except AppError as error:
            # No plan covers some line: the order cannot be paid and nothing is posted.
            assert error.code == "no_commission_plan"
            assert not LedgerEntry.objects.filter(order=order).exists()
    if not paid:
        return paid

    for what, which, line_index, percent in scenario["actions"]:
        order = paid[which % len(paid)]
        order.refresh_from_db()
        left = order.total - order.refunded_amount
        # complete and cancel move a paid order (once: it is then completed or canceled)
        if what == "complete" and order.status == OrderStatus.PAID:
            flows.complete(order)
        elif what == "cancel" and order.status == OrderStatus.PAID:
            flows.cancel(order)
        elif what == "refund_amount" and left:
            flows.refund(order, amount=max(1, left * percent // 100))
        elif what == "refund_line" and left:
            lines = list(order.lines.order_by("position"))
            line = lines[line_index % len(lines)]
            units_left = line.quantity - line.refunded_quantity
            if units_left and line.subtotal > line.refunded_amount:
                flows.refund(order, units={line: max(1, units_left * percent // 100)})
        elif what == "refund_extras" and left:
            # the services reach shipping and tax once the merchandise is refunded: all of what
            # is left of it, and a part of what is left of shipping and tax
            merchandise = sum(line.subtotal - line.refunded_amount for line in order.lines.all())
            extras = left - merchandise
            if merchandise + extras * percent // 100:
                flows.refund(order, amount=merchandise + extras * percent // 100)
        check_invariants(paid)
    check_invariants(paid, per_order=True)
    return paid


def check_invariants(paid: list[Order], *, per_order: bool = False) -> None:
    """The ledger-wide invariants after every step; with ``per_order``, each order's too."""
    # Every entry balances (and the database's deferred check agrees, right now).
    unbalanced = (
        LedgerLine.objects.values("entry_id")
        .annotate(d=Sum("debit"), c=Sum("credit"))
        .filter(~Q(d=F("c")))
    )
    assert not unbalanced.exists()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    # No balance is ever negative, in total or for any one order.
    per_account = flows.account_balances()
    for (purpose, _, _), amount in per_account.items():
        held = -amount if purpose == P.BUYER_FUNDS_CLEARING else amount
        assert held >= 0, (purpose, amount)
    per_order_account = (
        LedgerLine.objects.values("order_id", "account_id", "purpose")
        .annotate(d=Sum("debit"), c=Sum("credit"))
        .exclude(purpose=P.BUYER_FUNDS_CLEARING)
        .filter(d__gt=F("c"))
    )
    assert not per_order_account.exists()

    # The sum of all balances equals the buyer funds held, which is what buyers paid less refunds.
    held = -per_account.pop((P.BUYER_FUNDS_CLEARING, None, paid[0].currency), 0)
    assert sum(per_account.values()) == held
    orders = Order.objects.filter(pk__in=[o.pk for o in paid])
    assert held == sum(o.total - o.refunded_amount for o in orders)
    if not per_order:
        return

    for order in orders:
        # The shares of every line sum to what was paid for it.
        sale = LedgerEntry.objects.get(order=order, kind=EntryKind.SALE)
        for line in order.lines.all():
            rows = sale.lines.filter(order_line=line)
            paid_for = rows.filter(purpose=P.BUYER_FUNDS_CLEARING).aggregate(s=Sum("debit"))["s"]
            shares = rows.exclude(purpose=P.BUYER_FUNDS_CLEARING).aggregate(s=Sum("credit"))["s"]
            assert (paid_for or 0) == (shares or 0) == line.subtotal
        # The breakdown adds up.
        totals = order_breakdown(order=order)["totals"]
        parts = (
            "platform_commission",
            "creator_commission",
            "fulfillment_fees",
            "shipping",
            "tax",
            "brand_net",
        )
        assert totals["paid"] == order.total
        assert totals["refunded"] == order.refunded_amount
        assert sum(totals[p] for p in parts) == totals["paid"] - totals["refunded"]
        # After a full refund every party's balance for the order is zero.
        if order.refunded_amount == order.total:
            assert set(flows.account_balances(order=order).values()) <= {0}
        # One entry per posting: one sale, at most one release.
        kinds = dict(
            LedgerEntry.objects.filter(order=order)
            .values_list("kind")
            .annotate(n=Count("id"))
            .values_list("kind", "n")
        )
        assert kinds[EntryKind.SALE] == 1 and kinds.get(EntryKind.RELEASE, 0) <= 1


@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_any_sequence_keeps_the_ledger_exact(scenario):
    with transaction.atomic():
        paid = run(scenario)
        kinds = set(LedgerEntry.objects.values_list("kind", flat=True))
        event(f"{scenario['currency']}: {len(paid)} paid, entries {sorted(kinds)}")
        transaction.set_rollback(True)
