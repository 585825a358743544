"""Fixtures for the trust tests (issue 18): the orders' fixtures, reused."""

from tests.orders.conftest import (  # noqa: F401
    commission_plan,
    live_session,
    outsiders,
    product,
    roles,
)
from tests.webhooks.conftest import receiver  # noqa: F401
