"""A real Celery worker in a subprocess, on its own Redis database, against the test database.

The test process sends tasks to the same broker (``use_broker``), so ``transaction.on_commit``
in the test really queues to Redis and the worker really sends over HTTP. Each pytest-xdist
worker claims a Redis database index that no other test run holds (``claim_broker``).
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from livecommerce.celery import app
from tests.system.stack import WORKER_REDIS_DB_INDEXES, RedisClaim

BASE_DIR = Path(__file__).resolve().parents[2]


def claim_broker() -> RedisClaim:
    """A Redis database of its own for this worker (``release()`` it), emptied."""
    claim = RedisClaim(indexes=WORKER_REDIS_DB_INDEXES)
    claim.empty()
    return claim


def shared_database_url() -> str:
    """The URL of the database the tests run on (``test_...``), for other processes."""
    db = connection.settings_dict
    auth = db["USER"] or "postgres"
    if db["PASSWORD"]:
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def use_broker(url: str):
    """Make this process's Celery app publish to ``url`` instead of running tasks eagerly."""
    saved = (app.conf.broker_url, app.conf.task_always_eager)
    # Tasks are shared tasks: they publish through Celery's *current* app, so make sure that is
    # ours (a ``Celery()`` made elsewhere in this process, without ``set_as_current=False``,
    # would otherwise take the sends to its own broker).
    app.set_current()
    app.conf.broker_url = url
    app.conf.task_always_eager = False
    _forget_connections()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved
        _forget_connections()


def _forget_connections() -> None:
    # The app keeps its broker connection pools; drop them so the next send uses the new URL.
    app._pool = None
    app.amqp._producer_pool = None


class Worker:
    """``celery -A livecommerce worker -Q default,webhooks,settlements --pool=solo``."""

    def __init__(self, *, broker_url: str, database_url: str, log_dir: Path, env: dict) -> None:
        self.broker_url = broker_url
        self.database_url = database_url
        self.log_dir = log_dir
        self.extra_env = env
        self.process: subprocess.Popen | None = None
        self.name = ""
        self.log_path: Path | None = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "livecommerce.settings",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "CONN_MAX_AGE": "0",
            **self.extra_env,
        }

    def start(self, timeout: float = 30) -> "Worker":
        self.name = f"webhooks-test-{uuid.uuid4().hex[:8]}@localhost"
        self.log_path = self.log_dir / f"{self.name}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "livecommerce",
                "worker",
                "-Q",
                "default,webhooks,settlements",
                "--pool=solo",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
                "-n",
                self.name,
            ],
            cwd=BASE_DIR,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        with use_broker(self.broker_url):
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the worker exited at start:\n{self.log_tail()}")
                if app.control.ping(destination=[self.name], timeout=0.5):
                    return self
        self.stop()
        raise RuntimeError(f"the worker did not answer a ping in {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no ack, the current task cut off mid-flight."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 10) -> None:
        if not self.process or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
