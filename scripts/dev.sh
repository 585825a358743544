#!/usr/bin/env bash
# The README's first command: set up and run the service with demo data and its docs, then run
# the live-shopping scenario against it (SCENARIO=0 to skip). Needs only Python 3.11+: SQLite and
# in-process Celery tasks unless DATABASE_URL / CELERY_BROKER_URL say otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
SCENARIO="${SCENARIO:-1}"
DROP="${DROP:-1}"
VIEWERS="${VIEWERS:-40}"  # viewers in the scenario
# Demo defaults: orders complete as soon as the operator closes return windows (so the scenario's
# money settles today), and the simulated fulfillment partner's webhook receiver on loopback is
# allowed. Set them yourself to see production behaviour.
export RETURN_WINDOW_DAYS="${RETURN_WINDOW_DAYS:-0}"
# Local development: DEBUG on (with it off the service refuses the development SECRET_KEY).
export DEBUG="${DEBUG:-true}"
export WEBHOOK_ALLOW_PRIVATE_URLS="${WEBHOOK_ALLOW_PRIVATE_URLS:-true}"
# Logs for a person at a terminal (production logs are JSON lines: LOG_FORMAT=json).
export LOG_FORMAT="${LOG_FORMAT:-plain}"

if [ ! -x .venv/bin/python ]; then
  echo "==> Creating the virtualenv in .venv"
  "$PYTHON" -m venv .venv
fi
echo "==> Installing requirements"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt

echo "==> Migrating the database (${DATABASE_URL:-SQLite file db.sqlite3})"
.venv/bin/python manage.py migrate --no-input -v 0

mkdir -p var
echo "==> Loading the demo platform"
.venv/bin/python manage.py load_demo --env-file var/demo.env --base-url "http://$HOST:$PORT"

echo "==> Starting the API on http://$HOST:$PORT/"
.venv/bin/python manage.py runserver "$HOST:$PORT" --noreload &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 60); do
  if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://$HOST:$PORT/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.5
done

if [ "$SCENARIO" != "0" ]; then
  echo "==> Running the live-shopping scenario against it (SCENARIO=0 skips this)"
  .venv/bin/python -m clients.simulators --base-url "http://$HOST:$PORT" --env-file var/demo.env \
    --viewers "$VIEWERS" \
    --operator-command ".venv/bin/python manage.py close_return_windows" \
    || echo "    The scenario reported a problem (see above); the service keeps running."
fi

if [ "$DROP" != "0" ]; then
  echo "==> A live drop: a flash price, a hot product selling out, abandoned checkouts expiring,"
  echo "    watched on the show's live feed (DROP=0 skips this)"
  .venv/bin/python -m clients.simulators.drop --base-url "http://$HOST:$PORT" --env-file var/demo.env \
    --operator-command ".venv/bin/python manage.py expire_orders" \
    || echo "    The drop reported a problem (see above); the service keeps running."
fi

cat <<MSG

==> The API is serving on http://$HOST:$PORT/api/v1/
    Docs:    http://$HOST:$PORT/api/docs/  (Swagger UI)   http://$HOST:$PORT/api/redoc/
    Schema:  http://$HOST:$PORT/api/schema/
    Keys:    var/demo.env (printed above). Try:
             curl -H "Authorization: Bearer \$(grep ^HOST_APP_KEY var/demo.env | cut -d= -f2)" http://$HOST:$PORT/api/v1/me
    Run the scenario again: .venv/bin/python -m clients.simulators --base-url http://$HOST:$PORT --env-file var/demo.env
    Run a drop again:       .venv/bin/python -m clients.simulators.drop --base-url http://$HOST:$PORT --operator-command ".venv/bin/python manage.py expire_orders"
    Stop with Ctrl-C.

MSG
wait $SERVER
