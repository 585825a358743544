"""Benchmark: the live feed's cost to the order API, 200 feeds open or none (issue 15).

    .venv/bin/python bench/bench_feeds.py                  # 5 rounds of each condition
    .venv/bin/python bench/bench_feeds.py --rounds 2 --seconds 8   # a quick try
    .venv/bin/python bench/bench_feeds.py --write-docs     # also update docs/benchmarks.md

The served stack of the system tests (``tests.system.stack.LiveStack``): gunicorn (2 sync
workers) for the API, uvicorn ``livecommerce.asgi`` for the feeds, a Celery worker, on
127.0.0.1 with ports the kernel picks, on this benchmark's own database (``lc_bench_feeds``,
re-created) and a Redis database it claims among 9-11 and 15 (``RedisClaim``). Unlike the tests'
stack the processes reach PostgreSQL and Redis directly: nothing is cut here, and the proxies'
threads would run in this process, beside the clock.

A live session shows an everyday product and one hot product per round. Each round measures
the order API (``POST /orders`` then ``POST /orders/{id}/pay``, one unit, the session named)
at a fixed pace (``--rate`` orders a second, well below what the two workers take, from
``--threads`` threads, each order started at its due time) for ``--seconds``, once with no feed
open and once with ``--feeds`` feeds open (in a process of their own, so their reading does not
share this process's interpreter with the clock, at nice 19, ``--readers-nice``: they stand for
viewers on other machines, so on this one they take only the CPU the service leaves); the order
of the two alternates from round to round. With the feeds open, after the measured window, the
round's hot product sells out, and every feed must show the ``product.sold_out`` and stats with
the session's units sold (read from the database) and the hot product at 0; the feeds then
close. Reported: p50/p95/p99 of the
calls per round and condition, the median over rounds, the ratio of the p99s against the 1.5x
ceiling (the issue's), and the CPU the feed process (uvicorn), the web workers and the readers
used. Bounded: no round starts past ``--budget`` seconds (225) from the start; ``--profile``
records uvicorn with py-spy during the first round with feeds (``bench/results/``).
"""

import argparse
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = os.environ.get("BENCH_FEEDS_DB", "lc_bench_feeds")
CEILING = 1.5
HOT_UNITS = 3
TITLE = "Live feed"


# --- the feeds, in a process of their own ---------------------------------------------------


def feed_process(conn, url: str, key: str, count: int, nice: int) -> None:
    """Serve ``open``/``check``/``close``/``quit`` commands from the benchmark over ``conn``."""
    from tests.system.feeds import FeedReader

    os.nice(nice)

    reader = None
    while True:
        command, *args = conn.recv()
        if command == "open":
            started = time.monotonic()
            reader = FeedReader(url, key, count).start()
            deadline = time.monotonic() + 60
            # open once every feed has its first stats (after the backlog of earlier rounds)
            while time.monotonic() < deadline and not reader.errors:
                if all(has_stats(m) for m in reader.messages):
                    break
                time.sleep(0.05)
            conn.send(
                {
                    "opened_s": time.monotonic() - started,
                    "with_stats": sum(1 for m in reader.messages if has_stats(m)),
                    "errors": reader.errors[:5],
                }
            )
        elif command == "check":
            product, units = args
            deadline = time.monotonic() + 30
            while True:
                behind = [m for m in reader.messages if not saw_sell_out(m, product, units)]
                if not behind or time.monotonic() > deadline or reader.errors:
                    break
                time.sleep(0.1)
            rising = sum(1 for m in reader.messages if stats_rose(m))
            failing = next((m for m in reader.messages if not stats_rose(m)), [])
            conn.send(
                {
                    "saw_sell_out": count - len(behind),
                    "stats_rose": rising,
                    "messages": sum(len(m) for m in reader.messages),
                    "errors": reader.errors[:5],
                    "not_rising_example": [(i, e, d.get("units_sold")) for i, e, d in failing][:40],
                }
            )
        elif command == "close":
            reader.close()
            reader = None
            conn.send({})
        else:
            if reader is not None:
                reader.close()
            return


def has_stats(messages: list[tuple]) -> bool:
    return any(e == "stats" for _, e, _ in messages)


def saw_sell_out(messages: list[tuple], product: str, units: int) -> bool:
    """The feed showed ``product``'s sell-out and, last, stats with ``units`` sold and it at 0."""
    return (
        any(e == "product.sold_out" and d["product"] == product for _, e, d in messages)
        and messages[-1][1] == "stats"
        and messages[-1][2]["units_sold"] == units
        and messages[-1][2]["available"][product] == 0
    )


def stats_rose(messages: list[tuple]) -> bool:
    units = [d["units_sold"] for _, e, d in messages if e == "stats"]
    return len(units) >= 2 and units[0] < units[-1] and units == sorted(units)


class Feeds:
    """The feed process, driven from here."""

    def __init__(self, url: str, key: str, count: int, nice: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=feed_process, args=(child, url, key, count, nice), daemon=True
        )
        self.process.start()

    def ask(self, *command, timeout: float = 90) -> dict:
        self.conn.send(command)
        if not self.conn.poll(timeout):
            raise RuntimeError(f"the feed process did not answer {command[0]} in {timeout} s")
        return self.conn.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            self.conn.send(("quit",))
            self.process.join(30)
        if self.process.is_alive():
            self.process.kill()


# --- the stack ------------------------------------------------------------------------------


def direct_stack(database: dict, log_dir: Path):
    """``LiveStack`` with its processes on PostgreSQL and Redis directly (no proxies)."""
    from tests.system.stack import APP_NAME_PREFIX, LiveStack, RedisClaim

    class DirectStack(LiveStack):
        def database_url(self, app: str) -> str:
            db = self.database
            return (
                f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
                f"?application_name={APP_NAME_PREFIX}_bench_{app}"
            )

        @property
        def broker_url(self) -> str:
            return self.redis_url

        def start(self) -> LiveStack:
            self.claim = RedisClaim()
            self.flush_broker()
            self.start_web()
            self.start_worker()
            self.start_feed_server()
            return self

    return DirectStack(database=database, log_dir=log_dir)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# --- the order API at a fixed pace ----------------------------------------------------------


class OrderAPI:
    """A host app placing and paying orders of the session, timing each call."""

    def __init__(self, base_url: str, key: str, session: str) -> None:
        self.url = f"{base_url}/api/v1/orders"
        self.headers = {"Authorization": f"Bearer {key}"}
        self.session = session

    def place_and_pay(self, http, product: str, quantity: int = 1) -> tuple[list[float], str]:
        """``([create s, pay s], error)``: the calls' latencies, and what failed ("" if none)."""
        took = []
        begin = time.perf_counter()
        created = http.post(
            self.url,
            json={
                "lines": [{"product": product, "quantity": quantity}],
                "live_session": self.session,
            },
            headers=self.headers,
            timeout=60,
        )
        took.append(time.perf_counter() - begin)
        if created.status_code != 201:
            return took, f"create {created.status_code}: {created.text[:200]}"
        order = created.json()
        begin = time.perf_counter()
        paid = http.post(
            f"{self.url}/{order['id']}/pay",
            json={"amount": order["total"], "payment_reference": "bench-feeds"},
            headers=self.headers,
            timeout=60,
        )
        took.append(time.perf_counter() - begin)
        return took, "" if paid.status_code == 200 else f"pay {paid.status_code}: {paid.text[:200]}"

    def paced(self, product: str, *, rate: float, seconds: float, threads: int) -> dict:
        """Orders placed and paid at ``rate`` a second for ``seconds``, each started at its due
        time by whichever of ``threads`` is free; every call's latency (s)."""
        import requests

        total = int(rate * seconds)
        started = time.monotonic() + 0.05
        lock = threading.Lock()
        next_index = 0
        calls: list[float] = []
        late: list[float] = []
        errors: list[str] = []

        def run() -> None:
            nonlocal next_index
            with requests.Session() as http:
                while True:
                    with lock:
                        index, next_index = next_index, next_index + 1
                    if index >= total:
                        return
                    pause = started + index / rate - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    late.append(max(0.0, -pause))
                    took, error = self.place_and_pay(http, product)
                    calls.extend(took)
                    if error:
                        errors.append(error)

        workers = [threading.Thread(target=run) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return {
            "orders": total,
            "calls": calls,
            "elapsed_s": time.monotonic() - started,
            "late_max_s": max(late, default=0.0),
            "errors": errors,
        }


def figures(samples: list[float]) -> dict:
    return {
        "calls": len(samples),
        **{f"p{q}_ms": common.percentile(samples, q) * 1000 for q in (50, 95, 99)},
    }


# --- the run --------------------------------------------------------------------------------


def measure(args) -> dict:
    """Start the stack, make the show, run the rounds; every round's figures."""
    from datetime import UTC, datetime
    from urllib.parse import urlsplit

    import requests

    from orders.feed import session_stats
    from tests.system import standalone
    from tests.system.workload import build_marketplace

    server = urlsplit(common.DB_HOST)
    database = {
        "NAME": DB_NAME,
        "HOST": server.hostname or "127.0.0.1",
        "PORT": server.port or 5432,
        "USER": server.username or "postgres",
    }
    common.LOG_DIR.mkdir(parents=True, exist_ok=True)
    stack = direct_stack(database, common.LOG_DIR)
    feeds = None
    rounds: list[dict] = []
    results: dict = {"rounds": rounds}
    try:
        stack.start()
        ops_key, finance_key = standalone.keys()
        market = build_marketplace(
            stack.base_url,
            ops_key=ops_key,
            finance_key=finance_key,
            products=1 + args.rounds,
            inventory=1_000_000,
        )
        host = market.host_apps[0]
        everyday, *hot = market.products
        for product in hot:
            market.fulfiller.products.update(product["id"], inventory=HOT_UNITS)
        session = market.fulfiller.live_sessions.create(
            title="Drop",
            scheduled_start=datetime.now(UTC),
            products=[p["id"] for p in market.products],
            host_apps=[host.partner["id"]],
        )
        session = market.fulfiller.live_sessions.start(session["id"])
        market.close()
        api = OrderAPI(stack.base_url, host.key, session["id"])
        feed_url = f"{stack.feed_url}/api/v1/live-sessions/{session['id']}/feed"
        feeds = Feeds(feed_url, host.key, args.feeds, args.readers_nice)
        web_pids = [stack.web.pid, *stack.web.children()]
        pace = {"rate": args.rate, "threads": args.threads}
        warm = api.paced(everyday["id"], seconds=3, **pace)  # both web workers warm
        print(f"warm-up: {warm['orders']} orders, {len(warm['errors'])} errors", flush=True)
        for number in range(args.rounds):
            # a round takes its two windows and about 10 s more (opening, the drop, closing)
            if time.monotonic() + 2 * args.seconds + 10 > args.deadline:
                results["stopped"] = f"after {number} rounds: --budget reached"
                print(f"stopping {results['stopped']}", flush=True)
                break
            # the condition that goes first alternates, so a drift of the machine's pace weighs
            # on both alike
            for condition in ("none", "feeds") if number % 2 == 0 else ("feeds", "none"):
                result: dict = {"round": number + 1, "condition": condition}
                if condition == "feeds":
                    result["opened"] = opened = feeds.ask("open")
                    if opened["errors"] or opened["with_stats"] < args.feeds:
                        raise RuntimeError(f"the feeds did not open: {opened}")
                result["load"] = common.load_average()
                spy = None
                if args.profile and condition == "feeds" and "profile" not in results:
                    spy = py_spy(stack.feed.pid, args.seconds)
                cpu = (
                    cpu_seconds([stack.feed.pid]),
                    cpu_seconds(web_pids),
                    cpu_seconds([feeds.process.pid]),
                )
                paced = api.paced(everyday["id"], seconds=args.seconds, **pace)
                if spy is not None:
                    results["profile"] = profile_of(spy)
                result.update(
                    feed_cpu_s=cpu_seconds([stack.feed.pid]) - cpu[0],
                    web_cpu_s=cpu_seconds(web_pids) - cpu[1],
                    reader_cpu_s=cpu_seconds([feeds.process.pid]) - cpu[2],
                    elapsed_s=paced["elapsed_s"],
                    late_max_s=paced["late_max_s"],
                    errors=paced["errors"][:5],
                    error_count=len(paced["errors"]),
                    calls=figures(paced["calls"]),
                )
                if condition == "feeds":
                    # the round's hot product sells out while the feeds watch
                    product = hot[number]["id"]
                    with requests.Session() as http:
                        _, error = api.place_and_pay(http, product, HOT_UNITS)
                    if error:
                        raise RuntimeError(f"the drop failed: {error}")
                    units = session_stats(session["id"])["units_sold"]
                    result["check"] = {**feeds.ask("check", product, units), "units_sold": units}
                    feeds.ask("close")
                print(line(result), flush=True)
                rounds.append(result)
    except BaseException:
        for title, text in stack.log_sections(40):
            print(f"--- {title}\n{text}", file=sys.stderr)
        raise
    finally:
        if feeds is not None:
            feeds.stop()
        stack.stop()
        from django.db import connection

        connection.close()
    return results


PROFILE = common.RESULTS_DIR / "feeds-uvicorn.txt"
OURS = r"[(/](orders|partners|livecommerce)/"


def py_spy(pid: int, seconds: float):
    """py-spy recording the uvicorn process (every thread, idle ones left out) for ``seconds``,
    as collapsed stacks in ``bench/results/feeds-uvicorn.txt``."""
    PROFILE.unlink(missing_ok=True)
    return subprocess.Popen(
        [
            str(common.VENV_BIN / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--duration",
            str(max(1, int(seconds))),
            "--format",
            "raw",
            "--output",
            str(PROFILE),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def profile_of(spy) -> dict:
    """What the uvicorn process was busy with: samples per function of ours (cumulative) and
    per innermost frame."""
    _, stderr = spy.communicate(timeout=60)
    if spy.returncode != 0 or not PROFILE.exists():
        return {"error": stderr.strip()[:300]}
    total = 0
    own: Counter = Counter()
    ours: Counter = Counter()
    for text in PROFILE.read_text().splitlines():
        stack, _, count = text.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1].split(" (")[0] + " (" + frames[-1].rsplit("/", 1)[-1]] += int(count)
        for name in {f.split(" (")[0] for f in frames if re.search(OURS, f)}:
            ours[name] += int(count)
    return {"samples": total, "own": own.most_common(12), "ours": ours.most_common(12)}


def line(result: dict) -> str:
    c = result["calls"]
    text = (
        f"round {result['round']} {result['condition']:>5}: {c['calls']} calls, p50 "
        f"{c['p50_ms']:.1f} p95 {c['p95_ms']:.1f} p99 {c['p99_ms']:.1f} ms; CPU uvicorn "
        f"{result['feed_cpu_s']:.1f} s, gunicorn {result['web_cpu_s']:.1f} s, readers "
        f"{result['reader_cpu_s']:.1f} s; "
        f"load {result['load']:.2f}; errors {result['error_count']}"
    )
    if "check" in result:
        text += f"; {result['check']}"
    return text


def summarize(results: dict, args) -> dict:
    by = {c: [r for r in results["rounds"] if r["condition"] == c] for c in ("none", "feeds")}
    median = {
        c: {q: statistics.median(r["calls"][q] for r in rs) for q in ("p50_ms", "p95_ms", "p99_ms")}
        for c, rs in by.items()
    }
    checks = [r["check"] for r in by["feeds"]]
    return {
        "rounds": min(len(rs) for rs in by.values()),
        "median": median,
        "ratio_p99": median["feeds"]["p99_ms"] / median["none"]["p99_ms"],
        "ratio_p50": median["feeds"]["p50_ms"] / median["none"]["p50_ms"],
        "feeds_ok": all(
            c["saw_sell_out"] == args.feeds and c["stats_rose"] == args.feeds and not c["errors"]
            for c in checks
        ),
        "errors": sum(r["error_count"] for r in results["rounds"]),
        # CPU time over the round's time, per process: uvicorn, the web workers, the readers
        "cpu_per_s": {
            what: {
                c: statistics.median(r[f"{what}_cpu_s"] / r["elapsed_s"] for r in rs)
                for c, rs in by.items()
            }
            for what in ("feed", "web", "reader")
        },
    }


def render(r: dict) -> str:
    f, s, c = common.fmt, r["summary"], r["config"]
    m = r["machine"]
    label = {"none": "none", "feeds": f"{c['feeds']} open"}
    cpu = ("feed", "web", "reader")

    def row(first, condition: str, calls: dict, shares: list[float], *rest) -> list:
        latencies = [f(calls[q]) for q in ("p50_ms", "p95_ms", "p99_ms")]
        return [first, label[condition], *latencies, *(f"{x:.0%}" for x in shares), *rest]

    rows = []
    for result in r["rounds"]:
        check = result.get("check")
        rows.append(
            row(
                result["round"],
                result["condition"],
                result["calls"],
                [result[f"{what}_cpu_s"] / result["elapsed_s"] for what in cpu],
                f"{result['load']:.2f}",
                f"{check['saw_sell_out']} / {c['feeds']}" if check else "",
            )
        )
    for condition in ("none", "feeds"):
        shares = [s["cpu_per_s"][what][condition] for what in cpu]
        rows.append(row("**median**", condition, s["median"][condition], shares, "", ""))
    met = s["ratio_p99"] <= CEILING
    return "\n".join(
        [
            f"`bench/bench_feeds.py` on {r['date']}, {m['nproc']} CPUs ({m['cpu_model']}), "
            f"PostgreSQL {m['postgresql']}, Redis {m['redis']}. 1-minute load average before / "
            f"after: {r['load_before']:.2f} / {r['load_after']:.2f}.",
            "",
            f"gunicorn (2 sync workers) for the API, uvicorn `livecommerce.asgi` for the feeds, a "
            f"Celery worker; one live session. Each round: {f(c['rate'], 0)} orders/s "
            f"(`POST /orders` then `/pay`, one unit) from {c['threads']} threads for "
            f"{f(c['seconds'], 0)} s ({2 * int(c['rate'] * c['seconds'])} calls) with no feed "
            f"open, and the same with {c['feeds']} feeds "
            f"open (read by a process of their own at nice {c['readers_nice']}: the viewers "
            "stand for clients on other machines, so on this one they take the CPU the service "
            "leaves); the order of the two alternates. Latency of "
            "each call, create and pay together. CPU: the uvicorn process's, the web workers' "
            "and the feed readers' CPU time over the round's time (100% is one core)."
            + (f" Stopped {r['stopped']}." if r.get("stopped") else ""),
            "",
            common.table(
                [
                    "round",
                    "feeds",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "uvicorn CPU",
                    "gunicorn CPU",
                    "readers' CPU",
                    "load",
                    "saw the sell-out",
                ],
                rows,
                "llrrrrrrrr",
            ),
            "",
            common.table(
                ["target (same run)", "measured", "target", ""],
                [
                    [
                        f"order API p99 with {c['feeds']} feeds / with none (median of rounds)",
                        f"{s['ratio_p99']:.2f}x",
                        f"≤ {CEILING}x",
                        "met" if met else "**not met**",
                    ],
                    ["p50 likewise", f"{s['ratio_p50']:.2f}x", "", ""],
                    [
                        "every feed saw its stats rise and each sell-out",
                        "yes" if s["feeds_ok"] else "**no**",
                        "yes",
                        "met" if s["feeds_ok"] else "**not met**",
                    ],
                    [
                        "order API errors",
                        s["errors"],
                        "0",
                        "met" if not s["errors"] else "**not met**",
                    ],
                ],
                "lrrl",
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each condition")
    parser.add_argument("--seconds", type=float, default=15, help="measured seconds a round")
    parser.add_argument("--rate", type=float, default=8, help="orders (create + pay) a second")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--readers-nice",
        type=int,
        default=19,
        help="the feed readers' niceness: they stand for viewers on other machines (0: not)",
    )
    parser.add_argument(
        "--budget", type=float, default=225, help="seconds in all: no round starts past it"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy on uvicorn during the first feeds round"
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    args.deadline = time.monotonic() + args.budget
    load_before = common.load_average()
    common.create_database(DB_NAME)
    common.setup_django(DB_NAME)
    common.migrate()
    results = measure(args)
    results.update(
        config={k: v for k, v in vars(args).items() if k != "deadline"},
        load_before=load_before,
        load_after=common.load_average(),
        machine=common.machine(),
        date=common.today(),
    )
    results["summary"] = summarize(results, args)
    common.save_result("feeds", results)
    if "profile" in results:
        print(f"uvicorn profile ({PROFILE}): {json.dumps(results['profile'], indent=1)}")
    report = render(results)
    print(report)
    if args.write_docs:
        common.write_section(TITLE, report)


if __name__ == "__main__":
    main()
