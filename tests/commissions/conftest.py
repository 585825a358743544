"""Fixtures for the commissions tests: a standard plan and a set of parties for one order."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories


@pytest.fixture
def plan(db):
    """The platform's default plan: 8% platform, 5% creator, 3% fulfillment, no fixed fee."""
    return factories.CommissionPlanFactory(name="Default")


@pytest.fixture
def usd_plan(db):
    """A USD plan with a fixed fulfillment fee of 1.50 per order."""
    return factories.CommissionPlanFactory(
        name="USD with fixed fee",
        currency="USD",
        fulfillment_fee_fixed=150,
        effective_from=timezone.now() - timedelta(days=10),
    )
