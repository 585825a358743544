"""Settlement periods: a run settles one currency up to the end of one UTC day, ``period_end``;
the schedule decides which payout schedules are due on which day."""

from datetime import date, timedelta

from django.db import connection
from django.utils import timezone

from commissions.settlements.models import (
    SettlementRun,
    SettlementRunTrigger,
)
from livecommerce.api import check_currency
from livecommerce.errors import AppValidationError
from partners.choices import PayoutSchedule


def database_today() -> date:
    """Today (UTC) by the database's clock, the clock periods are judged by."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT (statement_timestamp() AT TIME ZONE 'UTC')::date")
            return cursor.fetchone()[0]
    return timezone.now().date()  # SQLite: one machine, one clock


def default_period_end(today: date | None = None) -> date:
    """The daily run settles up to the end of yesterday (UTC): a day that is over."""
    return (today or database_today()) - timedelta(days=1)


def schedules_due(period_end: date) -> list[str]:
    """The payout schedules whose payees the scheduled run for ``period_end`` settles.

    Daily payees every day; weekly payees when the period ends on a Sunday (the run happens on
    the Monday and covers the week that ended); monthly payees when it ends on the last day of a
    month (the run happens on the 1st).
    """
    due = [PayoutSchedule.DAILY.value]
    if period_end.weekday() == 6:
        due.append(PayoutSchedule.WEEKLY.value)
    if (period_end + timedelta(days=1)).day == 1:
        due.append(PayoutSchedule.MONTHLY.value)
    return due


def run_schedules(run: SettlementRun) -> list[str]:
    """The payout schedules a run settles: the schedule's runs those due, finance's all."""
    if run.trigger == SettlementRunTrigger.SCHEDULE:
        return schedules_due(run.period_end)
    return list(PayoutSchedule.values)


def check_period(period_end: date, currency: str) -> None:
    check_currency(currency)
    if period_end > database_today():
        raise AppValidationError(
            "period_end_in_future",
            "A period can only be settled once it has begun.",
            attr="period_end",
        )
