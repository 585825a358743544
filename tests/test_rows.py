"""``livecommerce.rows``: SQL text written once gives what the ORM gives.

``insert_sql`` keeps Django's INSERT text per shape and prepares only the values afterwards: the
text and parameters must equal what Django's own compiler makes for the same instances, for one
row and for several, raw or not, with a conflict clause. ``instance`` builds what the ORM would
have loaded. Both compared against Django itself, on the database the tests run on.
"""

from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.db.models import CASCADE, CharField, ForeignKey, Func, Value
from django.db.models.constants import OnConflict
from django.utils import timezone

from commissions.models import LedgerEntry, LedgerLine
from livecommerce import rows
from partners.models import APIKey, Event, EventRecipient, Partner
from partners.webhooks.models import WebhookDelivery
from tests import factories

pytestmark = pytest.mark.django_db


def compiled(model, objs, *, raw=False, on_conflict=None):
    fields = [f for f in model._meta.concrete_fields if not getattr(f, "db_returning", False)]
    return comparable(rows._compiled_insert(model, fields, objs, connection, raw, on_conflict))


def comparable(value):
    """Parameters in a form that compares by value and by the type psycopg is given (its JSON
    wrappers compare by identity; its Int2/Int4/Int8 equal a plain int, but tell PostgreSQL
    another type)."""
    if isinstance(value, list | tuple):
        return type(value)(comparable(item) for item in value)
    if type(value).__name__ in ("Json", "Jsonb"):
        return ("json", value.obj)
    if value is None or isinstance(value, str):
        return value
    return (type(value), value)


def events(n: int) -> list[Event]:
    now = timezone.now()
    return [
        Event(type="order.paid", object_id=f"ord_{i}", sequence=i, data={"i": i}, created=now)
        for i in range(n)
    ]


def ledger_entries(n: int) -> list[LedgerEntry]:
    now = timezone.now()
    return [
        LedgerEntry(kind="sale", currency="USD", idempotency_key=f"k{i}", memo="", created=now)
        for i in range(n)
    ]


def ledger_lines(n: int) -> list[LedgerLine]:
    now = timezone.now()
    return [
        LedgerLine(
            entry_id="je_x",
            account_id="acct_x",
            purpose="platform_revenue",
            currency="USD",
            kind="sale",
            created=now,
            debit=0,
            credit=100 + i,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize(
    ("model", "make", "raw", "on_conflict"),
    [
        (Event, events, True, None),
        (LedgerEntry, ledger_entries, True, OnConflict.IGNORE),
        # no auto_now field: pre_save changes nothing, so two compilations compare exactly
        (LedgerLine, ledger_lines, False, None),
    ],
)
def test_insert_sql_kept_text_gives_what_django_compiles(model, make, raw, on_conflict, n):
    objs = make(n)
    first = comparable(rows.insert_sql(model, objs, connection, raw=raw, on_conflict=on_conflict))
    again = comparable(rows.insert_sql(model, objs, connection, raw=raw, on_conflict=on_conflict))
    expected = compiled(model, objs, raw=raw, on_conflict=on_conflict)

    assert first == again == expected
    key = (model, connection.vendor, on_conflict, n == 1)
    if connection.vendor == "postgresql":
        assert rows._INSERT_TEXT[key] == expected[0]  # the second call used the kept text
        if n > 1:
            assert " UNNEST(" in expected[0]
    else:
        assert rows._INSERT_TEXT[key] is None  # other databases: Django's compiler every time


def test_insert_sql_of_recipients_and_deliveries_as_events_write_them():
    # what ``event_publish_many`` hands it: new instances, ``pre_save`` (the times) applied by it
    [event] = events(1)
    host = factories.HostAppFactory()
    now = timezone.now()
    recipients = [EventRecipient(event=event, partner_id=host.pk)]
    deliveries = [
        WebhookDelivery(event=event, endpoint_id=f"whe_{i}", next_attempt_at=now, enqueued_at=now)
        for i in range(2)
    ]
    # ``pre_save`` stamps ``created`` with the clock on each call: one instant for all of them
    with mock.patch("django.utils.timezone.now", return_value=now):
        for model, objs in ((EventRecipient, recipients), (WebhookDelivery, deliveries)):
            rows.insert_sql(model, objs, connection)  # the text is kept (PostgreSQL)
            assert comparable(rows.insert_sql(model, objs, connection)) == compiled(model, objs)


def test_a_first_call_holding_an_expression_keeps_no_text():
    # one row: Django writes VALUES, with the expression's own SQL in them
    objs = ledger_lines(1)
    objs[0].credit = Func(Value(7), function="ABS")
    key = (LedgerLine, connection.vendor, None, True)
    rows._INSERT_TEXT.pop(key, None)
    first = comparable(rows.insert_sql(LedgerLine, objs, connection))
    assert first == compiled(LedgerLine, objs)  # Django's own, expression and all
    assert "ABS(" in first[0]
    assert key not in rows._INSERT_TEXT  # not the text of plain values: not kept
    # so the next plain row gets the plain text, not ABS(...) around its value
    plain = ledger_lines(1)
    assert comparable(rows.insert_sql(LedgerLine, plain, connection)) == compiled(LedgerLine, plain)


def test_an_expression_value_goes_through_djangos_compiler():
    objs = ledger_lines(2)
    rows.insert_sql(LedgerLine, objs, connection)  # the text is kept
    objs[1].credit = Value(7)
    sql, params = comparable(rows.insert_sql(LedgerLine, objs, connection))
    assert (sql, params) == compiled(LedgerLine, objs)
    assert " UNNEST(" not in sql  # Django writes VALUES for a row holding an expression


def test_instance_is_what_the_orm_loads():
    brand = factories.BrandFactory(minimum_payout={"USD": "25.00"})
    staff, _ = APIKey.objects.create_key(name="finance", role="finance")
    key, _ = APIKey.objects.create_key(name="brand", partner=brand)
    for model, pk in ((Partner, brand.pk), (APIKey, key.pk), (APIKey, staff.pk)):
        columns = rows.select_list(model, "t", connection)
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {table} t WHERE t.id = %s", [pk])  # noqa: S608
            built = rows.instance(model, cursor.fetchone(), connection)
        loaded = model.objects.get(pk=pk)
        assert not built._state.adding
        assert {f.attname: getattr(built, f.attname) for f in model._meta.concrete_fields} == {
            f.attname: getattr(loaded, f.attname) for f in model._meta.concrete_fields
        }
    assert rows.instance(Partner, [None] * len(Partner._meta.concrete_fields), connection) is None
    assert Decimal(brand.minimum_payout["USD"]) == Decimal("25.00")


def prepared_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_prepared_statements_only_inside_the_block(settings):
    settings.PREPARE_THRESHOLD = 2
    text = "SELECT %s::int + 1 AS kept_once"
    before = prepared_count()
    # outside the block: run it five times, nothing is prepared
    with connection.cursor() as cursor:
        for n in range(5):
            cursor.execute(text, [n])
    assert prepared_count() == before
    # inside: the second run of the text prepares it, and the answers are the same
    with rows.prepared_statements(), connection.cursor() as cursor:
        answers = []
        for n in range(3):
            cursor.execute(text, [n])
            answers.append(cursor.fetchone()[0])
        assert prepared_count() == before + 1
    assert answers == [1, 2, 3]
    assert connection.connection.prepare_threshold is None  # as Django made the connection


def test_plain_values_skip_preparation_only_where_it_changes_nothing():
    # ``get_db_prep_save`` is skipped for a str, int, bool, aware datetime or None of Django's
    # own field classes; anything else (a naive time, which Django makes aware; JSON; a
    # Decimal in an integer column) still goes through it: the parameters equal Django's.
    from partners.webhooks.models import WebhookAttempt

    naive = ledger_lines(3)
    for line in naive:
        line.created = line.created.replace(tzinfo=None)
    naive[1].credit = Decimal("101")  # an integer column given a Decimal: Django's int()
    attempts = [
        WebhookAttempt(
            delivery_id="whd_x",
            succeeded=i % 2 == 0,
            status_code=None if i else 200,
            latency_ms=i,
            error="",
            response_body="ok",
            created=timezone.now(),
        )
        for i in range(3)
    ]
    for model, objs in ((LedgerLine, naive), (WebhookAttempt, attempts)):
        with pytest.warns(RuntimeWarning) if objs is naive else _no_warning():
            rows.insert_sql(model, objs, connection, raw=True)  # the text is kept (PostgreSQL)
            kept = comparable(rows.insert_sql(model, objs, connection, raw=True))
            expected = compiled(model, objs, raw=True)
        assert kept == expected
    with pytest.warns(RuntimeWarning):
        _, params = rows.insert_sql(LedgerLine, naive, connection, raw=True)
    fields = [f for f in LedgerLine._meta.concrete_fields if not getattr(f, "db_returning", False)]
    credit = [f.attname for f in fields].index("credit")
    created = [f.attname for f in fields].index("created")
    if connection.vendor == "postgresql":  # columns: the Decimal became an Int8, times aware
        assert [type(v).__name__ for v in params[credit]] == ["Int8"] * 3
        assert all(v.tzinfo is not None for v in params[created])


def _no_warning():
    from contextlib import nullcontext

    return nullcontext()


class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: naive to Django (``timezone.is_naive``), though set."""

    def utcoffset(self, dt):
        return None


class _SubclassedKey(ForeignKey):
    pass


class _NoneMapping(CharField):
    def get_db_prep_save(self, value, connection):
        return "none" if value is None else value


@pytest.mark.parametrize(
    ("field", "value", "warns"),
    [
        (LedgerLine._meta.get_field("purpose"), "x", False),
        (LedgerLine._meta.get_field("credit"), 7, False),
        (LedgerLine._meta.get_field("credit"), True, False),  # a bool in an integer column
        (LedgerLine._meta.get_field("created"), datetime(2026, 1, 1, tzinfo=UTC), False),
        (LedgerLine._meta.get_field("created"), datetime(2026, 1, 1), True),
        (LedgerLine._meta.get_field("created"), datetime(2026, 1, 1, tzinfo=_NoOffset()), True),
        (LedgerLine._meta.get_field("account"), "acct_x", False),
        (LedgerLine._meta.get_field("account"), None, False),
    ],
)
def test_prepared_is_get_db_prep_save(field, value, warns):
    # value, type and warning: what Django's own preparation gives, for each kind of value
    expecting = pytest.warns(RuntimeWarning) if warns else _no_warning()
    with expecting:
        expected = field.get_db_prep_save(value, connection)
    with expecting:
        got = rows._prepared(field, rows._plain(field), value, connection)
    assert comparable([got]) == comparable([expected])


def test_only_djangos_own_field_classes_take_the_short_way():
    target = LedgerLine._meta.get_field("account")
    subclassed = _SubclassedKey(target.related_model, on_delete=CASCADE)
    subclassed.set_attributes_from_name("account")
    subclassed.remote_field.model = target.related_model
    assert rows._plain(target)[0] is str
    assert rows._plain(subclassed) == (None, "")
    mapping = _NoneMapping(max_length=5)
    assert rows._plain(mapping)[0] is None
    assert rows._prepared(mapping, rows._plain(mapping), None, connection) == "none"
