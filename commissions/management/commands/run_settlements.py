"""``python manage.py run_settlements --period-end DATE [--currency USD]``.

Runs, at once and in this process, the settlements the daily schedule would run for that
period end: one run per currency, settling the payees whose payout schedule is due, with the
scheduled periods that never ran before it and every run of the currency that failed or was
interrupted (see docs/settlements.md, "Catching up"). A run that already completed is left as
it is; one that failed or was interrupted is finished.
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from commissions.settlements.models import SettlementRunStatus
from commissions.settlements.periods import default_period_end
from commissions.settlements.runs import settlement_run_execute
from commissions.settlements.scheduling import settlement_runs_for_schedule
from livecommerce import money


class Command(BaseCommand):
    help = "Run the scheduled settlements for a period end now (synchronously)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--period-end",
            type=date.fromisoformat,
            default=None,
            help="The last day (UTC, YYYY-MM-DD) to settle; yesterday by default",
        )
        parser.add_argument(
            "--currency", default=None, help="Only this currency (default: every currency)"
        )

    def handle(self, *args, period_end: date | None, currency: str | None, **options) -> None:
        period_end = period_end or default_period_end()
        if currency is not None:
            try:
                money.exponent(currency)
            except money.MoneyError as exc:
                raise CommandError(exc.detail) from None
        runs = settlement_runs_for_schedule(
            period_end=period_end, currencies=[currency] if currency else None
        )
        if not runs:
            self.stdout.write(f"Nothing to settle up to {period_end.isoformat()}.")
        for run, _ in runs:
            if run.status != SettlementRunStatus.COMPLETED:
                try:
                    run = settlement_run_execute(run_id=run.pk)
                except Exception as exc:
                    raise CommandError(f"Run {run.pk} ({run.currency}) failed: {exc}") from exc
            self.stdout.write(
                f"{run.pk} {run.currency} up to {run.period_end.isoformat()}: {run.status}, "
                f"{run.settlement_count} settlements, "
                f"{money.to_decimal_string(run.net_payout, run.currency)} {run.currency}, "
                f"{run.below_minimum_count} below minimum"
            )
