"""The SDK installs on its own: `pip install ./clients` gives the `clients` package without the
server, with its README as the package description."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_pip_installs_the_sdk_alone(tmp_path):
    target = tmp_path / "site"

    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT / "clients"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr

    # imported from the install, away from the repository: no server module comes along
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, clients, clients.webhooks, clients.simulators; "
            "print(clients.__file__); print(clients.LiveCommerceClient.__name__); "
            "print(any(m.split('.')[0] in {'django', 'livecommerce', 'orders'} "
            "for m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert probe.returncode == 0, probe.stderr
    where, name, server_loaded = probe.stdout.split()
    assert where.startswith(str(target)) and name == "LiveCommerceClient"
    assert server_loaded == "False"
    [metadata] = target.glob("livecommerce_client-*.dist-info/METADATA")
    text = metadata.read_text()
    assert "Requires-Dist: requests" in text and "pip install ./clients" in text
