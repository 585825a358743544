"""One executor per settlement run: a session advisory lock (PostgreSQL) or a file lock
(SQLite, see ``commissions.settlements.portable``), held across the run's transactions."""

from django.db import connection

from commissions.settlements import portable
from commissions.settlements.models import (
    SettlementRun,
)


class RunLock:
    """A session-level advisory lock on one run: one executor at a time.

    Held across the run's several transactions and released when done, or by PostgreSQL when
    the worker's connection dies with it. On SQLite, a file lock that dies with the process.
    """

    def __init__(self, run_id: str) -> None:
        self.key = self.key_for(run_id)
        self.acquired = False
        self.file_lock = portable.RunFileLock(self.key) if connection.vendor == "sqlite" else None

    @staticmethod
    def key_for(run_id: str) -> str:
        return f"settlement_run:{run_id}"

    def __enter__(self) -> bool:
        if self.file_lock is not None:
            self.acquired = self.file_lock.acquire()
            return self.acquired
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [self.key])
            self.acquired = bool(cursor.fetchone()[0])
        return self.acquired

    def __exit__(self, *exc_info) -> None:
        if self.file_lock is not None:
            self.file_lock.release()
        elif self.acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [self.key])


def run_executing(run: SettlementRun) -> bool:
    """Whether a worker is executing the run now (it holds the run's advisory lock)."""
    key = RunLock.key_for(run.pk)
    if connection.vendor == "sqlite":
        lock = portable.RunFileLock(key)
        free = lock.acquire()
        lock.release()
        return not free
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        free = bool(cursor.fetchone()[0])
        if free:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
    return not free
