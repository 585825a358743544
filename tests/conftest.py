"""Fixtures shared by every test: partners of each kind, their keys, and API clients."""

import celery
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from livecommerce.celery import app as celery_app
from partners.choices import StaffRole
from partners.services import api_key_create
from tests import factories


class KeyedClient(APIClient):
    """An API client that calls with one Bearer key; ``.caller`` names who that is."""

    def __init__(self, key: str, partner=None, role: str = "", **kwargs):
        super().__init__(**kwargs)
        self.key = key
        self.partner = partner
        self.role = role
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")


def client_for(partner=None, role: str = "") -> KeyedClient:
    """A client holding a fresh key for ``partner`` or for a staff ``role``."""
    _, raw = api_key_create(name="test", partner=partner, role=role)
    return KeyedClient(raw, partner=partner, role=role)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty default cache (throttle counts, failed authentications
    per address: every test client calls from 127.0.0.1)."""
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _tasks_app_stays_current():
    """Shared tasks publish through Celery's current app: a test that makes another app current
    (``Celery(...)`` without ``set_as_current=False``) would send every later test's tasks to
    its broker. That once made tests/webhooks/test_worker.py's worker receive nothing."""
    yield
    assert celery.current_app._get_current_object() is celery_app, (
        "this test left another Celery app current; create it with set_as_current=False"
    )


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def ops(db) -> KeyedClient:
    return client_for(role=StaffRole.OPS)


@pytest.fixture
def finance(db) -> KeyedClient:
    return client_for(role=StaffRole.FINANCE)


@pytest.fixture
def host_app(db):
    return factories.HostAppFactory()


@pytest.fixture
def fulfillment(db):
    return factories.FulfillmentFactory()


@pytest.fixture
def brand(db, fulfillment):
    return factories.BrandFactory(fulfillment_partner=fulfillment)


@pytest.fixture
def creator(db):
    return factories.CreatorFactory()


@pytest.fixture
def host_client(host_app) -> KeyedClient:
    return client_for(partner=host_app)


@pytest.fixture
def fulfillment_client(fulfillment) -> KeyedClient:
    return client_for(partner=fulfillment)


@pytest.fixture
def brand_client(brand) -> KeyedClient:
    return client_for(partner=brand)


@pytest.fixture
def creator_client(creator) -> KeyedClient:
    return client_for(partner=creator)
