#!/usr/bin/env bash
# The README's first command: set up and run the service with demo data and its docs.
# Needs only Python 3.11+: SQLite and in-process Celery tasks unless DATABASE_URL /
# CELERY_BROKER_URL say otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"

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
.venv/bin/python manage.py load_demo --env-file var/demo.env

cat <<MSG

==> Serving the API on http://$HOST:$PORT/api/v1/
    Docs:    http://$HOST:$PORT/api/docs/  (Swagger UI)   http://$HOST:$PORT/api/redoc/
    Schema:  http://$HOST:$PORT/api/schema/
    Try:     curl -H "Authorization: Bearer \$(grep ^HOST_APP_KEY var/demo.env | cut -d= -f2)" http://$HOST:$PORT/api/v1/me
    The demo keys are also in var/demo.env. Stop with Ctrl-C.

MSG
exec .venv/bin/python manage.py runserver "$HOST:$PORT" --noreload
