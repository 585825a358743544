"""``python -m clients.simulators.drop``: a live drop against a running service.

Ops onboards a fulfillment partner, a brand, a host app and a creator; the fulfillment partner
lists a hot product with few units; the host app goes live, flashes a live price, lets more
viewers than units buy at once, leaves a few checkouts unpaid until their holds expire, and
prints what the show's live feed says all along. Keys as for ``python -m clients.simulators``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from clients.api import LiveCommerceClient
from clients.simulators.__main__ import _env_file
from clients.simulators.finance import Check
from clients.simulators.host_app import DropResult, HostApp
from clients.simulators.scenario import _onboard


@dataclass
class DropRun:
    result: DropResult
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def run_drop(
    base_url: str,
    *,
    ops_key: str,
    units: int = 10,
    buyers: int = 24,
    abandon: int = 3,
    hold_seconds: int = 5,
    expire: Callable[[], object] | None = None,
    expiry_timeout: float = 60.0,
    out: TextIO | None = None,
) -> DropRun:
    out = out or sys.stdout

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    tag = secrets.token_hex(2)
    with LiveCommerceClient(base_url, ops_key) as ops:
        say(f"== A live drop, run {tag}")
        world = _onboard(ops, f"drop-{tag}")
        with (
            ops.with_key(world["keys"]["fulfillment"]) as fulfiller,
            ops.with_key(world["keys"]["host_app"]) as host_api,
        ):
            product = fulfiller.products.create(
                brand=world["brands"][0],
                sku=f"DROP-{tag}",
                title="Limited glow palette",
                price="39.00",
                currency="USD",
                inventory=units,
            )
            result = HostApp(host_api).drop(
                creator_id=world["creator"],
                product=product,
                flash_price="24.00",
                buyers=buyers,
                abandon=abandon,
                hold_seconds=hold_seconds,
                expire=expire,
                expiry_timeout=expiry_timeout,
                say=say,
            )
            final = fulfiller.products.get(product["id"])
    paid_units = len(result.sold)
    checks = [
        Check(
            "every unit sold once",
            len(result.sold) + len(result.abandoned) == units,
            f"{len(result.sold)} paid + {len(result.abandoned)} abandoned of {units}",
        ),
        Check(
            "other buyers told nothing is left",
            len(result.sold_out) == buyers - units
            and all(e.get("available") == 0 for e in result.sold_out),
        ),
        Check(
            "paid at the flash price",
            all(o["lines"][0]["unit_price"] == "24.00" for o in result.sold)
            and all(o["lines"][0]["list_price"] == "39.00" for o in result.sold),
        ),
        Check(
            "abandoned checkouts expired, units back",
            sorted(result.expired) == sorted(result.abandoned)
            and final["inventory"] == units - paid_units,
            f"{len(result.expired)} expired, {final['inventory']} units on hand",
        ),
        Check(
            "the feed told it all",
            bool(result.events("product.sold_out"))
            and bool(result.events("product.back_in_stock"))
            and bool(result.events("live_session.ended"))
            and max((s["units_sold"] for s in result.events("stats")), default=0) == paid_units,
        ),
    ]
    for check in checks:
        say(f"   {'ok ' if check.ok else 'FAILED'} {check.name} {check.detail}".rstrip())
    return DropRun(result=result, checks=checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clients.simulators.drop",
        description="A live drop over HTTP: a flash price, a hot product selling out, abandoned "
        "checkouts expiring, all watched on the show's live feed.",
    )
    parser.add_argument("--base-url", default=os.environ.get("BASE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--env-file", default="var/demo.env")
    parser.add_argument("--ops-key")
    parser.add_argument("--units", type=int, default=10)
    parser.add_argument("--buyers", type=int, default=24)
    parser.add_argument("--hold-seconds", type=int, default=5)
    parser.add_argument(
        "--operator-command",
        help="run this once the holds have ended, e.g. 'python manage.py expire_orders' "
        "(without it, the service's own periodic task must expire them)",
    )
    args = parser.parse_args(argv)
    found = {**_env_file(args.env_file), **os.environ}
    ops_key = args.ops_key or found.get("OPS_KEY")
    if not ops_key:
        parser.error("need an ops key (--ops-key or --env-file)")

    def operator() -> None:
        subprocess.run(shlex.split(args.operator_command), check=True)  # noqa: S603

    run = run_drop(
        args.base_url,
        ops_key=ops_key,
        units=args.units,
        buyers=args.buyers,
        hold_seconds=args.hold_seconds,
        expire=operator if args.operator_command else None,
    )
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
