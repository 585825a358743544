"""Settlement reads, already scoped to the caller."""

from django.db.models import Q, QuerySet

from commissions.choices import EntryKind
from commissions.models import LedgerLine
from commissions.settlements.models import (
    Settlement,
    SettlementRun,
)


def settlement_list(*, caller) -> QuerySet[Settlement]:
    """The settlements the caller may see: finance all, a payee its own.

    A settlement whose ledger entry a crashed run has not posted yet is not shown.
    """
    return Settlement.objects.visible_to(caller).filter(entry__isnull=False)


def settlement_run_list(*, caller) -> QuerySet[SettlementRun]:
    return SettlementRun.objects.visible_to(caller)


def settlement_lines(*, settlement: Settlement) -> QuerySet[LedgerLine]:
    """Every ledger line the settlement covers, in id order (an index range scan)."""
    return (
        LedgerLine.objects.filter(
            account_id=settlement.account_id,
            id__gt=settlement.after_line_id,
            id__lte=settlement.to_line_id,
        )
        .filter(~Q(kind=EntryKind.SETTLEMENT))
        .order_by("id")
    )
