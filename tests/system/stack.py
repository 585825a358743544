"""The service's real processes on 127.0.0.1, for tests that run it the way production does.

``LiveStack`` starts, as subprocesses of the test run:

- gunicorn: ``livecommerce.wsgi:application``, 2 sync workers, on a socket this process binds
  to port 0 and hands over (``--bind fd://N``), so there is no race for a port;
- a Celery worker: ``celery -A livecommerce worker -Q default,webhooks,settlements`` (prefork,
  2 processes), restartable with another environment, or killed with SIGKILL;
- Celery beat when a test asks for it (``start_beat()``; ``tests/system/beat_app.py``: the
  service's sweeper, every second instead of every 30 s).

They run with ``DEBUG=false``, a ``SECRET_KEY``, ``ALLOWED_HOSTS=127.0.0.1,localhost`` and
``WEBHOOK_ALLOW_PRIVATE_URLS=true``, against the TEST database (pytest-django's, with its
``connection.settings_dict`` name) and the test run's own Redis database index. They reach both
through a ``TCPProxy`` each (``db_proxy``, ``broker_proxy``): a test cuts one to make the
database or the broker "restart" without touching the servers, which other test runs share.
Each process's database sessions carry an ``application_name`` starting with ``lc_system``, so
``terminate_db_sessions()`` ends exactly ours (``pg_terminate_backend``), never another run's.

Every process writes its own log file (a new one per start); ``log_sections()`` gives their
tails, which ``tests/system/conftest.py`` attaches to a failing test's report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis
import requests
from celery import Celery

from tests.system.proxy import TCPProxy

BASE_DIR = Path(__file__).resolve().parents[2]
# Redis database indexes for system tests and bench/faults.py, bench/load.py. Each stack claims
# one that no other stack holds (a key set with NX and kept alive), so test runs started at the
# same time by different people, or their xdist workers, never share a broker. The single-worker
# tests (tests/webhooks, tests/settlements) claim from WORKER_REDIS_DB_INDEXES the same way;
# the benchmarks keep 12-14 and the development server 0.
REDIS_DB_INDEXES = (9, 10, 11, 15)
WORKER_REDIS_DB_INDEXES = (1, 2, 3, 4, 5, 6, 7, 8)
REDIS_CLAIM_KEY = "lc_system:claimed-by"
REDIS_CLAIM_TTL = 120  # seconds; refreshed every 20 s while the stack runs
QUEUES = ("default", "webhooks", "settlements")
APP_NAME_PREFIX = "lc_system"

SERVICE_ENV = {
    "DJANGO_SETTINGS_MODULE": "livecommerce.settings",
    "DEBUG": "false",
    "SECRET_KEY": "system-tests-only-secret-key-never-used-in-production",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
    "LOG_LEVEL": "INFO",
    "PYTHONUNBUFFERED": "1",
}
# Variables of the test run's environment that must not leak into the service's processes.
DROPPED_ENV = ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE")


class RedisClaim:
    """One of ``indexes`` held for this stack (or test) until ``release()``."""

    def __init__(self, timeout: float = 300, indexes: tuple[int, ...] = REDIS_DB_INDEXES) -> None:
        host, port = redis_server()
        self.host, self.port = host, port
        self.token = f"{os.getpid()}-{uuid.uuid4().hex}"
        deadline = time.monotonic() + timeout
        while True:
            for index in indexes:
                client = redis.Redis(host=host, port=port, db=index)
                if client.set(REDIS_CLAIM_KEY, self.token, nx=True, ex=REDIS_CLAIM_TTL):
                    self.index, self.client = index, client
                    break
                client.close()
            else:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"every Redis database of {indexes} is in use")
                time.sleep(1)
                continue
            break
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="redis-claim", daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        while not self._stop.wait(20):
            with contextlib.suppress(redis.RedisError):
                if self.client.get(REDIS_CLAIM_KEY) == self.token.encode():
                    self.client.expire(REDIS_CLAIM_KEY, REDIS_CLAIM_TTL)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.index}"

    def empty(self) -> None:
        """Delete every key of the database but the claim."""
        for key in self.client.scan_iter(count=1000):
            if key != REDIS_CLAIM_KEY.encode():
                self.client.delete(key)

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(redis.RedisError):
            self.empty()
            if self.client.get(REDIS_CLAIM_KEY) == self.token.encode():
                self.client.delete(REDIS_CLAIM_KEY)
        self.client.close()


class BeatSender:
    """Sends a periodic task by name to its queue on ``broker_url``, exactly as beat sends it.

    Its Celery app is never made the current one: the test process's shared tasks publish
    through the current app, and would go to this broker."""

    def __init__(self, broker_url: str) -> None:
        self.app = Celery(broker=broker_url, set_as_current=False)

    def send(self, name: str, queue: str = "default") -> None:
        self.app.send_task(name, queue=queue)

    def close(self) -> None:
        self.app.close()

    def __enter__(self) -> BeatSender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def redis_server() -> tuple[str, int]:
    url = urlsplit(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379"))
    return url.hostname or "127.0.0.1", url.port or 6379


def wait_until(
    condition: Callable[[], object],
    *,
    timeout: float = 30,
    interval: float = 0.1,
    message: str | Callable[[], str] = "condition",
):
    """Poll ``condition`` until it returns something truthy (returned); AssertionError after."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout}s waiting for {text}")
        time.sleep(interval)


class ManagedProcess:
    """One long-running subprocess in a session of its own, with a log file per start."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        log_dir: Path,
        ready: Callable[[ManagedProcess], bool],
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_dir = log_dir
        self.ready = ready
        self.pass_fds = pass_fds
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.starts = 0

    def __repr__(self) -> str:
        return f"<{self.name} pid={self.pid} running={self.running}>"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60) -> ManagedProcess:
        self.starts += 1
        self.log_path = self.log_dir / f"{self.name}-{self.starts}.log"
        number = 1
        while self.log_path.exists():  # another process of that name wrote one already
            number += 1
            self.log_path = self.log_dir / f"{self.name}-{number}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=self.pass_fds,
                start_new_session=True,  # its own process group: kill() takes its children too
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            if self.ready(self):
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{self.name} was not ready in {timeout}s:\n{self.log_tail()}")

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL to the process and its children: no shutdown, no ack, work cut off."""
        if self.process is None:
            return
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL to what is left after ``timeout``."""
        if self.process is None:
            return
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        self.kill()  # and any child the parent left behind

    def children(self) -> list[int]:
        """The process's direct children (a Celery worker's pool processes), from /proc."""
        if self.process is None:
            return []
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        return found

    def log_text(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class LiveStack:
    """gunicorn, a Celery worker and (on demand) beat, on the test database and Redis.

    Attributes a test uses:

    - ``base_url``: ``http://127.0.0.1:<port>`` (``clients.LiveCommerceClient(base_url, key)``);
    - ``redis_url``: the broker's Redis database, direct (to look at the queues);
      ``broker_url``: the same through ``broker_proxy``, as the processes use it;
    - ``database_url``: the test database through ``db_proxy``, as the processes use it;
    - ``web``, ``worker``, ``beat``: ``ManagedProcess`` objects;
    - ``restart_worker(env=..., kill=...)``, ``start_beat()``, ``stop_beat()``,
      ``terminate_db_sessions()``, ``queued()``, ``wait_quiet()``.
    """

    def __init__(
        self,
        *,
        database: Mapping,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        web_workers: int = 2,
        worker_concurrency: int = 2,
    ) -> None:
        self.database = dict(database)
        self.log_dir = log_dir
        self.claim: RedisClaim | None = None  # the Redis database, claimed at start()
        self.extra_env = dict(env or {})
        self.web_workers = web_workers
        self.worker_concurrency = worker_concurrency
        self.worker_env: dict[str, str] = {}
        self.db_proxy = TCPProxy(
            (self.database.get("HOST") or "127.0.0.1", int(self.database.get("PORT") or 5432)),
            name="postgresql",
        )
        self.broker_proxy = TCPProxy(redis_server(), name="redis")
        self.web: ManagedProcess | None = None
        self.worker: ManagedProcess | None = None
        self.beat: ManagedProcess | None = None
        self.feed: ManagedProcess | None = None
        self.base_url = ""
        self.feed_url = ""
        self.history: list[ManagedProcess] = []  # every process started, for the logs
        self._redis: redis.Redis | None = None

    # --- addresses -------------------------------------------------------------------------------

    @property
    def db_name(self) -> str:
        return self.database["NAME"]

    def database_url(self, app: str) -> str:
        """The test database through the proxy, tagged ``lc_system_<app>`` in pg_stat_activity."""
        auth = self.database.get("USER") or "postgres"
        if self.database.get("PASSWORD"):
            auth += f":{self.database['PASSWORD']}"
        return (
            f"postgres://{auth}@127.0.0.1:{self.db_proxy.port}/{self.db_name}"
            f"?application_name={APP_NAME_PREFIX}_{app}"
        )

    @property
    def redis_index(self) -> int:
        assert self.claim is not None, "start() the stack first"
        return self.claim.index

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.broker_proxy.port}/{self.redis_index}"

    @property
    def redis_url(self) -> str:
        host, port = redis_server()
        return f"redis://{host}:{port}/{self.redis_index}"

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.redis_url)
        return self._redis

    def direct_dsn(self) -> str:
        db = self.database
        return psycopg.conninfo.make_conninfo(
            host=db.get("HOST") or "127.0.0.1",
            port=str(db.get("PORT") or 5432),
            user=db.get("USER") or "postgres",
            password=db.get("PASSWORD") or None,
            dbname=self.db_name,
        )

    def env(self, app: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
        return {
            **base,
            **SERVICE_ENV,
            "DATABASE_URL": self.database_url(app),
            "CELERY_BROKER_URL": self.broker_url,
            **self.extra_env,
            **(extra or {}),
        }

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LiveStack:
        self.claim = RedisClaim()
        self.db_proxy.start()
        self.broker_proxy.start()
        self.flush_broker()
        self.start_web()
        self.start_worker()
        return self

    def stop(self) -> None:
        for process in (self.feed, self.beat, self.worker, self.web):
            if process is not None:
                process.stop()
        self.db_proxy.close()
        self.broker_proxy.close()
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        if self.claim is not None:
            self.claim.release()
            self.claim = None

    def start_web(self) -> ManagedProcess:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.set_inheritable(True)
        port = listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"

        def ready(_: ManagedProcess) -> bool:
            try:
                return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        self.web = ManagedProcess(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "livecommerce.wsgi:application",
                "--bind",
                f"fd://{listener.fileno()}",
                "--workers",
                str(self.web_workers),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--access-logfile",
                "-",
                "--error-logfile",
                "-",
            ],
            env=self.env("web"),
            log_dir=self.log_dir,
            ready=ready,
            pass_fds=(listener.fileno(),),
        )
        self.history.append(self.web)
        try:
            self.web.start()
        finally:
            listener.close()  # gunicorn has its own copy; ours would keep the port half-alive
        return self.web

    def start_feed_server(self) -> ManagedProcess:
        """uvicorn serving ``livecommerce.asgi:application`` (the live feeds), as deployed.

        One process, on a socket of its own (``feed_url``); the rest of the API stays on
        gunicorn. Started on demand, and kept for the test session once started.
        """
        if self.feed is not None and self.feed.running:
            return self.feed
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        listener.set_inheritable(True)
        port = listener.getsockname()[1]
        self.feed_url = f"http://127.0.0.1:{port}"

        def ready(_: ManagedProcess) -> bool:
            try:
                return requests.get(f"{self.feed_url}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        self.feed = ManagedProcess(
            "uvicorn",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "livecommerce.asgi:application",
                "--fd",
                str(listener.fileno()),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "2",
            ],
            env=self.env("feed"),
            log_dir=self.log_dir,
            ready=ready,
            pass_fds=(listener.fileno(),),
        )
        self.history.append(self.feed)
        try:
            self.feed.start()
        finally:
            listener.close()
        return self.feed

    def start_worker(self, env: Mapping[str, str] | None = None) -> ManagedProcess:
        """A new worker process (with ``env`` on top of the stack's environment)."""
        self.worker_env = dict(env or {})
        node = f"system-{uuid.uuid4().hex[:8]}@localhost"
        self.worker = ManagedProcess(
            "celery-worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "livecommerce",
                "worker",
                "-Q",
                ",".join(QUEUES),
                "--concurrency",
                str(self.worker_concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
                "-n",
                node,
            ],
            env=self.env("worker", {"CONN_MAX_AGE": "0", **self.worker_env}),
            log_dir=self.log_dir,
            ready=lambda process: f"{node} ready." in process.log_text(),
        )
        self.history.append(self.worker)
        return self.worker.start()

    def restart_worker(
        self, env: Mapping[str, str] | None = None, *, kill: bool = False
    ) -> ManagedProcess:
        """Replace the worker: SIGKILL (``kill=True``) or a warm shutdown, then a new one."""
        if self.worker is not None:
            if kill:
                self.worker.kill()
            else:
                self.worker.stop()
        return self.start_worker(env)

    def start_beat(
        self, *, sweep_interval: float = 1.0, expiry_interval: float = 1.0
    ) -> ManagedProcess:
        """Celery beat sending the webhook sweeper every ``sweep_interval`` seconds and the
        expiry of unpaid orders every ``expiry_interval`` seconds."""
        self.stop_beat()
        schedule = self.log_dir / f"beat-schedule-{uuid.uuid4().hex[:8]}"
        self.beat = ManagedProcess(
            "celery-beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.system.beat_app",
                "beat",
                "--schedule",
                str(schedule),
                "--loglevel",
                "INFO",
            ],
            env=self.env(
                "beat",
                {
                    "SYSTEM_SWEEP_INTERVAL": str(sweep_interval),
                    "ORDER_EXPIRY_INTERVAL": str(expiry_interval),
                },
            ),
            log_dir=self.log_dir,
            ready=lambda process: "beat: Starting" in process.log_text(),
        )
        self.history.append(self.beat)
        return self.beat.start()

    def stop_beat(self) -> None:
        if self.beat is not None:
            self.beat.stop()
            self.beat = None

    def kill_pool_processes(self) -> list[int]:
        """SIGKILL the worker's pool processes (as the OOM killer would); the worker's main
        process stays and starts new ones. Returns the pids killed."""
        assert self.worker is not None
        pids = self.worker.children()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def check_alive(self) -> None:
        """Raise if a process that should be running has died."""
        for process in (self.web, self.worker):
            if process is None or not process.running:
                raise RuntimeError(f"{process} is not running:\n{process and process.log_tail()}")

    # --- faults and observations -----------------------------------------------------------------

    def terminate_db_sessions(self) -> int:
        """``pg_terminate_backend`` on this stack's sessions of the test database (only those)."""
        with psycopg.connect(self.direct_dsn(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND application_name LIKE %s AND pid <> pg_backend_pid()",
                [self.db_name, f"{APP_NAME_PREFIX}_%"],
            ).fetchall()
        return sum(1 for (done,) in rows if done)

    def busy_db_sessions(self) -> int:
        """This stack's database sessions that are running a statement or inside a transaction."""
        with psycopg.connect(self.direct_dsn(), autocommit=True) as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                " AND application_name LIKE %s AND state IS NOT NULL AND state <> 'idle'",
                [self.db_name, f"{APP_NAME_PREFIX}_%"],
            ).fetchone()
        return count

    def queued(self) -> int:
        """Task messages waiting in the queues (not those a worker holds for a countdown)."""
        return sum(self.redis.llen(queue) for queue in QUEUES)

    def wait_quiet(self, timeout: float = 30) -> None:
        """Until no task is waiting and none of our sessions is busy, three checks in a row.

        Called before pytest-django empties the tables, so no process of ours holds a lock
        the flush would wait on (or deadlock with).
        """
        streak = 0

        def quiet() -> bool:
            nonlocal streak
            streak = streak + 1 if self.queued() == 0 and self.busy_db_sessions() == 0 else 0
            return streak >= 3

        wait_until(quiet, timeout=timeout, interval=0.1, message="the stack to be quiet")

    def flush_broker(self) -> None:
        """Empty the broker's Redis database (this stack's own: the claim says so)."""
        assert self.claim is not None
        self.claim.empty()

    def log_sections(self, lines: int = 80) -> list[tuple[str, str]]:
        sections = []
        for process in self.history[-6:]:
            if process.log_path is not None:
                title = f"{process.name} log ({process.log_path})"
                sections.append((title, process.log_tail(lines)))
        sections.append(("proxies", f"{self.db_proxy!r}\n{self.broker_proxy!r}"))
        return sections
