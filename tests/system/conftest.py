"""Fixtures for system tests: the service's real processes, on the test database.

``live_stack`` (per test, on top of one stack per test session and xdist worker) is a
``tests.system.stack.LiveStack``: gunicorn with 2 workers, a Celery worker on every queue and,
when a test calls ``live_stack.start_beat()``, Celery beat; all on 127.0.0.1 with ports the
kernel picks, against pytest-django's test database and a Redis database of their own (one of
9-11 and 15 that no other stack holds), reached through proxies a test can cut. What a test gets::

    live_stack.base_url              # http://127.0.0.1:<port>, for clients.LiveCommerceClient
    live_stack.redis_url             # the broker's Redis database (direct)
    live_stack.restart_worker(env={...}, kill=True)   # SIGKILL the worker, start a new one
    live_stack.start_beat()          # beat, sweeping webhook deliveries every second
    live_stack.db_proxy.outage()     # the database unreachable for a with-block
    live_stack.broker_proxy.cut() / .restore()
    live_stack.terminate_db_sessions()

Tests using it are marked ``pytest.mark.system`` and ``pytest.mark.django_db(transaction=True)``
(the processes only see committed data). Only the first key is made in-process, the way an
operator runs ``create_staff_key``: ``ops_key``, ``finance_key``; ``market`` builds a small
marketplace over HTTP (``tests.system.workload.build_marketplace``). When a test fails, the
tails of every process's log are attached to its report.

After each test the stack is put back as it was: proxies restored, beat stopped, a worker
started with the default environment if the test changed or killed it, and nothing of ours
left running in the database before pytest-django empties the tables.
"""

from collections.abc import Iterator

import pytest
from django.db import connection

from partners.choices import StaffRole
from partners.services import api_key_create
from tests.system.stack import LiveStack
from tests.system.workload import Marketplace, build_marketplace


@pytest.fixture(scope="session")
def _live_stack_session(
    django_db_setup, django_db_blocker, tmp_path_factory
) -> Iterator[LiveStack]:
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.skip("system tests run on PostgreSQL (set DATABASE_URL)")
        database = dict(connection.settings_dict)
    stack = LiveStack(database=database, log_dir=tmp_path_factory.mktemp("system-logs"))
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    yield stack
    stack.stop()


@pytest.fixture
def live_stack(_live_stack_session: LiveStack, transactional_db) -> Iterator[LiveStack]:
    stack = _live_stack_session
    _restore_proxies(stack)
    if stack.web is None or not stack.web.running:
        stack.start_web()
    if stack.worker is None or not stack.worker.running or stack.worker_env:
        # the last test changed the worker's environment or killed it; it is idle by now
        stack.restart_worker(kill=True)
    yield stack
    _restore_proxies(stack)
    stack.stop_beat()
    stack.wait_quiet()


def _restore_proxies(stack: LiveStack) -> None:
    if stack.db_proxy.is_down:
        stack.db_proxy.restore()
    if stack.broker_proxy.is_down:
        stack.broker_proxy.restore()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    stack = getattr(item, "funcargs", {}).get("live_stack")
    if report.failed and isinstance(stack, LiveStack):
        for title, text in stack.log_sections():
            report.sections.append((title, text))


@pytest.fixture
def ops_key(transactional_db) -> str:
    _, raw = api_key_create(name="bootstrap", role=StaffRole.OPS)
    return raw


@pytest.fixture
def finance_key(transactional_db) -> str:
    _, raw = api_key_create(name="bootstrap", role=StaffRole.FINANCE)
    return raw


@pytest.fixture
def market(live_stack, ops_key, finance_key) -> Iterator[Marketplace]:
    """One fulfillment partner, one brand, one host app, a plan and three products (1,000 each)."""
    made = build_marketplace(live_stack.base_url, ops_key=ops_key, finance_key=finance_key)
    yield made
    made.close()
