"""The posting engine: ``ledger_post_many``, the ledger's one writer (``ledger_post`` is a batch of
one), with its balance checks and idempotency keys."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models.constants import OnConflict

from commissions.choices import PARTNER_PURPOSES
from commissions.ledger.accounts import AccountKey, ledger_accounts
from commissions.models import LedgerAccount, LedgerEntry, LedgerLine
from livecommerce.rows import insert_fields, insert_sql
from orders.models import Order, Refund


class UnbalancedEntry(ValueError):
    """A posting whose debits and credits differ: a bug in the caller, never bad user input."""


class IdempotencyKeyConflict(ValueError):
    """An idempotency key already posted a different entry (another kind or order): a bug."""


@dataclass(frozen=True, slots=True)
class Posting:
    """One side of one account in an entry: ``debit`` or ``credit`` (minor units, >= 0).

    ``partner_id`` names the partner for ``partner_*`` purposes and is None for the platform's
    accounts. A posting of zero is dropped (lines carry a positive amount on exactly one side).
    """

    purpose: str
    debit: int = 0
    credit: int = 0
    partner_id: str | None = None
    share: str = ""
    order_line_id: str | None = None


def ledger_post(
    *,
    kind: str,
    currency: str,
    postings: Sequence[Posting],
    idempotency_key: str,
    order: Order | None = None,
    refund: Refund | None = None,
    reference: str = "",
    memo: str = "",
) -> LedgerEntry:
    """Post one balanced entry, or return the entry already posted under ``idempotency_key``.

    Raises ``UnbalancedEntry`` when debits and credits differ (nothing is written). The lines copy
    the order's parties (host app, brand, creator, fulfillment partner, live session) so that
    reports and balances aggregate over ``LedgerLine`` alone.
    """
    [entry] = ledger_post_many(
        entries=[
            NewEntry(
                kind=kind,
                currency=currency,
                postings=postings,
                idempotency_key=idempotency_key,
                reference=reference,
                memo=memo,
                order=order,
                refund=refund,
            )
        ]
    )
    return entry


def _checked_postings(
    *, kind: str, idempotency_key: str, postings: Sequence[Posting]
) -> list[Posting]:
    """The non-zero postings of an entry, or ``UnbalancedEntry`` if they cannot be posted."""
    postings = [p for p in postings if p.debit or p.credit]
    for p in postings:
        for amount in (p.debit, p.credit):
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
                raise UnbalancedEntry(f"amounts are non-negative ints of minor units: {p!r}")
        if p.debit and p.credit:
            raise UnbalancedEntry(f"a posting is a debit or a credit, not both: {p!r}")
        if (p.partner_id is not None) != (p.purpose in PARTNER_PURPOSES):
            raise UnbalancedEntry(f"partner accounts name a partner, platform ones none: {p!r}")
    debits = sum(p.debit for p in postings)
    credits = sum(p.credit for p in postings)
    if debits != credits:
        raise UnbalancedEntry(
            f"{kind} entry {idempotency_key!r} is unbalanced: debits {debits} != credits {credits}"
        )
    return postings


@dataclass(frozen=True, slots=True)
class NewEntry:
    """One entry for ``ledger_post_many``: ``ledger_post``'s arguments."""

    kind: str
    currency: str
    postings: Sequence[Posting]
    idempotency_key: str
    reference: str = ""
    memo: str = ""
    order: Order | None = None
    refund: Refund | None = None


def ledger_post_many(*, entries: Sequence[NewEntry]) -> list[LedgerEntry]:
    """Post many entries (or one: ``ledger_post`` is a batch of one), the ledger's one writer;
    returns the entries in the order given.

    Every entry is checked first and one that does not balance raises ``UnbalancedEntry`` with
    nothing written. The entries go in with one ``INSERT ... ON CONFLICT DO NOTHING`` (no
    savepoint, no read first) and their lines with them (one statement on PostgreSQL, see
    ``_insert_new``); an idempotency key already posted (before, or by a concurrent
    transaction, which the insert waits for) returns that entry, or raises
    ``IdempotencyKeyConflict`` if it was another kind of posting or another order's. The lines
    copy their order's parties (host app, brand, creator, fulfillment partner, live session) so
    that reports and balances aggregate over ``LedgerLine`` alone.
    """
    checked = [
        (
            spec,
            _checked_postings(
                kind=spec.kind, idempotency_key=spec.idempotency_key, postings=spec.postings
            ),
        )
        for spec in entries
    ]
    if not checked:
        return []
    accounts: dict[str, dict[AccountKey, LedgerAccount]] = {}
    for currency in {spec.currency for spec, _ in checked}:
        accounts[currency] = ledger_accounts(
            currency=currency,
            keys=[
                (p.purpose, p.partner_id)
                for spec, postings in checked
                if spec.currency == currency
                for p in postings
            ],
        )
    rows = [
        LedgerEntry(
            kind=spec.kind,
            order=spec.order,
            refund=spec.refund,
            reference=spec.reference,
            currency=spec.currency,
            idempotency_key=spec.idempotency_key,
            memo=spec.memo,
        )
        for spec, _ in checked
    ]
    created = LedgerEntry._meta.get_field("created")
    for entry in rows:
        entry.created = created.pre_save(entry, True)  # the lines copy it
    inserted = _insert_new(
        rows,
        [
            LedgerLine(
                entry=entry,
                account=accounts[spec.currency][(p.purpose, p.partner_id)],
                partner_id=p.partner_id,
                purpose=p.purpose,
                currency=spec.currency,
                kind=spec.kind,
                created=entry.created,
                debit=p.debit,
                credit=p.credit,
                share=p.share,
                order_line_id=p.order_line_id,
                **_order_dimensions(spec.order),
            )
            for entry, (spec, postings) in zip(rows, checked, strict=True)
            for p in postings
        ],
    )
    posted = {entry.idempotency_key: entry for entry in rows if entry.pk in inserted}
    missing = [spec for spec, _ in checked if spec.idempotency_key not in posted]
    if missing:
        existing = {
            entry.idempotency_key: entry
            for entry in LedgerEntry.objects.filter(
                idempotency_key__in=[spec.idempotency_key for spec in missing]
            )
        }
        for spec in missing:
            posted[spec.idempotency_key] = _same_entry(
                existing[spec.idempotency_key], kind=spec.kind, order=spec.order
            )
    return [posted[spec.idempotency_key] for spec, _ in checked]


def _insert_new(rows: list[LedgerEntry], lines: list[LedgerLine]) -> set[str]:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` of the entries, and the ``lines`` of
    those inserted (an entry whose idempotency key is taken is skipped, its lines with it): the
    ids inserted. On PostgreSQL ONE statement: the lines' INSERT is a second CTE keeping the rows
    whose entry the first inserted (Django's own INSERT of the lines as its source)."""
    connection = transaction.get_connection()
    qn = connection.ops.quote_name
    # ``created`` is set already (raw)
    sql, params = insert_sql(LedgerEntry, rows, connection, raw=True, on_conflict=OnConflict.IGNORE)
    sql = f"{sql} RETURNING {qn('id')}"
    of_inserted = None
    if connection.vendor == "postgresql":
        of_inserted = _lines_of_inserted(lines, connection)
    if of_inserted is not None:
        lines_sql, lines_params = of_inserted
        sql = f"WITH e AS ({sql}), l AS ({lines_sql}) SELECT {qn('id')} FROM e"  # noqa: S608
        params = [*params, *lines_params]
    with connection.cursor() as cursor:
        # Only Django's own INSERTs enter the text; every value is a parameter.
        cursor.execute(sql, params)
        inserted = {row[0] for row in cursor.fetchall()}
    for row in rows:
        if row.pk in inserted:
            row._state.adding = False
            row._state.db = connection.alias
    if of_inserted is None:
        LedgerLine.objects.bulk_create([line for line in lines if line.entry_id in inserted])
    return inserted


def _lines_of_inserted(lines: list[LedgerLine], connection) -> tuple[str, list] | None:
    """Django's INSERT of ``lines`` turned into an INSERT of those whose entry is in the CTE
    ``e``: its row source (``SELECT * FROM UNNEST(...)``, typed arrays) becomes a subquery
    filtered on ``entry_id``. None when Django writes another shape (then the caller inserts
    the lines with ``bulk_create``)."""
    if not lines:
        return None
    qn = connection.ops.quote_name
    sql, params = insert_sql(LedgerLine, lines, connection)
    columns = ", ".join(qn(f.column) for f in insert_fields(LedgerLine))
    head = f"INSERT INTO {qn(LedgerLine._meta.db_table)} ({columns}) "
    if not sql.startswith(head + "SELECT * FROM UNNEST("):  # noqa: S608 (names, no values)
        return None
    source = sql[len(head) :]
    entry = qn(LedgerLine._meta.get_field("entry").column)
    return (
        f"{head}SELECT * FROM ({source}) AS u ({columns})"  # noqa: S608 (values are params)
        f" WHERE u.{entry} IN (SELECT {qn('id')} FROM e)",
        list(params),
    )


def _same_entry(entry: LedgerEntry, *, kind: str, order: Order | None) -> LedgerEntry:
    if entry.kind != kind or entry.order_id != (order.pk if order else None):
        raise IdempotencyKeyConflict(
            f"idempotency key {entry.idempotency_key!r} was used for another posting ({entry.pk})"
        )
    return entry


def _order_dimensions(order: Order | None) -> dict:
    if order is None:
        return {}
    return {
        "order_id": order.pk,
        "host_app_id": order.host_app_id,
        "brand_id": order.brand_id,
        "creator_id": order.creator_id,
        "fulfillment_partner_id": order.fulfillment_partner_id,
        "live_session_id": order.live_session_id,
    }
