"""The database options the order benchmark compares: Django's psycopg pool (off by default) and
server-side binding with prepared statements (on by default), each behind environment variables.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.db import connection
db = settings.DATABASES["default"]
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
    one = cursor.fetchone()[0]
print(json.dumps({
    "options": {
        k: v
        for k, v in db.get("OPTIONS", {}).items()
        if k in ("pool", "server_side_binding")
    },
    "conn_max_age": db["CONN_MAX_AGE"],
    "pooled": connection.pool is not None,
    "one": one,
    "prepare_threshold": settings.PREPARE_THRESHOLD,
}))
"""


def probe(**env) -> dict:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        pytest.skip("PostgreSQL options")
    server = base.rsplit("/", 1)[0]
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "livecommerce.settings",
            "DATABASE_URL": f"{server}/postgres",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_by_default_no_pool_server_side_binding_and_a_threshold_of_five():
    result = probe()

    assert result["options"] == {"server_side_binding": True}
    assert result["prepare_threshold"] == 5
    assert result["conn_max_age"] == 60
    assert not result["pooled"]
    assert result["one"] == 1


def test_prepared_statements_off_and_client_side_binding_when_asked():
    result = probe(DATABASE_PREPARE_THRESHOLD="off")
    assert (result["options"], result["prepare_threshold"]) == ({"server_side_binding": True}, None)
    result = probe(DATABASE_SERVER_SIDE_BINDING="false")
    assert (result["options"], result["prepare_threshold"]) == ({}, None)
    assert result["one"] == 1


def test_the_pool_when_asked():
    result = probe(
        DATABASE_POOL="true",
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_MAX_SIZE="3",
    )

    assert result["options"] == {
        "pool": {"min_size": 1, "max_size": 3, "timeout": 10.0},
        "server_side_binding": True,
    }
    assert result["conn_max_age"] == 0
    assert result["pooled"]
    assert result["one"] == 1
