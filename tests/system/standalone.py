"""Running the system scenarios outside pytest: for bench/faults.py and bench/load.py.

Each scenario gets a database of its own, copied from a migrated template
(``CREATE DATABASE ... TEMPLATE``, much faster than migrating each time), and a ``LiveStack`` of
its own on it; this process's Django connection points at the same database so the audits read
what the processes wrote. Databases are named ``lc_system_bench_*``; the stack claims a Redis
database among 9-11 and 15 that no other stack holds (``tests.system.stack.RedisClaim``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
TEMPLATE = "lc_system_bench_template"
RESULTS = ROOT / "bench" / "results"


def _admin():
    import psycopg

    return psycopg.connect(f"{PG_URL}/postgres", autocommit=True)


def setup(*, fresh_template: bool = True) -> None:
    """Migrate a template database and start Django in this process on it."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "livecommerce.settings",
            "DATABASE_URL": f"{PG_URL}/{TEMPLATE}",
            "SECRET_KEY": "bench-system-only-secret-key-never-used-in-production",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "0",
        }
    )
    os.environ.pop("CELERY_BROKER_URL", None)  # this process publishes nothing
    sys.path.insert(0, str(ROOT))
    with _admin() as admin:
        if fresh_template:
            admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TEMPLATE])
        if not found.fetchone():
            admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    connection.close()


def use_database(name: str) -> dict:
    """A fresh copy of the template as ``name``; this process's connection points at it."""
    from django.db import connection

    connection.close()
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    connection.settings_dict["NAME"] = name
    url = urlsplit(PG_URL)
    return {
        "NAME": name,
        "HOST": url.hostname or "127.0.0.1",
        "PORT": url.port or 5432,
        "USER": url.username or "postgres",
        "PASSWORD": url.password or "",
    }


@contextlib.contextmanager
def live_stack(name: str, *, web_workers: int = 2, log_root: Path | None = None) -> Iterator:
    """A fresh database called ``name`` and the service's processes on it."""
    from tests.system.stack import LiveStack

    database = use_database(name)
    log_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=log_root))
    stack = LiveStack(database=database, log_dir=log_dir, web_workers=web_workers)
    try:
        stack.start()
        yield stack
    except BaseException:
        for title, text in stack.log_sections(40):
            print(f"--- {title}\n{text}", file=sys.stderr)
        raise
    finally:
        stack.stop()
        from django.db import connection

        connection.close()


def keys() -> tuple[str, str]:
    """An ops key and a finance key, made the way an operator runs create_staff_key."""
    from partners.choices import StaffRole
    from partners.services import api_key_create

    return (
        api_key_create(name="bench", role=StaffRole.OPS)[1],
        api_key_create(name="bench", role=StaffRole.FINANCE)[1],
    )


def drop_databases(names: list[str]) -> None:
    from django.db import connection

    connection.close()
    with _admin() as admin:
        for name in [*names, TEMPLATE]:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def jsonable(value):
    """Outcome fields as JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def save(name: str, results: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    stamped = {"finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **results}
    path.write_text(json.dumps(jsonable(stamped), indent=2) + "\n")
    return path
