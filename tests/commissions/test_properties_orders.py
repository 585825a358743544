"""Property-based, through the order services themselves: random orders in JPY, USD and KWD are
paid, refunded by quantity or by amount, canceled, delivered and completed exactly as the API
would do it, and the ledger keeps every invariant (see test_properties.py for the list)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from commissions.models import LedgerEntry
from livecommerce.errors import AppError
from livecommerce.money import to_decimal_string
from orders import services as order_services
from orders.models import Order
from tests import factories
from tests.commissions.test_properties import check_invariants

pytestmark = pytest.mark.django_db

ACTOR = "test"
prices = st.one_of(st.integers(1, 9), st.integers(10, 100_000))
scenarios = st.fixed_dictionaries(
    {
        "currency": st.sampled_from(["JPY", "USD", "KWD"]),
        "rates": st.sampled_from([(800, 500, 300), (3333, 3333, 3333), (0, 0, 0), (10_000, 0, 0)]),
        "fee": st.sampled_from([0, 1, 150]),
        "orders": st.lists(
            st.fixed_dictionaries(
                {
                    "items": st.lists(st.tuples(prices, st.integers(1, 3)), min_size=1, max_size=3),
                    "shipping": st.sampled_from([0, 1, 500]),
                    "tax": st.sampled_from([0, 7, 516]),
                    "live": st.booleans(),
                }
            ),
            min_size=1,
            max_size=3,
        ),
        "actions": st.lists(
            st.tuples(
                st.sampled_from(["refund_units", "refund_amount", "cancel", "deliver", "close"]),
                st.integers(0, 2),
                st.integers(0, 2),
                st.integers(1, 100),
            ),
            max_size=8,
        ),
    }
)


def run(scenario) -> list[Order]:
    currency = scenario["currency"]
    platform, creator_rate, fulfillment = scenario["rates"]
    factories.CommissionPlanFactory(
        platform_rate_bps=platform,
        creator_rate_bps=creator_rate,
        fulfillment_rate_bps=fulfillment,
        fulfillment_fee_fixed=scenario["fee"],
        currency=currency,
    )
    host_app = factories.HostAppFactory()
    brand = factories.BrandFactory()
    session = factories.LiveSessionFactory(producer=host_app)
    paid: list[Order] = []
    for spec in scenario["orders"]:
        products = [
            factories.ProductFactory(brand=brand, price=price, currency=currency, inventory=1000)
            for price, _ in spec["items"]
        ]
        session.products.add(*products)
        order = order_services.order_create(
            host_app=host_app,
            lines=[
                {"product": p.pk, "quantity": qty}
                for p, (_, qty) in zip(products, spec["items"], strict=True)
            ],
            live_session_id=session.pk if spec["live"] else None,
            shipping_amount=to_decimal_string(spec["shipping"], currency),
            tax_amount=to_decimal_string(spec["tax"], currency),
            actor=ACTOR,
        )
        paid.append(
            order_services.order_pay(
                order=order,
                amount=to_decimal_string(order.total, currency),
                payment_reference="pi",
                actor=ACTOR,
            )
        )

    for what, which, line_index, percent in scenario["actions"]:
        order = Order.objects.get(pk=paid[which % len(paid)].pk)
        try:
            with transaction.atomic():
                act(order, what, line_index, percent)
        except AppError as error:
            # A move the status table refuses, or nothing left to refund: nothing is posted.
            assert error.code in {"invalid_transition", "refund_exceeds_paid", "invalid_amount"}
        check_invariants(paid)
    check_invariants(paid, per_order=True)
    return paid


def act(order: Order, what: str, line_index: int, percent: int) -> None:
    if what == "refund_units":
        lines = list(order.lines.order_by("position"))
        line = lines[line_index % len(lines)]
        units = max(1, (line.quantity - line.refunded_quantity) * percent // 100)
        order_services.refund_create(
            order=order, lines=[{"line": line.pk, "quantity": units}], actor=ACTOR
        )
    elif what == "refund_amount":
        left = order.total - order.refunded_amount
        amount = to_decimal_string(max(1, left * percent // 100), order.currency)
        order_services.refund_create(order=order, amount=amount, actor=ACTOR)
    elif what == "cancel":
        order_services.order_cancel(order=order, actor=ACTOR)
    elif what == "deliver":
        order_services.order_accept(order=order, actor=ACTOR)
        order_services.order_ship(order=order, carrier="UPS", tracking_number="1Z", actor=ACTOR)
        order_services.order_deliver(order=order, actor=ACTOR)
    elif what == "close":
        order_services.order_close_return_windows(now=timezone.now() + timedelta(days=365))


@pytest.mark.slow
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
def test_any_sequence_through_the_order_services_keeps_the_ledger_exact(scenario):
    with transaction.atomic():
        paid = run(scenario)
        statuses = sorted({o.status for o in Order.objects.filter(pk__in=[o.pk for o in paid])})
        kinds = sorted(set(LedgerEntry.objects.values_list("kind", flat=True)))
        event(f"statuses {statuses}, entries {kinds}")
        transaction.set_rollback(True)
