"""Fixtures for the catalog, live session and order tests: a brand's product, a live show, and
an API client for every role."""

import pytest

from tests import factories
from tests.conftest import client_for


@pytest.fixture(autouse=True)
def commission_plan(db):
    """A plan in force, so that orders can be paid (the ledger itself is tested elsewhere)."""
    return factories.CommissionPlanFactory()


@pytest.fixture
def product(brand):
    return factories.ProductFactory(brand=brand, price=1999, currency="USD", inventory=100)


@pytest.fixture
def live_session(host_app, creator, product):
    session = factories.LiveSessionFactory(producer=host_app, creator=creator, host_apps=[host_app])
    session.products.set([product])
    return session


@pytest.fixture
def roles(host_client, fulfillment_client, brand_client, creator_client, ops, finance):
    """Every kind of caller, each one a party to the orders the ``host_app`` places."""
    return {
        "host_app": host_client,
        "fulfillment": fulfillment_client,
        "brand": brand_client,
        "creator": creator_client,
        "ops": ops,
        "finance": finance,
    }


@pytest.fixture
def outsiders(db):
    """Partners of every kind with no part in the fixtures' orders, products or sessions."""
    other_fulfillment = factories.FulfillmentFactory()
    return {
        "host_app": client_for(partner=factories.HostAppFactory()),
        "fulfillment": client_for(partner=other_fulfillment),
        "brand": client_for(partner=factories.BrandFactory(fulfillment_partner=other_fulfillment)),
        "creator": client_for(partner=factories.CreatorFactory()),
    }
