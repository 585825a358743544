"""Settlement runs on SQLite, the embedded default: the same settlements as on PostgreSQL.

PostgreSQL (production, benchmarked) executes a run with two things SQLite does not have:
session advisory locks (one executor per run) and a ``SHARE`` lock on the ledger lines table
(the watermark). This module is what stands in for each on SQLite; the rest of a run (the
figures' SQL, the steps recorded on the run, ``ledger_post_many``, the events, the crash
safety) is the same code on both databases.

- **The figures** need nothing of their own: ``commissions.settlements.sql`` has one SQL text
  of them for both databases; only its ending differs (SQLite selects the rows and they are
  written with one ``bulk_create``, where PostgreSQL inserts them in the same statement).
- **The watermark**: no lock on the table is needed. Every transaction on the embedded default
  begins ``IMMEDIATE`` (settings), i.e. takes SQLite's one database write lock at ``BEGIN`` and
  holds it to the end, and SQLite has one writer at a time. So while the run's transaction holds
  the write lock no other transaction is inserting ledger lines: every line that exists is
  committed, and ``MAX(id)`` cannot pass over a line still being written (the gap PostgreSQL's
  SHARE lock closes). Ids come from ``AUTOINCREMENT`` and are handed out in commit order, so
  later lines all get higher ids. ``hold_write_lock`` makes sure of the write lock even in a
  transaction that began otherwise (a savepoint inside a deferred transaction).
- **One range computation at a time per currency**: the same write lock, held by ``_prepare``'s
  transaction from its first statement to its commit, serialises two runs' range computations
  (PostgreSQL takes an advisory transaction lock for it), and the unique constraint on
  (account, ``after_line_id``) still refuses two ranges starting at one line.
- **One executor per run**: an exclusive ``flock`` on a small file named after the database and
  the run (``RunFileLock``). The operating system drops it when the process dies, as
  PostgreSQL drops a session advisory lock with the worker's connection, so a run left
  ``running`` by a dead process is found and queued again the same way. SQLite is a file on
  one machine, so every process that can write it can see the lock.
"""

import hashlib
import os
import tempfile
import threading
from pathlib import Path

from django.db import connection
from django.db.models import F, Max
from django.db.models.functions import Coalesce

from commissions.models import LedgerLine
from commissions.settlements.models import SettlementRun

try:
    import fcntl
except ImportError:  # Windows: locks held by this process only (see RunFileLock)
    fcntl = None  # type: ignore[assignment]


def hold_write_lock(run_id: str) -> None:
    """Hold SQLite's database write lock from here to the end of the transaction.

    An ``IMMEDIATE`` transaction (the settings' default) has it from ``BEGIN`` and this changes
    nothing; a transaction begun otherwise takes it now, before it reads anything, so what it
    reads next cannot change under it. (SQLite has no ``SELECT ... FOR UPDATE``: a write is
    how a transaction takes the lock.)
    """
    SettlementRun.objects.filter(pk=run_id).update(attempts=F("attempts"))


def watermark() -> int:
    """The highest ledger line id: every line at or below it is committed (see the docstring:
    call it while holding the write lock)."""
    return LedgerLine.objects.aggregate(top=Coalesce(Max("id"), 0))["top"]


# --- One executor per run -----------------------------------------------------------------


def _lock_dir() -> Path:
    user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    path = Path(tempfile.gettempdir()) / f"livecommerce-locks-{user}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


_held_here: set[str] = set()  # without fcntl: the keys this process holds
_held_here_guard = threading.Lock()


class RunFileLock:
    """An exclusive, non-blocking lock on a key, held until ``release`` or the process's end.

    ``flock`` on a file named after the database and the key: two processes, or two threads
    with their own ``RunFileLock``, exclude each other, and the kernel releases the lock of a
    process that dies. Without ``fcntl`` (Windows) it excludes the threads of this process only.
    """

    def __init__(self, key: str) -> None:
        database = os.path.abspath(str(connection.settings_dict["NAME"]))
        digest = hashlib.sha256(f"{database}\0{key}".encode()).hexdigest()[:40]
        self.key = f"{database}\0{key}"
        self.path = _lock_dir() / f"{digest}.lock"
        self._file = None
        self.acquired = False

    def acquire(self) -> bool:
        if fcntl is None:
            with _held_here_guard:
                if self.key in _held_here:
                    return False
                _held_here.add(self.key)
            self.acquired = True
            return True
        file = self.path.open("a+b")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        self._file = file
        self.acquired = True
        return True

    def release(self) -> None:
        if not self.acquired:
            return
        self.acquired = False
        if fcntl is None:
            with _held_here_guard:
                _held_here.discard(self.key)
            return
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None
