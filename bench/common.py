"""What the benchmarks share: their own databases, processes on 127.0.0.1, figures, the docs.

Every benchmark makes its own PostgreSQL database (never the development or test ones), starts
what it needs (gunicorn, a Celery worker, a loopback webhook receiver) on ports the kernel picks,
stops it afterwards, and replaces its own ``## Section`` of docs/benchmarks.md, so the sections
written by the other scripts (``bench_settlement.py``, ``bench_reports.py``) stay as they are.
"""

import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DB_HOST = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_BASE = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
RESULTS_DIR = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
LOG_DIR = RESULTS_DIR / "logs"

# The environment every process of a benchmark runs with: production-like (DEBUG off, so the
# ORM does not keep every query in memory), quiet logs, webhooks allowed to loopback.
SERVICE_ENV = {
    "DJANGO_SETTINGS_MODULE": "livecommerce.settings",
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-not-for-production-use-anywhere",
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "LOG_LEVEL": "WARNING",
    "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
}


def setup_django(
    db_name: str, *, broker_db: int | None = None, settings_module: str = "livecommerce.settings"
) -> None:
    """Point this process at its own database (and Redis database index) and start Django with
    ``settings_module`` (``bench.settings`` adds the order rush's baseline endpoint)."""
    os.environ.update(SERVICE_ENV)
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    os.environ["DATABASE_URL"] = f"{DB_HOST}/{db_name}"
    if broker_db is None:
        os.environ.pop("CELERY_BROKER_URL", None)
    else:
        os.environ["CELERY_BROKER_URL"] = f"{REDIS_BASE}/{broker_db}"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def create_database(db_name: str, *, fresh: bool = True) -> None:
    """(Re)create ``db_name``; the caller migrates it after ``setup_django``."""
    import psycopg

    with psycopg.connect(f"{DB_HOST}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if exists and not fresh:
            return
        if exists:
            conn.execute(f'DROP DATABASE "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def flush_redis(db: int) -> None:
    import redis

    client = redis.Redis.from_url(f"{REDIS_BASE}/{db}")
    try:
        client.flushdb()
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Figures ----------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100) of ``samples``; nan when there are none."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def load_average() -> float:
    return os.getloadavg()[0]


def save_result(name: str, data: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def load_result(name: str) -> dict | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one letter per column, ``l`` or ``r``."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of docs/benchmarks.md with ``body``."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    DOCS.write_text(text)
    print(f"wrote the '{title}' section of {DOCS.relative_to(ROOT)}")


def today() -> str:
    return datetime.now(UTC).date().isoformat()


# --- The machine ------------------------------------------------------------------------------


def _first_line(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def machine() -> dict:
    """What the figures were measured on."""
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    import psycopg

    with psycopg.connect(f"{DB_HOST}/postgres") as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN"
                " ('shared_buffers', 'synchronous_commit', 'max_connections', 'work_mem')"
            ).fetchall()
        )
    import redis

    client = redis.Redis.from_url(f"{REDIS_BASE}/0")
    try:
        redis_version = client.info("server")["redis_version"]
    finally:
        client.close()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory": memory,
        "kernel": platform.release(),
        "postgresql": pg_version,
        "postgresql_settings": settings,
        "redis": redis_version,
        "python": platform.python_version(),
        "pgbench": _first_line([shutil.which("pgbench") or "pgbench", "--version"]),
    }


# --- Processes --------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is not None:
            return
        # Its own process group (gunicorn's and Celery's children go with it).
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def start(name: str, command: list[str], *, env: dict) -> Process:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, popen, log)


@contextmanager
def running(*processes: Process):
    try:
        yield processes
    finally:
        for process in reversed(processes):
            process.stop()


def wait_http(url: str, process: Process, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{process.name} did not answer {url} in {timeout}s:\n{process.tail()}")


def gunicorn(*, port: int, env: dict, workers: int, threads: int = 1, name: str = "gunicorn"):
    command = [
        str(VENV_BIN / "gunicorn"),
        "livecommerce.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]
    if threads > 1:
        command += ["--worker-class", "gthread", "--threads", str(threads)]
    return start(name, command, env=env)


def celery_worker(*, env: dict, concurrency: int, pool: str = "prefork", name: str = "celery"):
    return start(
        name,
        [
            str(VENV_BIN / "celery"),
            "-A",
            "livecommerce",
            "worker",
            "-Q",
            "default,webhooks,settlements",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
            "-n",
            f"{name}-{os.getpid()}@localhost",
        ],
        env=env,
    )


def wait_celery(broker_url: str, process: Process, timeout: float = 60) -> None:
    """Until the worker answers a ping on ``broker_url``."""
    from celery import Celery

    app = Celery(broker=broker_url, set_as_current=False)  # never the tasks' app
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
            if app.control.ping(timeout=0.5):
                return
        raise RuntimeError(f"{process.name} did not answer a ping:\n{process.tail()}")
    finally:
        app.close()


class Receiver:
    """``bench/receiver.py`` in a process of its own; ``arrivals()`` once it is stopped."""

    def __init__(self, name: str = "receiver") -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.port_file = LOG_DIR / f"{name}.port"
        self.out = LOG_DIR / f"{name}.arrivals"
        for path in (self.port_file, self.out):
            path.unlink(missing_ok=True)
        self.process = start(
            name,
            [
                sys.executable,
                str(ROOT / "bench" / "receiver.py"),
                "--port-file",
                str(self.port_file),
                "--out",
                str(self.out),
            ],
            env={},
        )
        deadline = time.monotonic() + 20
        while not self.port_file.exists() or not self.port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.popen.poll() is not None:
                raise RuntimeError(f"the receiver did not start:\n{self.process.tail()}")
            time.sleep(0.05)
        self.port = int(self.port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def stop(self) -> None:
        self.process.stop()

    def arrivals(self) -> list[tuple[str, float]]:
        """``(webhook-id, time.time())`` of each request, in arrival order."""
        if not self.out.exists():
            return []
        result = []
        for line in self.out.read_text().splitlines():
            event_id, at = line.split("\t")
            result.append((event_id, float(at)))
        return result
