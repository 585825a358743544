"""Load, full size: many host apps ordering at once while the fulfillment partner accepts and
ships and support refunds; afterwards nothing is lost, doubled or oversold.

    .venv/bin/python bench/load.py                     # 16 host apps x 4 threads, 120 s
    .venv/bin/python bench/load.py --host-apps 8 --threads 4 --seconds 20   # CI's size
    .venv/bin/python bench/load.py --web-workers 4 --max-orders 20000

The workload of tests/system/test_load.py (``tests.system.scenarios.load``), bounded by a count
AND a time, whichever comes first, so it always stops by itself: every checkout thread is a
host app's client (the partner SDK, one Idempotency-Key per POST, retries with backoff) placing
orders of 1 to 3 units and paying 85 % of them; 10 % of the creates are sent again with the same
key after their answer and 5 % twice at once; one product has only ``--scarce`` units, so
checkouts race for the last ones. Alongside: the fulfillment partner accepts and ships paid
orders, two support desks refund single units (restocked) and cancel unpaid orders, and a
watcher reads the catalog four times a second.

Runs on its own database (``lc_system_bench_load``, dropped afterwards unless ``--keep``) with
gunicorn (``--web-workers``), a Celery worker and a Redis database among 9-11 and 15 that no other
stack holds, on 127.0.0.1. Prints the figures and the audit, saves ``bench/results/load.json``,
exits 1 if anything was lost.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.system import standalone

DATABASE = "lc_system_bench_load"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host-apps", type=int, default=16)
    parser.add_argument("--threads", type=int, default=4, help="checkout threads per host app")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--max-orders", type=int, default=50_000)
    parser.add_argument("--scarce", type=int, default=100, help="units of the scarce product")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    standalone.setup()
    from tests.system import scenarios

    sizes = {
        "host_apps": args.host_apps,
        "threads": args.threads,
        "seconds": args.seconds,
        "max_orders": args.max_orders,
        "scarce": args.scarce,
    }
    try:
        with standalone.live_stack(DATABASE, web_workers=args.web_workers) as stack:
            ops_key, finance_key = standalone.keys()
            outcome = scenarios.load(stack, ops_key=ops_key, finance_key=finance_key, **sizes)
    finally:
        if not args.keep:
            standalone.drop_databases([DATABASE])
    print(f"{sizes}, gunicorn workers: {args.web_workers}\n{outcome.report()}")
    path = standalone.save(
        "load",
        {
            "sizes": {**sizes, "web_workers": args.web_workers},
            "observed": outcome.observed,
            "calls": outcome.journal.summary(),
            "figures": outcome.orders.figures,
            "lost": outcome.lost,
        },
    )
    print(f"saved {path}\nlost: {outcome.lost or 'nothing'}")
    return 1 if outcome.lost else 0


if __name__ == "__main__":
    sys.exit(main())
