"""A small progress bar for the scenario's long steps (standard library only).

On a terminal it redraws one line in place; elsewhere (CI logs, pipes) it prints the label once
and the final count, so logs stay readable.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class Progress:
    """``with Progress("Viewers ordering", total=40) as bar: ... bar.advance()``."""

    def __init__(self, label: str, total: int, *, out: TextIO | None = None, width: int = 30):
        self.label = label
        self.total = max(total, 0)
        self.done = 0
        self.width = width
        self.out = out or sys.stderr
        self._lock = threading.Lock()
        self._live = bool(getattr(self.out, "isatty", lambda: False)())
        if not self._live:
            self.out.write(f"{label} ...\n")
            self.out.flush()

    def __enter__(self) -> Progress:
        self._draw()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def advance(self, step: int = 1) -> None:
        with self._lock:
            self.done = min(self.total, self.done + step)
            self._draw()

    def update(self, done: int) -> None:
        with self._lock:
            self.done = min(self.total, max(done, 0))
            self._draw()

    def close(self) -> None:
        if self._live:
            self.out.write("\n")
        else:
            self.out.write(f"{self.label}: {self.done}/{self.total}\n")
        self.out.flush()

    def _draw(self) -> None:
        if not self._live:
            return
        filled = self.width * self.done // self.total if self.total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        self.out.write(f"\r{self.label:<28} [{bar}] {self.done}/{self.total}")
        self.out.flush()
