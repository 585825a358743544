"""Benchmark: webhooks fanned out from the outbox to a loopback receiver by real Celery workers.

    .venv/bin/python bench/bench_webhooks.py                # 10,000 events, then a paced run
    .venv/bin/python bench/bench_webhooks.py --events 500   # a quick try
    .venv/bin/python bench/bench_webhooks.py --write-docs   # also update docs/benchmarks.md

Makes its own database (``lc_bench_webhooks``, re-created) with ``--endpoints`` host apps, each
with one webhook endpoint subscribed to every event and pointing at ``bench/receiver.py`` (a
threaded HTTP server in its own process that answers 200 at once). A Celery worker (prefork,
``--concurrency``) consumes the ``webhooks`` queue from its own Redis database. This process
publishes with the service's own ``partners.events`` functions, so every event is written with
its outbox rows in one transaction and its sends are queued on commit, as an order's are:

1. burst: ``--events`` events (one per order, round-robin over the endpoints), written in
   transactions of ``--batch`` with ``event_publish_many``, as fast as the database takes them;
   deliveries/s is the number delivered over the time from the first commit to the last
   arrival (the backlog drains at the workers' pace);
2. paced: one event per transaction with ``event_publish`` (what an order's status change
   does) at half the burst's delivery rate for ``--paced-seconds``: the commit-to-delivery
   latency when the workers keep up.

Commit-to-delivery latency is the receiver's wall clock at arrival minus this process's wall
clock right after the event's transaction committed (an ``on_commit`` callback registered
before the event's own, so before its sends are queued). Same machine, same clock.
Baseline in the same run: the receiver hit directly by this process over fresh connections
(what each send costs at least), and the worker's own count of what it did.
"""

import argparse
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = os.environ.get("BENCH_WEBHOOKS_DB", "lc_bench_webhooks")
REDIS_DB = int(os.environ.get("BENCH_WEBHOOKS_REDIS_DB", "13"))
TARGET_PER_S = 300.0
TARGET_P99_S = 1.0

EXAMPLE_ORDER = {
    "id": "ord_01jd3x6q2c7h9k4m8n2p5r7t9v",
    "status": "paid",
    "currency": "USD",
    "subtotal": "39.98",
    "shipping_amount": "4.99",
    "tax_amount": "3.20",
    "total": "48.17",
    "refunded_amount": "0.00",
    "lines": [
        {"id": "oln_01", "product": "prd_01", "sku": "LIP-RED-01", "quantity": 2},
    ],
}


def prepare(endpoints: int, receiver_url: str) -> list[str]:
    from partners.choices import PartnerKind
    from partners.services import partner_create
    from partners.webhooks.services import webhook_endpoint_create

    partners = []
    for n in range(endpoints):
        partner = partner_create(kind=PartnerKind.HOST_APP, name=f"Bench host app {n}")
        webhook_endpoint_create(partner=partner, url=f"{receiver_url}/{n}", events=["*"])
        partners.append(partner.pk)
    return partners


def publish_burst(partners: list[str], *, events: int, batch: int) -> dict[str, float]:
    """``events`` events in transactions of ``batch``; event id -> commit time."""
    from django.db import transaction

    from partners.events import event_publish_many

    committed: dict[str, float] = {}
    for start in range(0, events, batch):
        stamp: dict[str, float] = {}
        with transaction.atomic():
            transaction.on_commit(lambda stamp=stamp: stamp.__setitem__("at", time.time()))
            published = event_publish_many(
                events=[
                    (
                        "order.paid",
                        f"ord_bench{n:012d}",
                        {**EXAMPLE_ORDER, "id": f"ord_bench{n:012d}"},
                        [partners[n % len(partners)]],
                    )
                    for n in range(start, min(start + batch, events))
                ]
            )
        for event in published:
            committed[event.pk] = stamp["at"]
    return committed


def publish_paced(partners: list[str], *, rate: float, seconds: float) -> dict[str, float]:
    """One event per transaction, ``rate`` a second, for ``seconds``."""
    from django.db import transaction

    from partners.events import event_publish

    committed: dict[str, float] = {}
    interval = 1.0 / rate
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        due = started + n * interval
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        stamp: dict[str, float] = {}
        with transaction.atomic():
            transaction.on_commit(lambda stamp=stamp: stamp.__setitem__("at", time.time()))
            event = event_publish(
                type="order.shipped",
                object_id=f"ord_paced{n:012d}",
                data={**EXAMPLE_ORDER, "id": f"ord_paced{n:012d}", "status": "shipped"},
                partner_ids=[partners[n % len(partners)]],
            )
        committed[event.pk] = stamp["at"]
        n += 1
    return committed


def wait_delivered(expected: int, timeout: float) -> tuple[int, float]:
    """Until ``expected`` deliveries succeeded (or the timeout); (succeeded, when)."""
    from partners.webhooks.models import WebhookDelivery

    deadline = time.monotonic() + timeout
    while True:
        done = WebhookDelivery.objects.filter(status="succeeded").count()
        if done >= expected or time.monotonic() > deadline:
            return done, time.time()
        time.sleep(0.25)


def latencies(committed: dict[str, float], arrivals: list[tuple[str, float]]) -> dict:
    """First arrival of each event minus its commit; duplicates counted."""
    first: dict[str, float] = {}
    seen: Counter = Counter()
    for event_id, at in arrivals:
        if event_id in committed:
            seen[event_id] += 1
            first.setdefault(event_id, at)
    samples = [(first[e] - committed[e]) * 1000 for e in first]
    return {
        "events": len(committed),
        "delivered": len(first),
        "duplicates": sum(n - 1 for n in seen.values()),
        "p50_ms": common.percentile(samples, 50),
        "p95_ms": common.percentile(samples, 95),
        "p99_ms": common.percentile(samples, 99),
        "max_ms": max(samples) if samples else float("nan"),
        "first_commit": min(committed.values()) if committed else 0.0,
        "last_commit": max(committed.values()) if committed else 0.0,
        "last_arrival": max(first.values()) if first else 0.0,
    }


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group ``pgid`` (the
    Celery worker started in a session of its own: its main process and its pool's children)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # after the command: state, ppid, pgrp, ..., utime (12th), stime (13th)
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def direct_baseline(url: str, seconds: float = 3.0) -> dict:
    """The receiver hit from here, one fresh connection per POST (as the sender does), in a
    few threads: the most the receiver and the loopback allow this way."""
    import requests

    count = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    body = b'{"id":"evt_x","type":"order.paid","data":{}}'

    def hit() -> None:
        nonlocal count
        while time.monotonic() < deadline:
            with requests.Session() as session:
                session.post(url, data=body, headers={"webhook-id": "baseline"}, timeout=5)
            with lock:
                count += 1

    threads = [threading.Thread(target=hit) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"per_s": count / (time.monotonic() - started), "threads": 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--paced-seconds", type=float, default=15)
    parser.add_argument(
        "--paced-rate", type=float, default=0, help="events/s (default: half the burst's rate)"
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    load_before = common.load_average()
    common.create_database(DB_NAME)
    common.setup_django(DB_NAME, broker_db=REDIS_DB)
    common.migrate()
    common.flush_redis(REDIS_DB)
    broker = f"{common.REDIS_BASE}/{REDIS_DB}"
    env = {
        **common.SERVICE_ENV,
        "DATABASE_URL": f"{common.DB_HOST}/{DB_NAME}",
        "CELERY_BROKER_URL": broker,
    }
    receiver = common.Receiver("webhooks-receiver")
    results: dict = {"config": vars(args)}
    try:
        partners = prepare(args.endpoints, receiver.url)
        results["direct"] = direct_baseline(receiver.url)
        worker = common.celery_worker(
            env=env, concurrency=args.concurrency, pool=args.pool, name="celery-webhooks"
        )
        with common.running(worker):
            common.wait_celery(broker, worker)
            print(f"burst: {args.events:,} events in transactions of {args.batch} ...", flush=True)
            cpu_before = group_cpu_seconds(worker.popen.pid)
            started = time.time()
            burst = publish_burst(partners, events=args.events, batch=args.batch)
            published_in = time.time() - started
            done, _ = wait_delivered(args.events, timeout=max(120, args.events / 20))
            results["burst_worker_cpu_s"] = group_cpu_seconds(worker.popen.pid) - cpu_before
            print(f"  {done:,} delivered", flush=True)
            results["burst_published_s"] = published_in
            results["burst_succeeded"] = done
            # the paced phase runs at half what the burst showed the workers can do
            burst_rate = done / max(time.time() - min(burst.values()), 1e-9)
            rate = args.paced_rate or max(5.0, min(burst_rate, 1000.0) / 2)
            print(f"paced: {rate:.0f} events/s for {args.paced_seconds:.0f} s ...", flush=True)
            paced = publish_paced(partners, rate=rate, seconds=args.paced_seconds)
            done_all, _ = wait_delivered(done + len(paced), timeout=60)
            results["paced_rate"] = rate
            results["paced_succeeded"] = done_all - done
    finally:
        receiver.stop()
    arrivals = receiver.arrivals()
    results["burst"] = latencies(burst, arrivals)
    b = results["burst"]
    b["deliveries_per_s"] = b["delivered"] / max(b["last_arrival"] - b["first_commit"], 1e-9)
    b["published_per_s"] = b["events"] / max(results["burst_published_s"], 1e-9)
    results["paced"] = latencies(paced, arrivals)
    results["worker_log_tail"] = worker.tail(5)
    results["load_before"] = load_before
    results["load_after"] = common.load_average()
    results["machine"] = common.machine()
    results["date"] = common.today()
    results["attempts"] = attempts_summary()
    common.save_result("webhooks", results)
    report = render(results)
    print(report)
    if args.write_docs:
        common.write_section("Webhooks", report)


def attempts_summary() -> dict:
    from django.db.models import Avg, Count

    from partners.webhooks.models import WebhookAttempt, WebhookDelivery

    attempts = WebhookAttempt.objects.aggregate(n=Count("id"), latency=Avg("latency_ms"))
    failed = WebhookAttempt.objects.filter(succeeded=False).count()
    statuses = Counter(WebhookDelivery.objects.values_list("status", flat=True))
    return {
        "attempts": attempts["n"],
        "failed_attempts": failed,
        "mean_send_ms": attempts["latency"],
        "deliveries": dict(statuses),
    }


def render(r: dict) -> str:
    m, b, p, f = r["machine"], r["burst"], r["paced"], common.fmt
    c = r["config"]
    rows = [
        [
            f"burst: {b['events']:,} events, transactions of {c['batch']}",
            f"{f(b['deliveries_per_s'])} deliveries/s",
            f(b["p50_ms"] / 1000, 2),
            f(b["p99_ms"] / 1000, 2),
            f"{b['delivered']:,} / {b['events']:,}",
            b["duplicates"],
        ],
        [
            f"paced: {f(r['paced_rate'], 0)} events/s, one per transaction",
            f"{f(p['events'] / c['paced_seconds'])} events/s offered",
            f(p["p50_ms"] / 1000, 3),
            f(p["p99_ms"] / 1000, 3),
            f"{p['delivered']:,} / {p['events']:,}",
            p["duplicates"],
        ],
    ]
    targets = [
        [
            "deliveries/s (burst)",
            f(b["deliveries_per_s"]),
            "≥ 300",
            "met" if b["deliveries_per_s"] >= TARGET_PER_S else "**not met**",
        ],
        [
            "commit-to-delivery p99 (paced)",
            f"{f(p['p99_ms'] / 1000, 3)} s",
            "< 1 s",
            "met" if p["p99_ms"] / 1000 < TARGET_P99_S else "**not met**",
        ],
        [
            "commit-to-delivery p99 (burst: the backlog's drain time)",
            f"{f(b['p99_ms'] / 1000, 2)} s",
            "",
            "",
        ],
    ]
    a = r["attempts"]
    cpu_per_1000 = r["burst_worker_cpu_s"] / max(b["delivered"], 1) * 1000
    return "\n".join(
        [
            f"`bench/bench_webhooks.py` on {r['date']}, {m['nproc']} CPUs ({m['cpu_model']}), "
            f"PostgreSQL {m['postgresql']}, Redis {m['redis']}. 1-minute load average before / "
            f"after: {r['load_before']:.2f} / {r['load_after']:.2f}.",
            "",
            f"{c['endpoints']} endpoints (one per host app, every event) on one loopback "
            f"receiver (`bench/receiver.py`, its own process); one Celery worker ({c['pool']}, "
            f"concurrency {c['concurrency']}) on Redis. Events published by this process with "
            "`partners.events` (event, recipients and outbox rows in one transaction, sends "
            "queued on commit). Latency: receiver's arrival time minus the commit time.",
            "",
            common.table(
                [
                    "phase",
                    "throughput",
                    "commit-to-delivery p50 s",
                    "p99 s",
                    "delivered",
                    "duplicates",
                ],
                rows,
                "lrrrrr",
            ),
            "",
            common.table(["target (same run)", "measured", "target", ""], targets, "lrrl"),
            "",
            f"Baseline in the same run: the receiver takes {f(r['direct']['per_s'])} POSTs/s "
            f"from {r['direct']['threads']} threads of this process over fresh connections (one "
            "per POST, as the sender opens). The burst's events were written at "
            f"{f(b['published_per_s'])} events/s, so the queue, not the writer, set the pace. "
            f"The worker (all its processes) used {f(r['burst_worker_cpu_s'])} CPU seconds for "
            f"the burst, {f(cpu_per_1000, 2)} s per 1,000 deliveries (a figure the machine's "
            "load moves less than the rate). "
            f"Attempts recorded: {a['attempts']:,} ({a['failed_attempts']} failed), mean send "
            f"{f(a['mean_send_ms'] or 0)} ms as the worker timed it; deliveries by status: "
            f"{', '.join(f'{k} {v:,}' for k, v in a['deliveries'].items())}.",
        ]
    )


if __name__ == "__main__":
    main()
