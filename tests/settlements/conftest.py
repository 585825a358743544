"""Fixtures for settlement tests: a commission plan, one order's parties, days in the past, and
a real Celery worker on Redis for the tests that run settlements the way production does."""

import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from celery.exceptions import AlwaysEagerIgnored
from django.db import connection

from commissions.settlements.models import SettlementRunTrigger
from commissions.settlements.runs import settlement_run_execute
from commissions.settlements.scheduling import settlement_run_request
from livecommerce.celery import app as celery_app
from tests import factories
from tests.system.stack import WORKER_REDIS_DB_INDEXES, RedisClaim

BASE_DIR = Path(__file__).resolve().parents[2]


@dataclass
class Parties:
    host_app: object
    fulfillment: object
    brand: object
    creator: object


@pytest.fixture
def plan(db):
    """8% platform, 5% creator, 3% fulfillment, no fixed fee, in force for a month."""
    return factories.CommissionPlanFactory(
        name="Default", effective_from=datetime.now(UTC) - timedelta(days=60)
    )


@pytest.fixture
def parties(db, plan) -> Parties:
    fulfillment = factories.FulfillmentFactory()
    return Parties(
        host_app=factories.HostAppFactory(),
        fulfillment=fulfillment,
        brand=factories.BrandFactory(fulfillment_partner=fulfillment),
        creator=factories.CreatorFactory(),
    )


def day(days_ago: int, hour: int = 12) -> datetime:
    """A time ``days_ago`` days before today (UTC), at ``hour`` o'clock."""
    today = datetime.now(UTC).date()
    return datetime.combine(today - timedelta(days=days_ago), datetime.min.time(), tzinfo=UTC) + (
        timedelta(hours=hour)
    )


def date_ago(days_ago: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=days_ago)


def run_settlements(period_end: date, currency: str = "USD", *, scheduled: bool = False):
    """Start the run for the period (as the API or the schedule would) and execute it here."""
    trigger = SettlementRunTrigger.SCHEDULE if scheduled else SettlementRunTrigger.REQUEST
    run, _ = settlement_run_request(period_end=period_end, currency=currency, trigger=trigger)
    return settlement_run_execute(run_id=run.pk)


# --- A real Celery worker ---------------------------------------------------------------------


# The Redis database the ``broker`` fixture claimed for the running test (no other test run
# holds it: ``tests.system.stack.RedisClaim``).
_claimed: RedisClaim | None = None


def redis_url() -> str:
    assert _claimed is not None, "use the broker fixture"
    return _claimed.url


def worker_database_url() -> str:
    settings = connection.settings_dict
    return (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )


class CeleryWorker:
    """``celery -A livecommerce worker -Q default,webhooks,settlements`` as a subprocess, on
    this test's Redis database and PostgreSQL test database."""

    def __init__(self, log_path: Path, settings_module: str = "livecommerce.settings") -> None:
        self.log_path = log_path
        self.settings_module = settings_module
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "CeleryWorker":
        env = {
            **os.environ,
            "CELERY_BROKER_URL": redis_url(),
            "DATABASE_URL": worker_database_url(),
            "DJANGO_SETTINGS_MODULE": self.settings_module,
            "CONN_MAX_AGE": "0",
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("celery")),
                "-A",
                "livecommerce",
                "worker",
                "-Q",
                "default,webhooks,settlements",
                "--pool=solo",
                "-c",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
                "-n",
                f"settlements-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{self.log_path.read_text()[-3000:]}")
            if b" ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"celery worker not ready:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: the worker dies in the middle of whatever it does."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def send_task(name: str, **kwargs) -> None:
    """Send a task by name to this test's broker, the way beat sends its schedule."""
    with (
        celery_app.connection_for_write(redis_url()) as conn,
        warnings.catch_warnings(),
    ):
        # The test process has no broker of its own (tasks are eager there); this one has.
        warnings.simplefilter("ignore", AlwaysEagerIgnored)
        celery_app.send_task(name, kwargs=kwargs or None, connection=conn)


@pytest.fixture
def broker():
    """This test's Redis database, claimed and emptied before, emptied and released after."""
    global _claimed
    _claimed = RedisClaim(indexes=WORKER_REDIS_DB_INDEXES)
    _claimed.empty()
    try:
        yield _claimed.client
    finally:
        _claimed.release()
        _claimed = None


@pytest.fixture
def celery_worker(broker, transactional_db, tmp_path):
    """A real worker executing tasks from this test's broker against the test database."""
    worker = CeleryWorker(tmp_path / "worker.log").start()
    yield worker
    worker.stop()


@pytest.fixture
def worker_factory(broker, transactional_db, tmp_path):
    """Start workers at will (for tests that kill one); every one is stopped at the end."""
    workers: list[CeleryWorker] = []

    def start(settings_module: str = "livecommerce.settings") -> CeleryWorker:
        worker = CeleryWorker(tmp_path / f"worker-{len(workers)}.log", settings_module).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
