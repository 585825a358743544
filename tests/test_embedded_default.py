"""The embedded default, end to end, the way a newcomer meets it: ``./scripts/dev.sh``.

No ``DATABASE_URL``, no ``CELERY_BROKER_URL``, no ``.env``: a copy of this working tree in a
temporary directory, so the service makes its own SQLite file (``db.sqlite3`` beside
``manage.py``, as it would in a fresh clone) and runs its Celery tasks in-process. The script
itself runs, unchanged: it installs the requirements, migrates, loads the demo platform,
starts ``runserver`` and plays the live-shopping scenario (viewers order and pay, the
fulfillment partner ships on webhooks, returns are refunded, the operator closes the return
windows, finance settles, pays out and reports, and the books are checked). Two liberties,
both for speed: ``.venv`` is this suite's own virtualenv (linked, so "Installing requirements"
finds everything installed and downloads nothing), and ``VIEWERS=8`` makes the scenario small.

Then, against the same server and database, what finance would look at next: the
reconciliation of the day, the settlement lines as CSV, and the operator's
``run_settlements`` command.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
# What a fresh clone does not have: build output, local state, caches, the developer's own
# configuration and database.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".env",
    "var",
    "db.sqlite3*",
    "staticfiles",
    "__pycache__",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    "*.log",
    "results",
)
# Settings a newcomer has not set; dev.sh chooses its own demo values for the last two.
CONFIGURATION = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DJANGO_SETTINGS_MODULE",
    "RETURN_WINDOW_DAYS",
    "WEBHOOK_ALLOW_PRIVATE_URLS",
)
SERVING = "==> The API is serving on"
DEADLINE = 240  # seconds; about 40 on this machine
# The server's own line per request (the request log and runserver's access log).
REQUEST_LOG = re.compile(r"INFO livecommerce\.request|\"(GET|POST|PUT|PATCH|DELETE|HEAD) /")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fresh_clone(target: Path) -> Path:
    """This working tree as a fresh clone would have it, with the suite's virtualenv."""
    shutil.copytree(REPO, target, ignore=NOT_IN_A_CLONE)
    if sys.prefix != sys.base_prefix:
        (target / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    else:  # the suite runs without a virtualenv: one that sees the installed packages
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", ".venv"],
            cwd=target,
            check=True,
        )
    return target


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    return values


class DevScript:
    """``./scripts/dev.sh`` in its own process group, its output collected line by line."""

    def __init__(self, clone: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in CONFIGURATION}
        env.update(HOST="127.0.0.1", PORT=str(port), VIEWERS="8", PYTHONUNBUFFERED="1")
        self.clone = clone
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            ["./scripts/dev.sh"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def story(self) -> str:
        """What the scripts said, without the server's line per request: what a failure shows."""
        said = [line for line in self.lines if not REQUEST_LOG.search(line)]
        return "\n".join(said)[-12000:]

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            if self.process.poll() is not None:
                self.reader.join(timeout=5)
                return any(text in line for line in self.lines)
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        """Stop the script and the server it started (its whole process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.reader.join(timeout=5)


@pytest.fixture
def dev_script(tmp_path):
    clone = _fresh_clone(tmp_path / "live-commerce")
    script = DevScript(clone, _free_port())
    yield script
    script.stop()


def test_dev_sh_runs_the_whole_service_on_sqlite_with_tasks_in_process(dev_script):
    # when: the newcomer's first command has set up, served and played the scenario
    finished = dev_script.wait_for(SERVING, timeout=DEADLINE)
    output = dev_script.output

    # then: the scenario ran to the end and every check it made passed
    story = dev_script.story
    assert finished, f"dev.sh did not get to serving in {DEADLINE} s:\n{story}"
    assert "SQLite file db.sqlite3" in output
    assert "The scenario reported a problem" not in output, story
    assert "Traceback" not in output, story
    checks = output.split("== Checks", 1)[-1]
    assert "[FAIL]" not in checks, story
    assert "[ok] every ledger entry balances" in checks, story
    settled = [line for line in checks.splitlines() if "settled what it earned" in line]
    assert len(settled) >= 3 and all("[ok]" in line for line in settled), checks
    assert (dev_script.clone / "db.sqlite3").exists()

    # and: the same books, read the way finance reads them after the scenario
    demo = _read_env_file(dev_script.clone / "var" / "demo.env")
    base = next(line for line in dev_script.lines if SERVING in line).split()[-1].rstrip("/")
    ready = requests.get(base.replace("/api/v1", "/readyz"), timeout=30)
    assert ready.status_code == 200, ready.text  # the SQLite database, no broker to reach
    finance = requests.Session()
    finance.headers["Authorization"] = f"Bearer {demo['FINANCE_KEY']}"
    runs = finance.get(f"{base}/settlement-runs", timeout=30).json()["results"]
    assert [run["status"] for run in runs] == ["completed"], runs
    today = runs[0]["period_end"]
    reconciliation = finance.get(
        f"{base}/reports/reconciliation",
        params={"date_from": today, "date_to": today, "currency": runs[0]["currency"]},
        timeout=30,
    )
    assert reconciliation.status_code == 200, reconciliation.text
    assert reconciliation.json()["consistent"] is True, reconciliation.json()
    assert reconciliation.json()["settlements_checked"] == runs[0]["settlement_count"]
    settlements = finance.get(f"{base}/settlements", timeout=30).json()["results"]
    assert len(settlements) == runs[0]["settlement_count"] >= 3
    assert {s["status"] for s in settlements} == {"paid"}
    largest = max(settlements, key=lambda s: s["line_count"])
    lines = finance.get(
        f"{base}/settlements/{largest['id']}/lines", params={"format": "csv"}, timeout=30
    )
    assert lines.status_code == 200, lines.text
    rows = lines.text.strip().splitlines()
    assert rows[0].startswith("id,entry,kind,share,order")
    assert len(rows) - 1 == largest["line_count"] > 1

    # and: the operator's command settles yesterday in its own process, beside the server
    command = subprocess.run(
        [".venv/bin/python", "manage.py", "run_settlements"],
        cwd=dev_script.clone,
        env={k: v for k, v in os.environ.items() if k not in CONFIGURATION},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert command.returncode == 0, command.stdout + command.stderr
    assert ": completed, 0 settlements" in command.stdout, command.stdout
