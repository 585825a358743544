"""A day's boundaries: the one place a UTC date becomes instants.

A day is ``[day_start(day), day_end(day))``, UTC; a period of days, both dates inclusive, is
``period_bounds``. Settlement periods (a run settles up to the end of ``period_end``), reports,
reconciliation and statements all read the ledger by these.
"""

from datetime import UTC, date, datetime, time, timedelta


def day_start(day: date) -> datetime:
    """The first instant of ``day`` (UTC midnight)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_end(day: date) -> datetime:
    """The first instant after ``day``: what was created before it belongs to the day."""
    return day_start(day + timedelta(days=1))


def period_bounds(*, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of the UTC days from ``date_from`` to ``date_to``, both inclusive."""
    return day_start(date_from), day_end(date_to)
