"""Faults, full size: what is lost when the database restarts, the broker hangs and goes down,
a webhook receiver is away for a day, and pool processes die mid settlement run. Nothing.

    .venv/bin/python bench/faults.py                    # every scenario, full size (~5 min)
    .venv/bin/python bench/faults.py --only database    # one of: database broker receiver pool
    .venv/bin/python bench/faults.py --quick            # CI's sizes, to try it out

The same scenarios as tests/system/test_faults.py and test_worker_killed.py
(``tests/system/scenarios.py``), larger: more checkouts for longer, several database restarts
of different lengths, a longer broker outage, a receiver down for 24 "hours" of the production
retry schedule, more payees and several kills. Each scenario runs on its own database
(``lc_system_bench_<scenario>``, copied from a migrated template, dropped at the end unless
``--keep``) with its own gunicorn, Celery worker and beat on 127.0.0.1, and a Redis database
among 9-11 and 15 that no other stack holds. Prints what each scenario observed and what was lost,
saves ``bench/results/faults.json``, and exits 1 if anything was lost.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.system import standalone

FULL = {
    "database": {
        "shoppers": 16,
        "seconds": 60,
        # (at, for): a short blip, a 10 s restart, a 3 s one soon after the first came back
        "outages": ((8.0, 1.0), (20.0, 10.0), (34.0, 3.0)),
    },
    "broker": {"shoppers": 8, "hang_s": 10, "down_s": 20, "max_orders": 100_000},
    "receiver": {"hour": 1.0, "down_hours": 24, "early_orders": 10, "later_orders": 10},
    "pool": {"brands": 60, "kills": 3, "entry_delay": 0.1, "hold": 3.0},
}
QUICK = {
    "database": {"shoppers": 4, "seconds": 9, "outages": ((2.0, 3.0),)},
    "broker": {"shoppers": 4, "hang_s": 4, "down_s": 4},
    "receiver": {"hour": 0.5, "down_hours": 6, "early_orders": 3, "later_orders": 1},
    "pool": {"brands": 6, "kills": 1},
}


def run(name: str, sizes: dict, *, web_workers: int) -> dict:
    from tests.system import scenarios
    from tests.system.workload import build_marketplace

    with standalone.live_stack(f"lc_system_bench_{name}", web_workers=web_workers) as stack:
        ops_key, finance_key = standalone.keys()
        started = time.monotonic()
        if name == "pool":
            outcome = scenarios.pool_process_killed_mid_settlement(
                stack, finance_key=finance_key, **sizes
            )
        else:
            market = build_marketplace(stack.base_url, ops_key=ops_key, finance_key=finance_key)
            try:
                scenario = {
                    "database": scenarios.database_restarts,
                    "broker": scenarios.broker_outage,
                    "receiver": scenarios.receiver_down_for_hours,
                }[name]
                outcome = scenario(stack, market, **sizes)
            finally:
                market.close()
        elapsed = time.monotonic() - started
    print(f"\n=== {name} ({elapsed:.0f} s) {sizes}\n{outcome.report()}", flush=True)
    return {
        "sizes": sizes,
        "elapsed_s": round(elapsed, 1),
        "observed": outcome.observed,
        "calls": outcome.journal.summary(),
        "figures": {
            **(outcome.orders.figures if outcome.orders else {}),
            **(outcome.webhooks.figures if outcome.webhooks else {}),
        },
        "lost": outcome.lost,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(FULL), action="append")
    parser.add_argument("--quick", action="store_true", help="CI's sizes")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args()

    standalone.setup()
    sizes = QUICK if args.quick else FULL
    names = args.only or list(FULL)
    results = {}
    try:
        for name in names:
            results[name] = run(name, sizes[name], web_workers=args.web_workers)
    finally:
        if not args.keep:
            standalone.drop_databases([f"lc_system_bench_{name}" for name in names])
    path = standalone.save("faults", {"quick": args.quick, "scenarios": results})
    lost = {name: r["lost"] for name, r in results.items() if r["lost"]}
    print(f"\nsaved {path}\nlost: {lost or 'nothing'}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
