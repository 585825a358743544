"""The ledger's postings for one order's life, with exact numbers, and its guarantees."""

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from commissions import services
from commissions.choices import AccountPurpose as P
from commissions.choices import EntryKind, Share
from commissions.ledger.posting import IdempotencyKeyConflict, Posting, UnbalancedEntry, ledger_post
from commissions.ledger.refunds import ledger_post_refund
from commissions.models import LedgerEntry, LedgerLine
from commissions.selectors import order_breakdown
from livecommerce.errors import AppError
from orders.models import Refund, RefundLine
from tests import factories, flows


@pytest.fixture
def parties(db):
    fulfillment = factories.FulfillmentFactory()
    return {
        "host_app": factories.HostAppFactory(),
        "brand": factories.BrandFactory(fulfillment_partner=fulfillment),
        "fulfillment": fulfillment,
        "creator": factories.CreatorFactory(),
    }


def worked_order(parties):
    """The order docs/ledger.md walks through: two lines, shipping 5.00, tax 5.16 (USD)."""
    return flows.make_order(
        brand=parties["brand"],
        host_app=parties["host_app"],
        creator=parties["creator"],
        currency="USD",
        items=[(1999, 2, "beauty"), (2450, 1, "beauty")],
        shipping=500,
        tax=516,
    )


def line_shares(entry, line):
    return {
        row.share: row.credit
        for row in entry.lines.filter(order_line=line).exclude(purpose=P.BUYER_FUNDS_CLEARING)
    }


def test_sale_splits_each_line_to_the_cent(parties, usd_plan):
    # given the docs' order under 8% / 5% / 3% and a fixed fee of 1.50
    order = flows.pay(worked_order(parties))
    entry = LedgerEntry.objects.get(order=order, kind=EntryKind.SALE)
    lipstick, palette = order.lines.order_by("position")

    # then each line is split as docs/ledger.md shows
    assert line_shares(entry, lipstick) == {
        Share.PLATFORM_COMMISSION: 320,
        Share.CREATOR_COMMISSION: 200,
        Share.FULFILLMENT_FEE: 213,  # 120 at 3% + 93 of the fixed fee
        Share.BRAND_NET: 3265,
    }
    assert line_shares(entry, palette) == {
        Share.PLATFORM_COMMISSION: 196,
        Share.CREATOR_COMMISSION: 122,  # 122.5 rounds half-even
        Share.FULFILLMENT_FEE: 131,  # 73.5 -> 74 at 3%, + 57 of the fixed fee
        Share.BRAND_NET: 2001,
    }
    # and the entry balances: buyer funds = everything credited
    assert flows.balance(purpose=P.BUYER_FUNDS_CLEARING, order=order) == 7464
    assert flows.pending(parties["fulfillment"], order=order) == 213 + 131 + 500
    assert flows.pending(parties["creator"], order=order) == 322
    assert flows.pending(parties["brand"], order=order) == 5266
    assert flows.balance(purpose=P.PLATFORM_REVENUE, order=order) == 516
    assert flows.balance(purpose=P.TAX_PAYABLE, order=order) == 516
    # and the rates were copied onto the lines
    lipstick.refresh_from_db()
    assert (lipstick.platform_rate_bps, lipstick.creator_rate_bps) == (800, 500)
    order.refresh_from_db()
    assert order.commission_plan_id == usd_plan.pk


def test_refunding_a_line_in_parts_reverses_exactly_what_it_posted(parties, usd_plan):
    order = flows.pay(worked_order(parties))
    lipstick = order.lines.get(position=0)

    first = flows.refund(order, units={lipstick: 1})
    reversed_first = {
        r.share: r.debit
        for r in LedgerLine.objects.filter(entry__refund=first, order_line=lipstick, debit__gt=0)
    }
    assert reversed_first == {
        Share.PLATFORM_COMMISSION: 160,
        Share.CREATOR_COMMISSION: 100,
        Share.FULFILLMENT_FEE: 106,
        Share.BRAND_NET: 1633,  # the tie 106.5 / 1632.5 goes to the larger share
    }
    flows.refund(order, units={lipstick: 1})

    # then nothing of the lipstick line is left with anyone
    left = LedgerLine.objects.filter(order_line=lipstick).exclude(purpose=P.BUYER_FUNDS_CLEARING)
    by_share: dict = {}
    for row in left:
        by_share[row.share] = by_share.get(row.share, 0) + row.credit - row.debit
    assert set(by_share.values()) == {0}


def test_refund_of_shipping_and_tax_beyond_lines(parties, usd_plan):
    order = flows.pay(worked_order(parties))
    palette = order.lines.get(position=1)

    flows.ledger_refund(order, lines={palette: 2450}, shipping=500, tax=516)

    totals = order_breakdown(order=order)["totals"]
    assert totals["shipping"] == 0
    assert totals["tax"] == 0
    assert totals["refunded"] == 2450 + 1016


def test_full_refund_leaves_every_party_at_zero(parties, usd_plan):
    order = flows.pay(worked_order(parties))
    flows.refund_by_amount(order, 1234)
    flows.cancel(order)  # the rest

    assert set(flows.account_balances(order=order).values()) == {0}


def test_release_moves_pending_to_available_and_later_refunds_come_from_available(
    parties, usd_plan
):
    order = flows.pay(worked_order(parties))
    brand = parties["brand"]
    flows.complete(order)
    assert flows.pending(brand, order=order) == 0
    assert flows.available(brand, order=order) == 5266
    release = LedgerEntry.objects.get(order=order, kind=EntryKind.RELEASE)
    with transaction.atomic():  # again: the release is posted once
        services.ledger_post_release(order=order)
    assert LedgerEntry.objects.filter(order=order, kind=EntryKind.RELEASE).count() == 1
    # a debit of pending and a credit of available per partner and share: the brand's net, the
    # creator's commission, the fulfillment partner's fee and its shipping
    assert release.lines.count() == 2 * 4

    flows.refund(order, units={order.lines.get(position=1): 1})
    assert flows.pending(brand, order=order) == 0
    assert flows.available(brand, order=order) == 5266 - 2001


def test_no_creator_means_the_brand_keeps_the_creator_share(parties, plan):
    order = flows.make_order(
        brand=parties["brand"], host_app=parties["host_app"], items=[(10000, 1, "beauty")]
    )
    flows.pay(order)
    line = order.lines.get()
    line.refresh_from_db()
    assert line.creator_rate_bps == 0
    assert flows.pending(parties["brand"], order=order) == 10000 - 800 - 300


def test_posting_refuses_an_unbalanced_entry(db):
    with pytest.raises(UnbalancedEntry):
        ledger_post(
            kind=EntryKind.ADJUSTMENT,
            currency="USD",
            postings=[
                Posting(P.BUYER_FUNDS_CLEARING, debit=100),
                Posting(P.PLATFORM_REVENUE, credit=99),
            ],
            idempotency_key="test:unbalanced",
        )
    assert not LedgerEntry.objects.exists()


def test_posting_twice_with_one_key_posts_once(db):
    postings = [Posting(P.BUYER_FUNDS_CLEARING, debit=100), Posting(P.TAX_PAYABLE, credit=100)]
    first = ledger_post(kind="adjustment", currency="KWD", postings=postings, idempotency_key="k1")
    again = ledger_post(kind="adjustment", currency="KWD", postings=postings, idempotency_key="k1")
    assert again.pk == first.pk
    assert LedgerLine.objects.count() == 2
    with pytest.raises(IdempotencyKeyConflict):
        ledger_post(kind="refund", currency="KWD", postings=postings, idempotency_key="k1")


def test_order_services_calls_are_idempotent(parties, usd_plan):
    order = flows.pay(worked_order(parties))

    with transaction.atomic():
        services.ledger_post_sale(order=order)
        services.commission_plan_apply(order=order)
    assert LedgerEntry.objects.filter(order=order).count() == 1


def test_a_refund_larger_than_what_is_left_is_refused(parties, usd_plan):
    order = flows.pay(worked_order(parties))
    palette = order.lines.get(position=1)
    flows.ledger_refund(order, lines={palette: 2000})
    # a refund the order services would not have let through: 451 left on the line
    too_much = Refund.objects.create(order=order, amount=452)
    RefundLine.objects.create(refund=too_much, line=palette, amount=452)
    with pytest.raises(AppError) as error:
        ledger_post_refund(refund=too_much)
    assert error.value.code == "refund_exceeds_paid"


# --- The database's own guard (PostgreSQL) -----------------------------------------------------

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the ledger triggers exist on PostgreSQL only"
)


def _insert_entry(cursor, entry_id: str, lines: list[tuple[str, int, int]]) -> None:
    cursor.execute(
        "INSERT INTO commissions_ledgerentry (id, kind, reference, currency, idempotency_key,"
        " memo, created) VALUES (%s, 'adjustment', '', 'USD', %s, '', now())",
        [entry_id, entry_id],
    )
    for account_id, debit, credit in lines:
        cursor.execute(
            "INSERT INTO commissions_ledgerline (entry_id, account_id, purpose, currency, kind,"
            " created, debit, credit, share) VALUES (%s, %s, 'x', 'USD', 'adjustment', now(),"
            " %s, %s, '')",
            [entry_id, account_id, debit, credit],
        )


@needs_postgres
def test_the_database_refuses_an_unbalanced_entry_at_commit(db):
    # A connection of its own, so the transaction really commits (the test's own transaction
    # never does). Everything it writes goes with the failed commit: nothing to clean up.
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=settings["PASSWORD"] or None,
    ) as raw:
        with raw.cursor() as cursor:
            for account_id, purpose in (
                ("acc_t1", "buyer_funds_clearing"),
                ("acc_t2", "tax_payable"),
            ):
                cursor.execute(
                    "INSERT INTO commissions_ledgeraccount (id, purpose, currency, created)"
                    " VALUES (%s, %s, 'USD', now())",
                    [account_id, purpose],
                )
            # accepted statement by statement...
            _insert_entry(cursor, "je_unbalanced", [("acc_t1", 100, 0), ("acc_t2", 0, 99)])
        # ...and refused at commit
        with pytest.raises(psycopg.errors.CheckViolation, match="unbalanced"):
            raw.commit()
    assert not LedgerEntry.objects.filter(pk="je_unbalanced").exists()


@needs_postgres
def test_the_database_refuses_to_edit_or_delete_posted_lines_and_entries(parties, usd_plan):
    order = flows.pay(worked_order(parties))
    entry = LedgerEntry.objects.get(order=order)
    line = entry.lines.filter(debit__gt=0).first()
    posted = (line.debit, entry.lines.count())

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerLine.objects.filter(pk=line.pk).update(debit=line.debit + 1)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerLine.objects.filter(pk=line.pk).delete()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(memo="edited")
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM commissions_ledgerentry WHERE id = %s", [entry.pk])
    line.refresh_from_db()
    assert (line.debit, entry.lines.count()) == posted


@needs_postgres
def test_every_posted_entry_passes_the_database_check(parties, usd_plan):
    order = flows.pay(worked_order(parties))
    flows.ledger_refund(order, lines={order.lines.get(position=0): 1000}, shipping=300)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # runs the deferred checks now
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_the_docs_walkthrough(parties, usd_plan):
    """docs/ledger.md: pay, return one lipstick, close the return window."""
    order = flows.pay(worked_order(parties))
    flows.refund(order, units={order.lines.get(position=0): 1})
    flows.complete(order)

    release = LedgerEntry.objects.get(order=order, kind=EntryKind.RELEASE)
    moved = {(row.partner_id, row.share): row.credit for row in release.lines.filter(credit__gt=0)}
    assert moved == {
        (parties["brand"].pk, Share.BRAND_NET): 3633,
        (parties["creator"].pk, Share.CREATOR_COMMISSION): 222,
        (parties["fulfillment"].pk, Share.FULFILLMENT_FEE): 238,
        (parties["fulfillment"].pk, Share.SHIPPING): 500,
    }
    assert flows.balance(purpose=P.BUYER_FUNDS_CLEARING) == 5465
    assert flows.balance(purpose=P.PLATFORM_REVENUE) == 356
    assert flows.available(parties["fulfillment"]) == 738
