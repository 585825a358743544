"""The double-entry ledger: one posting function, and the postings of an order's life.

Every movement of money is a ``LedgerEntry`` whose lines balance (debits == credits, in the
entry's one currency). ``ledger_post`` is the only writer: it refuses an unbalanced entry, and
PostgreSQL refuses one too (a deferred constraint trigger checks each entry at commit, other
triggers refuse UPDATE and DELETE). Each posting carries an idempotency key, so a retried task or
a repeated call returns the entry already posted instead of posting twice.

Amounts are integers in minor units; splits and reversals go through ``livecommerce.money``,
whose parts always add up exactly. See docs/ledger.md for the chart of accounts and a worked
order.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, Sum
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery

from commissions.choices import PARTNER_PURPOSES, AccountPurpose, EntryKind, Share
from commissions.models import CommissionApplication, LedgerAccount, LedgerEntry, LedgerLine
from livecommerce import money
from livecommerce.errors import AppError
from orders.models import Order, OrderLine, Refund

P = AccountPurpose

# The shares a line's merchandise is split into, in the order ``money.split_line`` returns them.
LINE_SHARES = (
    Share.PLATFORM_COMMISSION,
    Share.CREATOR_COMMISSION,
    Share.FULFILLMENT_FEE,
    Share.BRAND_NET,
)


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

    def fetch() -> dict[AccountKey, LedgerAccount]:
        # Purposes x partners, then the exact pairs: one short query however many keys (an OR
        # of a thousand pairs takes the planner most of a second).
        partner_ids = {partner_id for _, partner_id in wanted if partner_id is not None}
        accounts = LedgerAccount.objects.filter(
            Q(partner_id__in=partner_ids) | Q(partner__isnull=True),
            currency=currency,
            purpose__in={purpose for purpose, _ in wanted},
        )
        return {
            (a.purpose, a.partner_id): a for a in accounts if (a.purpose, a.partner_id) in wanted
        }

    found = fetch()
    missing = wanted - found.keys()
    if missing:
        LedgerAccount.objects.bulk_create(
            [LedgerAccount(purpose=p, partner_id=pid, currency=currency) for p, pid in missing],
            ignore_conflicts=True,
        )
        found = fetch()
    return found


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
    fields = [f for f in LedgerEntry._meta.concrete_fields if not getattr(f, "db_returning", False)]
    query = InsertQuery(LedgerEntry, on_conflict=OnConflict.IGNORE)
    query.insert_values(fields, rows, raw=True)  # ``created`` is set already
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
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
    fields = [f for f in LedgerLine._meta.concrete_fields if not getattr(f, "db_returning", False)]
    query = InsertQuery(LedgerLine)
    query.insert_values(fields, lines, raw=False)
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    columns = ", ".join(qn(f.column) for f in fields)
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


# --- The postings of an order ------------------------------------------------------------------


def sale_key(order_id: str) -> str:
    return f"sale:{order_id}"


def refund_key(refund_id: str) -> str:
    return f"refund:{refund_id}"


def release_key(order_id: str) -> str:
    return f"release:{order_id}"


def _share_owner(order: Order, share: str) -> tuple[str, str | None]:
    """The account (purpose, partner) a share of ``order`` is credited to while pending.

    No fulfillment partner on the order: the brand ships it itself and takes the shipping (the
    fulfillment rate and fixed fee were applied as 0 already).
    """
    if share == Share.PLATFORM_COMMISSION:
        return P.PLATFORM_REVENUE, None
    if share == Share.TAX:
        return P.TAX_PAYABLE, None
    if share == Share.CREATOR_COMMISSION:
        return P.PARTNER_PENDING, order.creator_id
    if share in (Share.FULFILLMENT_FEE, Share.SHIPPING) and order.fulfillment_partner_id:
        return P.PARTNER_PENDING, order.fulfillment_partner_id
    return P.PARTNER_PENDING, order.brand_id


def ledger_post_sale(
    *,
    order: Order,
    application: CommissionApplication | None = None,
    lines: Sequence[OrderLine] | None = None,
) -> LedgerEntry:
    """Post what the buyer paid for ``order``, split among the parties (kind ``sale``).

    Call inside the payment's transaction with the order row locked, after
    ``commission_plan_apply`` (it is applied here if it was not). Per line: debit buyer funds
    clearing with what was paid, credit platform revenue with the platform commission, the
    creator's pending payable with its commission, the fulfillment partner's with its fee (its
    rate, plus the order's fixed fee spread over the lines) and the brand's with the rest. The
    order's shipping goes to the fulfillment partner, its tax to tax payable. All partner shares
    are pending until the return window closes (``ledger_post_release``).

    ``application`` and ``lines``: what ``commission_terms_apply`` just wrote, in the payment's
    transaction (nothing is then read again; an entry already posted under the sale's key is
    returned by ``ledger_post``).
    """
    if application is None or lines is None:
        existing = LedgerEntry.objects.filter(idempotency_key=sale_key(order.pk)).first()
        if existing is not None:
            return existing
        application = CommissionApplication.objects.filter(order=order).first()
        if application is None:
            from commissions.plans import commission_plan_apply

            application = commission_plan_apply(order=order)
        lines = list(order.lines.order_by("position", "id"))
    else:
        lines = sorted(lines, key=lambda line: (line.position, line.pk))
    splits = sale_splits(lines=lines, fulfillment_fee_fixed=application.fulfillment_fee_fixed)

    postings: list[Posting] = []
    for line, split in zip(lines, splits, strict=True):
        postings.append(
            Posting(
                P.BUYER_FUNDS_CLEARING,
                debit=split.paid,
                share=Share.MERCHANDISE,
                order_line_id=line.pk,
            )
        )
        for share, amount in zip(LINE_SHARES, _shares(split), strict=True):
            purpose, partner_id = _share_owner(order, share)
            postings.append(
                Posting(
                    purpose,
                    credit=amount,
                    partner_id=partner_id,
                    share=share,
                    order_line_id=line.pk,
                )
            )
    for share, amount in ((Share.SHIPPING, order.shipping_amount), (Share.TAX, order.tax_amount)):
        purpose, partner_id = _share_owner(order, share)
        postings.append(Posting(P.BUYER_FUNDS_CLEARING, debit=amount, share=share))
        postings.append(Posting(purpose, credit=amount, partner_id=partner_id, share=share))
    return ledger_post(
        kind=EntryKind.SALE,
        currency=order.currency,
        postings=postings,
        idempotency_key=sale_key(order.pk),
        order=order,
        memo=f"Payment of {order.pk} under plan {application.plan_id}",
    )


def sale_splits(*, lines: Sequence, fulfillment_fee_fixed: int) -> list[money.LineSplit]:
    """Each line's split at payment, with the order's fixed fulfillment fee spread over the lines.

    The rate shares come from ``money.split_line`` on the rates copied onto each line. The fixed
    fee is then taken from the brands' nets, spread in proportion to each line's brand net
    (largest remainder), so no line's brand net goes below zero; if the whole order nets the brand
    less than the fee, the fee is what the brand nets (documented in docs/ledger.md).
    """
    splits = [
        money.split_line(
            paid=line.subtotal,
            platform_rate_bps=line.platform_rate_bps or 0,
            creator_rate_bps=line.creator_rate_bps or 0,
            fulfillment_rate_bps=line.fulfillment_rate_bps or 0,
        )
        for line in lines
    ]
    nets = [s.brand_net for s in splits]
    fee = min(fulfillment_fee_fixed, sum(nets))
    if fee <= 0:
        return splits
    parts = money.spread_fixed(amount=fee, weights=nets)
    return [
        money.LineSplit(
            s.paid,
            s.platform_commission,
            s.creator_commission,
            s.fulfillment_fee + part,
            s.brand_net - part,
        )
        for s, part in zip(splits, parts, strict=True)
    ]


def _shares(split: money.LineSplit) -> tuple[int, int, int, int]:
    return (
        split.platform_commission,
        split.creator_commission,
        split.fulfillment_fee,
        split.brand_net,
    )


@dataclass
class _Remaining:
    """What is still un-reversed of an order's postings, per (line, share) and for shipping/tax.

    ``owners`` remembers which partner each (line, share) was credited to at the sale.
    """

    lines: dict[str, dict[str, int]]
    extras: dict[str, int]  # shipping, tax
    owners: dict[tuple[str | None, str], str | None]


def _remaining(order: Order) -> _Remaining:
    rows = (
        LedgerLine.objects.filter(order=order, kind__in=(EntryKind.SALE, EntryKind.REFUND))
        .exclude(purpose=P.BUYER_FUNDS_CLEARING)
        .values("order_line_id", "share", "partner_id")
        .annotate(credits=Sum("credit"), debits=Sum("debit"))
    )
    lines: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(LINE_SHARES, 0))
    extras = {Share.SHIPPING: 0, Share.TAX: 0}
    owners: dict[tuple[str | None, str], str | None] = {}
    for row in rows:
        net = row["credits"] - row["debits"]
        owners[(row["order_line_id"], row["share"])] = row["partner_id"]
        if row["order_line_id"] is None:
            extras[row["share"]] += net
        else:
            lines[row["order_line_id"]][row["share"]] += net
    return _Remaining(lines=dict(lines), extras=extras, owners=owners)


def refund_reversals(
    *, order: Order, refund: Refund
) -> tuple[dict[str, dict[str, int]], dict[str, int], _Remaining]:
    """How much of each share of each line, and of shipping and tax, ``refund`` reverses.

    - A refund line's amount reverses that line's shares in proportion to what is left of each
      (largest remainder): a line refunded in several parts reverses exactly what it posted.
    - The refund's ``shipping_amount`` and ``tax_amount`` (the order services name them) reverse
      the fulfillment partner's shipping and the tax payable.
    - Whatever of ``refund.amount`` is on neither (refunds written without those fields): when
      the refund names lines it goes to shipping and tax first, in proportion to what is left of
      each, then to the lines; when it names none it is spread over everything left of the order
      (each line, shipping, tax) in proportion. Largest remainder every time.
    Raises ``AppError("refund_exceeds_paid")`` when the refund is more than is left to reverse.
    """
    remaining = _remaining(order)
    explicit: dict[str, int] = defaultdict(int)
    for refund_line in refund.lines.all():
        explicit[refund_line.line_id] += refund_line.amount
    extra_amounts = {
        Share.SHIPPING: getattr(refund, "shipping_amount", 0) or 0,
        Share.TAX: getattr(refund, "tax_amount", 0) or 0,
    }
    leftover = refund.amount - sum(explicit.values()) - sum(extra_amounts.values())
    if leftover < 0:
        raise AppError("refund_exceeds_paid", "The refund's parts add up to more than it.")

    line_amounts: dict[str, int] = defaultdict(int)
    for line_id, amount in explicit.items():
        left = sum(remaining.lines.get(line_id, {}).values())
        if amount > left:
            raise AppError("refund_exceeds_paid", f"Line {line_id} has {left} left to refund.")
        line_amounts[line_id] += amount
    extras_left = {
        share: remaining.extras[share] - extra_amounts[share] for share in remaining.extras
    }
    if any(left < 0 for left in extras_left.values()):
        raise AppError("refund_exceeds_paid", "The refund returns more shipping or tax than paid.")

    if leftover:
        line_left = {
            line_id: sum(shares.values()) - line_amounts.get(line_id, 0)
            for line_id, shares in remaining.lines.items()
        }
        if leftover > sum(line_left.values()) + sum(extras_left.values()):
            raise AppError("refund_exceeds_paid")
        if explicit:
            to_extras = min(leftover, sum(extras_left.values()))
            spread = [
                (list(extras_left), money.allocate(to_extras, list(extras_left.values()))),
                (
                    list(line_left),
                    money.allocate(leftover - to_extras, list(line_left.values())),
                ),
            ]
        else:
            weights = {**line_left, **extras_left}
            spread = [(list(weights), money.allocate(leftover, list(weights.values())))]
        for keys, parts in spread:
            for key, part in zip(keys, parts, strict=True):
                if key in extras_left:
                    extra_amounts[key] += part
                else:
                    line_amounts[key] += part

    per_line = {
        line_id: money.reverse_in_proportion(remaining=remaining.lines[line_id], amount=amount)
        for line_id, amount in line_amounts.items()
        if amount
    }
    return per_line, extra_amounts, remaining


@transaction.atomic
def ledger_post_refund(*, refund: Refund) -> LedgerEntry:
    """Reverse, for one refund, the shares it takes back (kind ``refund``).

    Call inside the refund's transaction with the order row locked (a paid order's cancel is a
    full refund). Debits each party's account with its reversal (the pending payable, or the
    available one once the order was released: it may then go below zero until a settlement nets
    it off) and credits buyer funds clearing with what goes back to the buyer.
    """
    existing = LedgerEntry.objects.filter(idempotency_key=refund_key(refund.pk)).first()
    if existing is not None:
        return existing
    order = refund.order
    per_line, extras, remaining = refund_reversals(order=order, refund=refund)
    released = LedgerEntry.objects.filter(idempotency_key=release_key(order.pk)).exists()

    def party(line_id: str | None, share: str) -> tuple[str, str | None]:
        purpose, partner_id = _share_owner(order, share)
        partner_id = remaining.owners.get((line_id, share), partner_id)
        if purpose == P.PARTNER_PENDING and released:
            purpose = P.PARTNER_AVAILABLE
        return purpose, partner_id

    postings: list[Posting] = []
    for line_id, reversal in per_line.items():
        postings.append(
            Posting(
                P.BUYER_FUNDS_CLEARING,
                credit=sum(reversal.values()),
                share=Share.MERCHANDISE,
                order_line_id=line_id,
            )
        )
        for share, amount in reversal.items():
            purpose, partner_id = party(line_id, share)
            postings.append(
                Posting(
                    purpose, debit=amount, partner_id=partner_id, share=share, order_line_id=line_id
                )
            )
    for share, amount in extras.items():
        purpose, partner_id = party(None, share)
        postings.append(Posting(purpose, debit=amount, partner_id=partner_id, share=share))
        postings.append(Posting(P.BUYER_FUNDS_CLEARING, credit=amount, share=share))
    # A debit of available changes what the payee owes: hold its account lock to the commit, so
    # a payout being marked paid (refused while the payee owes) or a write-off decides before or
    # after this refund, never on the balance it is changing (the lock order: order, accounts).
    lock_available_accounts(
        partner_ids=[p.partner_id for p in postings if p.purpose == P.PARTNER_AVAILABLE],
        currency=order.currency,
    )
    return ledger_post(
        kind=EntryKind.REFUND,
        currency=order.currency,
        postings=postings,
        idempotency_key=refund_key(refund.pk),
        order=order,
        refund=refund,
        memo=f"Refund {refund.pk} of {order.pk}",
    )


@transaction.atomic
def ledger_post_release(*, order: Order) -> LedgerEntry:
    """Move each partner's pending payable for ``order`` to available (kind ``release``).

    Called when the return window closes (the order completes), once per order: one entry with,
    per partner and share, a debit of pending and a credit of available for what is left after
    refunds. Refunds after this reverse from available.
    """
    existing = LedgerEntry.objects.filter(idempotency_key=release_key(order.pk)).first()
    if existing is not None:
        return existing
    rows = (
        LedgerLine.objects.filter(order=order, purpose=P.PARTNER_PENDING)
        .values("partner_id", "share")
        .annotate(credits=Sum("credit"), debits=Sum("debit"))
        .order_by("partner_id", "share")
    )
    postings: list[Posting] = []
    for row in rows:
        amount = row["credits"] - row["debits"]
        postings.append(
            Posting(
                P.PARTNER_PENDING, debit=amount, partner_id=row["partner_id"], share=row["share"]
            )
        )
        postings.append(
            Posting(
                P.PARTNER_AVAILABLE, credit=amount, partner_id=row["partner_id"], share=row["share"]
            )
        )
    # A credit of available lowers what the payee owes: under its account lock (see the lock
    # order above), so a write-off never reads a debt this release is paying off.
    lock_available_accounts(
        partner_ids=[p.partner_id for p in postings if p.purpose == P.PARTNER_AVAILABLE],
        currency=order.currency,
    )
    return ledger_post(
        kind=EntryKind.RELEASE,
        currency=order.currency,
        postings=postings,
        idempotency_key=release_key(order.pk),
        order=order,
        memo=f"Return window of {order.pk} closed",
    )
