"""``python -m clients.simulators``: run the live-shopping scenario against a running service.

Keys come from ``--ops-key``/``--finance-key``, else from ``OPS_KEY``/``FINANCE_KEY`` in the
environment or in ``--env-file`` (``var/demo.env``, written by ``scripts/dev.sh``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from clients.simulators.scenario import run_scenario


def _env_file(path: str) -> dict[str, str]:
    values = {}
    file = Path(path)
    if file.exists():
        for line in file.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                values[name.strip()] = value.strip()
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clients.simulators",
        description="Live shopping over HTTP: viewers buy, the fulfillment partner ships, "
        "finance settles and reports, and the books are checked.",
    )
    parser.add_argument("--base-url", default=os.environ.get("BASE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--env-file", default="var/demo.env")
    parser.add_argument("--ops-key")
    parser.add_argument("--finance-key")
    parser.add_argument("--viewers", type=int, default=40)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--operator-command",
        help="run this before settling, e.g. 'python manage.py close_return_windows' "
        "(with RETURN_WINDOW_DAYS=0 the delivered orders complete and their money settles)",
    )
    parser.add_argument(
        "--completion-timeout",
        type=float,
        default=0.0,
        help="seconds to wait for the service's own task to complete delivered orders",
    )
    args = parser.parse_args(argv)

    found = {**_env_file(args.env_file), **os.environ}
    ops_key = args.ops_key or found.get("OPS_KEY")
    finance_key = args.finance_key or found.get("FINANCE_KEY")
    if not ops_key or not finance_key:
        parser.error("need an ops and a finance key (--ops-key/--finance-key or --env-file)")

    def operator() -> None:
        subprocess.run(shlex.split(args.operator_command), check=True)  # noqa: S603

    result = run_scenario(
        args.base_url,
        ops_key=ops_key,
        finance_key=finance_key,
        viewers=args.viewers,
        threads=args.threads,
        seed=args.seed,
        close_return_windows=operator if args.operator_command else None,
        completion_timeout=args.completion_timeout,
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
