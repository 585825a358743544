#!/usr/bin/env bash
# Every benchmark, one after the other, in under 15 minutes; rewrites docs/benchmarks.md.
#
#   ./bench/run_all.sh          (or: make bench)
#
# Needs what the tests need (PostgreSQL and Redis on 127.0.0.1, the venv with
# requirements-dev.txt, which pins py-spy for the profile) plus the `pgbench` binary: Debian's
# postgresql-client package has it (installed here with apt-get when missing and run as root).
# Each benchmark makes its own database (lc_bench_orders, lc_bench_webhooks, lc_bench_feeds,
# lc_bench_queries_*, lc_bench, lc_bench_reports) and Redis database index (12, 13, 14; the
# live feed's claims one of 9-11 and 15 like the system tests), starts what it needs on
# ports the kernel picks on 127.0.0.1 and stops it afterwards. The settlement and reports
# benchmarks generate their 1M-line ledgers only when their databases do not hold them yet;
# BENCH_FRESH=1 regenerates them. The machine is shared: run this when it is quiet (the load
# average is written into the page) - BENCH_WAIT_LOAD=1.5 waits, up to 20 minutes, until the
# 1-minute load average is below 1.5 before starting.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=.venv/bin/python
[ -x "$PYTHON" ] || { echo "no .venv: run ./scripts/test.sh (or make the venv) first" >&2; exit 2; }
unset CELERY_BROKER_URL CACHE_URL || true

if ! command -v pgbench >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> Installing pgbench (Debian's postgresql-client)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
  else
    echo "pgbench is missing: install Debian's postgresql-client" >&2
    exit 2
  fi
fi
if [ ! -x .venv/bin/py-spy ]; then
  echo "==> Installing the dev requirements (py-spy)"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
fi

if [ -n "${BENCH_WAIT_LOAD:-}" ]; then
  for _ in $(seq 1 20); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    awk -v l="$load" -v t="$BENCH_WAIT_LOAD" 'BEGIN { exit !(l < t) }' && break
    echo "    load average $load, waiting for < $BENCH_WAIT_LOAD"
    sleep 60
  done
fi

fresh=()
[ -n "${BENCH_FRESH:-}" ] && fresh=(--fresh)

started=$(date +%s)
step() { echo; echo "==> $* ($(( $(date +%s) - started )) s in, load $(cut -d' ' -f1 /proc/loadavg))"; }

"$PYTHON" bench/summary.py --begin
step "Order rush: pgbench, the minimal DRF endpoint, create, pay, the rush, py-spy"
"$PYTHON" bench/bench_orders.py --write-docs
step "Webhooks: 10,000 events through real Celery workers"
"$PYTHON" bench/bench_webhooks.py --write-docs
step "Live feed: the order API with 200 feeds open and with none, 5 rounds each"
"$PYTHON" bench/bench_feeds.py --write-docs
step "Query counts: every list and action at 20 and 200 items"
"$PYTHON" bench/bench_queries.py --write-docs
step "Settlement: 1M ledger lines, 1,000 payees"
"$PYTHON" bench/bench_settlement.py --write-docs --runs 7 "${fresh[@]}"
step "Reports: every group_by over 1M ledger lines"
"$PYTHON" bench/bench_reports.py --write-docs "${fresh[@]}"
"$PYTHON" bench/summary.py --end
step "Done: docs/benchmarks.md"
