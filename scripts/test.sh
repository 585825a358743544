#!/usr/bin/env bash
# The README's second command: install what the tests need, make sure PostgreSQL and Redis (and,
# if installed, RabbitMQ) are running on localhost (start them if installed but stopped), then
# lint and run the whole suite in two stages: the fast tests, then the system and slow ones.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/livecommerce}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export SECRET_KEY="${SECRET_KEY:-test-only-secret-key-not-for-production}"
unset CELERY_BROKER_URL CACHE_URL || true

missing=()

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || "$PYTHON" - <<'PY' 2>/dev/null
import socket; socket.create_connection(("127.0.0.1", 5432), 1)
PY
}
redis_up() { "$PYTHON" - <<'PY' 2>/dev/null
import socket; s = socket.create_connection(("127.0.0.1", 6379), 1); s.sendall(b"PING\r\n")
assert s.recv(16).startswith(b"+PONG")
PY
}

echo "==> Checking PostgreSQL on 127.0.0.1:5432"
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "    PostgreSQL is installed but stopped: starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  pg_up || missing+=("PostgreSQL (install it, e.g. 'apt-get install postgresql', or set TEST_DATABASE_URL)")
fi

echo "==> Checking Redis on 127.0.0.1:6379"
if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "    Redis is installed but stopped: starting it"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
    for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  fi
  redis_up || missing+=("Redis (install it, e.g. 'apt-get install redis-server')")
fi

rabbitmq_up() { "$PYTHON" - <<'PY' 2>/dev/null
import socket; socket.create_connection(("127.0.0.1", 5672), 1)
PY
}

# Optional: the scaled-out system test also runs on RabbitMQ (guest/guest), and says it skipped
# where RabbitMQ is not installed.
echo "==> Checking RabbitMQ on 127.0.0.1:5672 (optional)"
if ! rabbitmq_up && command -v rabbitmq-server >/dev/null 2>&1; then
  echo "    RabbitMQ is installed but stopped: starting it"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do rabbitmq_up && break; sleep 1; done
fi
rabbitmq_up || echo "    RabbitMQ not running: tests/system/test_scaled_out.py[rabbitmq] will skip"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> Installing Debian's chromium for the docs-in-a-browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "    could not install chromium; the browser test will say so and fail"
  else
    missing+=("chromium (Debian package 'chromium', for the docs-in-a-browser test)")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "Cannot run the suite; missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> Creating the virtualenv in .venv"
  "$PYTHON" -m venv .venv
fi
echo "==> Installing requirements"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

echo "==> Lint (ruff) and migrations check"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Against an in-memory SQLite database: the check compares models with migration files, and the
# PostgreSQL database named above need not exist (the tests make their own, test_<name>).
DATABASE_URL="sqlite://:memory:" .venv/bin/python manage.py makemigrations --check --dry-run >/dev/null

# Two stages of the same command: the fast tests, then the system tests (real gunicorn, Celery
# and beat processes) and the slow ones (property runs, fuzzing, clients generated or installed),
# which carry the markers `system` and `slow`. Both stages always run; the command fails if either
# did. Arguments go to pytest in one run instead (`./scripts/test.sh tests/orders -x`,
# `./scripts/test.sh -m "not system and not slow"`).
echo "==> Tests on PostgreSQL ($DATABASE_URL) and Redis ($TEST_REDIS_URL)"
if [ $# -gt 0 ]; then
  exec .venv/bin/pytest -n 2 --dist loadfile -q "$@"
fi
status=0
echo "==> Stage 1 of 2: the fast tests"
.venv/bin/pytest -n 2 --dist loadfile -q -m "not system and not slow" || status=$?
echo "==> Stage 2 of 2: the system and slow tests"
.venv/bin/pytest -n 2 --dist loadfile -q -m "system or slow" || status=$?
exit $status
