"""The ledger's accounts: created on first use, and the payees' available accounts locked in one
global order by whatever decides from, or changes, what a payee owes."""

from collections.abc import Iterable

from django.db import connection

from commissions.choices import AccountPurpose
from commissions.models import LedgerAccount
from livecommerce import money, rows

P = AccountPurpose


AccountKey = tuple[str, str | None]  # (purpose, partner_id); the currency is the entry's


def ledger_accounts(
    *, currency: str, keys: Iterable[AccountKey]
) -> dict[AccountKey, LedgerAccount]:
    """The accounts for ``keys`` in ``currency``, creating the missing ones (two queries at most).

    Accounts are created on first use; the partial unique constraints make concurrent creation
    safe (``ignore_conflicts``, then read again).
    """
    money.exponent(currency)
    wanted = set(keys)
    if not wanted:
        return {}

    def fetch(keys: set[AccountKey]) -> dict[AccountKey, LedgerAccount]:
        # Purposes x partners, then the exact pairs: one short query however many keys (an OR
        # of a thousand pairs takes the planner most of a second). Its text is written here,
        # not built by the ORM: every payment and refund reads its accounts, and building the
        # OR of the two lookups cost more than the query.
        purposes = sorted({purpose for purpose, _ in keys})
        partner_ids = sorted({partner_id for _, partner_id in keys if partner_id is not None})
        accounts = LedgerAccount.objects.raw(*_accounts_query(currency, purposes, partner_ids))
        return {(a.purpose, a.partner_id): a for a in accounts if (a.purpose, a.partner_id) in keys}

    found = fetch(wanted)
    missing = wanted - found.keys()
    if missing:
        LedgerAccount.objects.bulk_create(
            [LedgerAccount(purpose=p, partner_id=pid, currency=currency) for p, pid in missing],
            ignore_conflicts=True,
        )
        # Read back only what was missing (ids of rows a concurrent creation won differ from
        # the ones generated here): half the rows when a run opens its payees' payout accounts.
        found |= fetch(missing)
    return found


def _accounts_query(
    currency: str, purposes: list[str], partner_ids: list[str]
) -> tuple[str, list[str]]:
    """The accounts of ``currency`` and ``purposes`` held by ``partner_ids`` or by nobody (the
    platform's own), as SQL text and its parameters; every value is a parameter."""
    meta = LedgerAccount._meta
    currency_, purpose, partner = (
        meta.get_field(name).column for name in ("currency", "purpose", "partner")
    )
    held_by = f"{partner} IS NULL"
    if partner_ids:
        held_by = f"{partner} IN ({', '.join(['%s'] * len(partner_ids))}) OR {held_by}"
    sql = (
        # The columns by name, not ``*``: a prepared ``*`` fails once a migration adds a column.
        f"SELECT {rows.select_list(LedgerAccount, 'a', connection)} FROM {meta.db_table} a"  # noqa: S608
        f" WHERE {currency_} = %s"
        f" AND {purpose} IN ({', '.join(['%s'] * len(purposes))}) AND ({held_by})"
    )
    return sql, [currency, *purposes, *partner_ids]


# --- The payees' available accounts: one lock each, one global order ---------------------------
#
# Whatever decides from a payee's debt (``owed`` = minus its available balance), or changes that
# debt, holds the payee's ``partner_available`` account row lock (``SELECT ... FOR UPDATE``) to
# its commit: a payout marked paid (refused while the payee owes), an adjustment (a write-off or
# a repayment is at most what is owed), and every posting that moves the available balance
# outside a settlement run: a refund after the release (a debit), a release and a failed payout
# (credits). Two of them on one payee and currency happen one after the other, so none decides
# from a balance another is changing.
#
# The global lock order, which every path follows (so no wait cycle, no deadlock, can form):
#   1. the row the operation is about: the settlement (mark-paid, mark-failed) or the order
#      (a refund, a cancel, the release at completion); never both in one transaction;
#   2. then the payees' available accounts, several in ascending partner id, one query
#      (``lock_available_accounts``); adjustments take only step 2 (one account).
# Nothing takes a settlement or an order row after an available account. Settlement runs lock
# their run and settlement rows only, never an available account: their debit of available is
# the range of lines up to the run's watermark, posted whatever happens after it, and a refund
# or a credit racing with it lands after the range and is settled by the next run.


def lock_available_accounts(*, partner_ids: Iterable[str], currency: str) -> None:
    """Lock the payees' available account rows (created if missing) for this transaction.

    In ascending partner id (the global order above), in one ``SELECT ... ORDER BY ... FOR
    UPDATE`` (PostgreSQL locks the rows in the sorted order). Does nothing for no payee; on
    SQLite the database's one write lock serialises the writers instead.
    """
    wanted = sorted({partner_id for partner_id in partner_ids if partner_id is not None})
    if not wanted:
        return
    accounts = ledger_accounts(
        currency=currency, keys=[(P.PARTNER_AVAILABLE, partner_id) for partner_id in wanted]
    )
    list(
        LedgerAccount.objects.select_for_update()
        .filter(pk__in=[account.pk for account in accounts.values()])
        .order_by("partner_id")
        .values_list("pk", flat=True)
    )


def lock_available_account(*, partner_id: str, currency: str) -> None:
    """Lock one payee's available account row (created if missing) for this transaction.

    Held by whatever decides from the payee's debt or changes it (see the lock order above):
    an adjustment paying it off, a payout being marked paid or failed, a refund, a release.
    """
    lock_available_accounts(partner_ids=[partner_id], currency=currency)
