"""The head of docs/benchmarks.md: the machine, the commands, and every target met or not.

    .venv/bin/python bench/summary.py --begin   # before the benchmarks: load, machine, time
    .venv/bin/python bench/summary.py --end     # after: "Summary" and "Machine and commands"

``bench/run_all.sh`` calls both around the benchmarks. ``--end`` reads what each benchmark
left (``bench/results/*.json`` for the order, webhook, live feed and query benchmarks; the
"Settlement" and "Reports" sections their own scripts wrote), writes the two sections and puts
every section of the document in a fixed order. Sections it does not know (the analysis written by
hand after a run) are kept as they are, after the generated ones.
"""

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.bench_orders import (
    TARGET_CALL_RATIO,
    TARGET_HOT_RATIO,
    TARGET_P99_MS,
    TARGET_PGBENCH_RATIO,
    call_figures,
    hot_figures,
    run_errors,
)

ORDER = [
    "Summary",
    "Machine and commands",
    "Order rush",
    "Profile of the order path",
    "Webhooks",
    "Live feed",
    "Settlement",
    "Reports",
    "Query counts",
]
INTRO = (
    "# Benchmarks\n\n"
    "The service measured against its own limits, each figure beside a baseline measured in "
    "the same run on the same machine (issue 10). One command runs them all and rewrites this "
    "page: `./bench/run_all.sh` (or `make bench`). The summary, the machine and the sections "
    "after the analysis are generated; the analysis (what holds a target back, what was tried, "
    "what to change) is written by hand after a run and kept when the page is regenerated.\n"
)


def begin() -> None:
    common.save_result(
        "run",
        {
            "started": time.time(),
            "load_before": list(__import__("os").getloadavg()),
            "machine": common.machine(),
            "date": common.today(),
            "commit": _git("rev-parse", "--short", "HEAD"),
            "uncommitted": len(_git("status", "--short", "--untracked-files=no").splitlines()),
        },
    )


def _git(*args: str) -> str:
    import subprocess

    result = subprocess.run(["git", *args], cwd=common.ROOT, capture_output=True, text=True)
    return result.stdout.strip()


def _sections(text: str) -> tuple[str, dict[str, str]]:
    parts = re.split(r"^## ", text, flags=re.M)
    head, sections = parts[0], {}
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        sections[title.strip()] = body.strip("\n")
    return head, sections


def settlement_figures(body: str) -> dict | None:
    ratio = re.search(r"\| ratio[^|]*\| ([\d.]+)x", body)
    service = re.search(r"\| service:[^|]*\| ([\d.]+) s \| (\d+) MB", body)
    if not ratio or not service:
        return None
    return {
        "ratio": float(ratio.group(1)),
        "seconds": float(service.group(1)),
        "rss": int(service.group(2)),
    }


def reports_figures(body: str) -> dict | None:
    rows = re.findall(
        r"^\| (year|month) \| (\w+) \| \d+ \| ([\d.]+) \| ([\d.]+) \| [\d.]+ "
        r"\| ([\d.]+) \| [\d.]+ \| ([\d.]+) \|$",
        body,
        flags=re.M,
    )
    if not rows:
        return None
    worst_p95 = max(rows, key=lambda r: float(r[3]))
    worst_ratio = max(rows, key=lambda r: float(r[5]))
    return {
        "count": len(rows),
        "max_p95": float(worst_p95[3]),
        "max_p95_at": f"{worst_p95[0]} by {worst_p95[1]}",
        "max_ratio": float(worst_ratio[5]),
        "max_ratio_at": f"{worst_ratio[0]} by {worst_ratio[1]}",
    }


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def summary(sections: dict[str, str]) -> str:
    f = common.fmt
    rows = []
    orders = common.load_result("orders")
    if orders:
        calls = call_figures(orders)
        rush = orders["rush"]["calls"]
        paced = orders["paced"]["calls"]
        p99 = max(paced["create"]["p99_ms"], paced["pay"]["p99_ms"])
        errors = run_errors(orders)
        ratio = rush["pay"]["per_s"] / orders["pgbench"]["tps"]
        for c in calls:
            ping = c["ping_per_s"]
            rows += [
                [
                    "Order rush",
                    f"`POST /orders` req/s vs the minimal DRF insert, {c['clients']} clients",
                    f"{c['create_ratio']:.0%} ({f(c['create_per_s'])} vs {f(ping)})",
                    "≥ 40%",
                    _met(c["create_ratio"] >= TARGET_CALL_RATIO),
                ],
                [
                    "Order rush",
                    f"`POST /orders/{{id}}/pay` req/s vs the minimal DRF insert, "
                    f"{c['clients']} clients",
                    f"{c['pay_ratio']:.0%} ({f(c['pay_per_s'])} vs {f(ping)})",
                    "≥ 40%",
                    _met(c["pay_ratio"] >= TARGET_CALL_RATIO),
                ],
            ]
        rows += [
            [
                "Order rush",
                "p99 at half the rush's maximum rate"
                f" ({f(orders['paced']['offered_orders_per_s'])} orders/s offered; create, pay)",
                f"{f(paced['create']['p99_ms'])}, {f(paced['pay']['p99_ms'])} ms",
                "< 50 ms",
                _met(p99 < TARGET_P99_MS),
            ],
            ["Order rush", "errors", str(errors), "0", _met(errors == 0)],
            [
                "Order rush",
                "orders/s (create + pay) vs pgbench's order script",
                f"{ratio:.1%} ({f(rush['pay']['per_s'])} vs {f(orders['pgbench']['tps'])})",
                "≥ 10%",
                _met(ratio >= TARGET_PGBENCH_RATIO),
            ],
        ]
        hot = hot_figures(orders)
        if hot and "ratio" in hot:
            rows.append(
                [
                    "Order rush",
                    f"hot SKU at {orders['config']['hot_clients']} clients: one product's "
                    "orders/s vs the rush spread over 20",
                    f"{hot['ratio']:.0%} ({f(hot['hot_per_s'])} vs {f(hot['spread_per_s'])})",
                    "≥ 50%",
                    _met(hot["ratio"] >= TARGET_HOT_RATIO),
                ]
            )
        if hot and "units" in hot:
            rows.append(
                [
                    "Order rush",
                    f"a drop of {hot['units']:,} units sells exactly {hot['units']:,} "
                    "(counted in the database), every other buyer 409",
                    f"{hot['sold_counted']:,} sold, {hot['inventory_left']:,} left, "
                    f"{hot['told']:,} told 409, {hot['other_refusals']:,} other refusals",
                    "exactly",
                    _met(hot["exact"]),
                ]
            )
    settlement = settlement_figures(sections.get("Settlement", ""))
    if settlement:
        rows += [
            [
                "Settlement",
                "1M lines, 1,000 payees: time vs hand SQL",
                f"{settlement['ratio']:.2f}x ({settlement['seconds']:.2f} s)",
                "≤ 1.5x",
                _met(settlement["ratio"] <= 1.5),
            ],
            [
                "Settlement",
                "peak RSS",
                f"{settlement['rss']} MB",
                "< 300 MB",
                _met(settlement["rss"] < 300),
            ],
        ]
    else:
        rows.append(["Settlement", "see its section", "", "", "n/a"])
    reports = reports_figures(sections.get("Reports", ""))
    if reports:
        rows += [
            [
                "Reports",
                f"worst selector / hand SQL of {reports['count']} (p50)",
                f"{reports['max_ratio']:.2f}x ({reports['max_ratio_at']})",
                "≤ 1.5x",
                _met(reports["max_ratio"] <= 1.5),
            ],
            [
                "Reports",
                "worst p95 over 1M lines",
                f"{f(reports['max_p95'])} ms ({reports['max_p95_at']})",
                "< 300 ms",
                _met(reports["max_p95"] < 300),
            ],
        ]
    else:
        rows.append(["Reports", "see its section", "", "", "n/a"])
    webhooks = common.load_result("webhooks")
    if webhooks:
        burst, paced = webhooks["burst"], webhooks["paced"]
        rows += [
            [
                "Webhooks",
                f"deliveries/s ({burst['events']:,} events)",
                f(burst["deliveries_per_s"]),
                "≥ 300",
                _met(burst["deliveries_per_s"] >= 300),
            ],
            [
                "Webhooks",
                f"commit-to-delivery p99 at {f(webhooks['paced_rate'], 0)} events/s",
                f"{f(paced['p99_ms'] / 1000, 3)} s",
                "< 1 s",
                _met(paced["p99_ms"] < 1000),
            ],
        ]
    feeds = common.load_result("feeds")
    if feeds:
        s, c = feeds["summary"], feeds["config"]
        rows += [
            [
                "Live feed",
                f"order API p99, {c['feeds']} feeds open / none (median of {s['rounds']} rounds)",
                f"{s['ratio_p99']:.2f}x ({f(s['median']['feeds']['p99_ms'])} vs "
                f"{f(s['median']['none']['p99_ms'])} ms)",
                "≤ 1.5x",
                _met(s["ratio_p99"] <= 1.5),
            ],
            [
                "Live feed",
                "every feed saw its stats rise and each sell-out",
                "yes" if s["feeds_ok"] else "no",
                "yes",
                _met(s["feeds_ok"]),
            ],
        ]
    queries = common.load_result("queries")
    if queries:
        sizes = queries["sizes"]
        small = queries["runs"][str(sizes[0])]["calls"]
        large = queries["runs"][str(sizes[-1])]["calls"]
        growing = [k for k, v in large.items() if small.get(k, {}).get("queries") != v["queries"]]
        counted = [v for v in large.values() if v["kind"] in ("list", "read", "action")]
        rows.append(
            [
                "Query counts",
                f"{len(counted)} lists, reads and actions at {sizes[0]} and {sizes[-1]} items",
                "fixed" if not growing else f"{len(growing)} grow",
                "fixed",
                _met(not growing),
            ]
        )
    run = common.load_result("run") or {}
    load = run.get("load_before", [float("nan")])[0]
    return "\n".join(
        [
            f"Run of {run.get('date', common.today())}; 1-minute load average when it began: "
            f"{load:.2f} (each section gives its own before/after).",
            "",
            common.table(["benchmark", "figure", "measured", "target", ""], rows, "llrrl"),
        ]
    )


def machine_and_commands() -> str:
    run = common.load_result("run") or {}
    m = run.get("machine") or common.machine()
    elapsed = time.time() - run["started"] if run.get("started") else float("nan")
    settings = ", ".join(f"{k} {v}" for k, v in sorted(m["postgresql_settings"].items()))
    return "\n".join(
        [
            common.table(
                ["", ""],
                [
                    ["CPUs (`nproc`)", m["nproc"]],
                    ["CPU model", m["cpu_model"]],
                    ["memory", m["memory"]],
                    ["kernel", m["kernel"]],
                    ["PostgreSQL", f"{m['postgresql']} on 127.0.0.1 ({settings})"],
                    ["pgbench", m["pgbench"]],
                    ["Redis", m["redis"]],
                    ["Python", m["python"]],
                    [
                        "load average (1, 5, 15 min) at the start",
                        ", ".join(f"{x:.2f}" for x in run.get("load_before", [])),
                    ],
                    [
                        "load average at the end",
                        ", ".join(f"{x:.2f}" for x in __import__("os").getloadavg()),
                    ],
                    ["whole run", f"{elapsed / 60:.1f} min"],
                    [
                        "code",
                        f"commit {run.get('commit', '?')}, with {run.get('uncommitted', '?')} "
                        "files changed in the shared working tree (work in progress of others)",
                    ],
                ],
                "ll",
            ),
            "",
            "The machine is shared (other engineers' test suites run on it), so the load average "
            "is recorded; the baselines run in the same minutes as what they are compared with.",
            "",
            "Commands (each makes its own database on 127.0.0.1:5432 and its own Redis database "
            "index, and can be run alone; `--help` lists the knobs):",
            "",
            "```",
            "./bench/run_all.sh                                  # all of them, rewrites this page",
            ".venv/bin/python bench/bench_orders.py --write-docs     # lc_bench_orders, Redis 12",
            ".venv/bin/python bench/bench_webhooks.py --write-docs   # lc_bench_webhooks, Redis 13",
            ".venv/bin/python bench/bench_feeds.py --write-docs  # lc_bench_feeds, Redis 9-11/15",
            ".venv/bin/python bench/bench_queries.py --write-docs   # lc_bench_queries_*, Redis 14",
            ".venv/bin/python bench/bench_settlement.py --write-docs # lc_bench",
            ".venv/bin/python bench/bench_reports.py --write-docs    # lc_bench_reports",
            "```",
        ]
    )


def end() -> None:
    text = common.DOCS.read_text() if common.DOCS.exists() else INTRO
    _, sections = _sections(text)
    sections["Summary"] = summary(sections)
    sections["Machine and commands"] = machine_and_commands()
    known = [title for title in ORDER if title in sections]
    others = [title for title in sections if title not in ORDER]
    # Hand-written sections (the analysis) go right after the summary and the machine.
    ordered = known[:2] + others + known[2:]
    body = "\n\n".join(f"## {title}\n\n{sections[title]}" for title in ordered)
    common.DOCS.write_text(INTRO + "\n" + body.rstrip() + "\n")
    print(f"wrote {common.DOCS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--begin", action="store_true")
    parser.add_argument("--end", action="store_true")
    args = parser.parse_args()
    if args.begin:
        begin()
    if args.end:
        end()


if __name__ == "__main__":
    main()
