"""Fixtures for the report tests: a few parties, a plan, and orders moved by the order services
(``tests.flows``), so the reports are tested against what the ledger really posts. ``at(...)``
stops the clock at a moment, which is how postings land on chosen UTC days.
"""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission, User

from commissions.models import CommissionPlan
from tests import factories
from tests.flows import complete, make_order, pay, refund


def at(moment: str):
    """Travel to ``moment`` (ISO, UTC) for the duration of a ``with`` block."""
    return time_machine.travel(datetime.fromisoformat(moment).replace(tzinfo=UTC), tick=False)


@pytest.fixture
def plan(db) -> CommissionPlan:
    """8% platform, 5% creator, 3% fulfillment, in force since 2020."""
    return factories.CommissionPlanFactory(
        name="Default", effective_from=datetime(2020, 1, 1, tzinfo=UTC)
    )


@pytest.fixture
def parties(db) -> dict:
    fulfiller = factories.FulfillmentFactory(name="Fulfiller A")
    host_a = factories.HostAppFactory(name="Host A")
    creator = factories.CreatorFactory(name="Creator A")
    return {
        "host_a": host_a,
        "host_b": factories.HostAppFactory(name="Host B"),
        "fulfiller": fulfiller,
        "brand_a": factories.BrandFactory(name="Brand A", fulfillment_partner=fulfiller),
        "brand_b": factories.BrandFactory(name="Brand B", fulfillment_partner=None),
        "creator": creator,
        "session": factories.LiveSessionFactory(producer=host_a, creator=creator, title="Show A"),
    }


@pytest.fixture
def scenario(plan, parties) -> dict:
    """Orders over several UTC days of March 2026, in USD and JPY, with refunds in later days.

    - 03-02: o1 (brand A, host A, creator, live session; 2 lines 25.00 x2 + 19.99, shipping
      5.00, tax 4.00); o2 (brand B, host B, no creator, 100.00); o3 in JPY (another currency).
    - 03-03: o4 (brand A, host B, creator, 33.33 x3).
    - 03-05: o1 partly refunded (one 25.00 unit), o2 refunded in full (a cancel), o1 completes.
    - 04-01: o5 (brand B, host A, 12.34), and o4 refunded by amount (10.00) a month later.
    """
    p = parties
    with at("2026-03-02T09:00:00"):
        o1 = pay(
            make_order(
                brand=p["brand_a"],
                host_app=p["host_a"],
                creator=p["creator"],
                live_session=p["session"],
                items=[(2500, 2), (1999, 1)],
                shipping=500,
                tax=400,
            )
        )
    with at("2026-03-02T23:59:59"):
        o2 = pay(make_order(brand=p["brand_b"], host_app=p["host_b"], items=[(10000, 1)]))
        o3 = pay(
            make_order(brand=p["brand_a"], host_app=p["host_a"], currency="JPY", items=[(5000, 1)])
        )
    with at("2026-03-03T00:00:00"):
        o4 = pay(
            make_order(
                brand=p["brand_a"], host_app=p["host_b"], creator=p["creator"], items=[(3333, 3)]
            )
        )
    with at("2026-03-05T12:00:00"):
        first_line = o1.lines.order_by("position").first()
        refund(o1, units={first_line: 1})
        refund(o2, amount=10000)
        complete(o1)
    with at("2026-04-01T08:00:00"):
        o5 = pay(make_order(brand=p["brand_b"], host_app=p["host_a"], items=[(1234, 1)]))
        refund(o4, amount=1000)
    return {"o1": o1, "o2": o2, "o3": o3, "o4": o4, "o5": o5, **p}


@pytest.fixture
def finance_user(db) -> User:
    """A Django staff user in the finance group (admin login), allowed to view ledger lines."""
    group, _ = Group.objects.get_or_create(name="finance")
    group.permissions.add(
        Permission.objects.get(content_type__app_label="commissions", codename="view_ledgerline")
    )
    user = User.objects.create_user("fin", password="pw-finance-1", is_staff=True)
    user.groups.add(group)
    return user
