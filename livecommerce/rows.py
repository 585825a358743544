"""Model instances from SQL text written once, read and converted as the ORM would read them.

For the few reads every request of the busiest calls makes, where building the ORM's query
costs more than running it (an API key and its partner: about 0.5 ms of CPU to build and read
through the ORM against 0.08 ms with the same SQL text kept). ``select_list`` names a model's
columns under a table alias; ``instance`` turns that slice of a row into the model instance the
ORM would have given (the database's and the field's converters applied, the instance marked
as loaded from the database). ``insert_sql`` is Django's own INSERT of new instances with its text
kept per shape. ``prepared_statements`` has PostgreSQL parse and plan the statements of a block
once per connection.
"""

from contextlib import contextmanager
from datetime import datetime
from functools import cache

from django.conf import settings
from django.db import connection as default_connection
from django.db.models import Model
from django.db.models import fields as model_fields
from django.db.models.fields import related as related_fields
from django.db.models.sql import InsertQuery


def select_list(model: type[Model], alias: str, connection) -> str:
    """The model's concrete columns under ``alias``, in ``_meta.concrete_fields`` order."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(f.column)}" for f in model._meta.concrete_fields)


def instance(model: type[Model], values, connection) -> Model | None:
    """The instance of ``model`` from its columns' values as ``select_list`` reads them, or None
    when every value is None (an outer join that found no row)."""
    if all(value is None for value in values):
        return None
    fields = model._meta.concrete_fields
    converted = []
    for field, value in zip(fields, values, strict=True):
        col = field.get_col(model._meta.db_table)
        for convert in (
            *connection.ops.get_db_converters(col),
            *field.get_db_converters(connection),
        ):
            value = convert(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


# Field classes (exactly these, not subclasses) whose ``get_db_prep_save`` of a value of the type
# named is cheap to give directly on PostgreSQL: a ``str``, a ``bool`` and an aware ``datetime``
# come back unchanged (``adapt_datetimefield_value`` returns the time as is; a naive one is
# warned about and made aware, so it goes the long way), an ``int`` comes back wrapped by the
# database's ``adapt_integerfield_value`` (psycopg's Int2/Int4/Int8, so PostgreSQL is told the
# column's type), and None is None for each of them. A foreign key (exactly Django's
# ``ForeignKey`` or ``OneToOneField``) prepares as its target field.
_PLAIN_TYPES: dict[type, type] = {
    model_fields.CharField: str,
    model_fields.TextField: str,
    model_fields.EmailField: str,
    model_fields.IntegerField: int,
    model_fields.BigIntegerField: int,
    model_fields.SmallIntegerField: int,
    model_fields.PositiveIntegerField: int,
    model_fields.PositiveBigIntegerField: int,
    model_fields.PositiveSmallIntegerField: int,
    model_fields.BooleanField: bool,
    model_fields.DateTimeField: datetime,
}
_PLAIN_RELATIONS = (related_fields.ForeignKey, related_fields.OneToOneField)


def _plain(field) -> tuple[type | None, str]:
    """The type of value ``field`` prepares cheaply (``_PLAIN_TYPES``) or None, and the internal
    type of the field the value is stored as."""
    target = field
    if field.is_relation:
        if type(field) not in _PLAIN_RELATIONS:
            return None, ""
        target = field.target_field
    return _PLAIN_TYPES.get(type(target)), target.get_internal_type()


def _prepared(field, plain: tuple[type | None, str], value, connection):
    """``field.get_db_prep_save(value, connection)``, without its layers for a plain value."""
    kind, internal_type = plain
    if kind is None:
        return field.get_db_prep_save(value, connection)
    if value is None:
        return None
    if type(value) is kind:
        if kind is int:
            return connection.ops.adapt_integerfield_value(value, internal_type)
        # aware as Django's ``timezone.is_aware`` reads it: an offset, not merely a tzinfo
        if kind is not datetime or value.utcoffset() is not None:
            return value
    return field.get_db_prep_save(value, connection)


@cache
def insert_fields(model: type[Model]) -> tuple:
    """The concrete fields an INSERT of ``model`` names, in order: all but those the database
    returns (an auto-increment id)."""
    return tuple(f for f in model._meta.concrete_fields if not getattr(f, "db_returning", False))


@cache
def _plain_of(model: type[Model]) -> tuple:
    """``_plain`` of each of ``insert_fields(model)``: fixed by the model, so worked out once."""
    return tuple(_plain(field) for field in insert_fields(model))


# Django's INSERT text per (model, database vendor, conflict clause, one row or several): on
# PostgreSQL several rows are one ``INSERT ... SELECT * FROM UNNEST(%s::type[], ...)``, whose
# text does not depend on their number. None: a shape whose text does (kept from being cached).
_INSERT_TEXT: dict[tuple, str | None] = {}


def insert_sql(model, objs, connection, *, raw: bool = False, on_conflict=None) -> tuple[str, list]:
    """Django's own INSERT of ``objs`` (one statement), not run: its text and parameters.

    ``raw``: the instances' values as they are (already ``stamp``-ed), no ``pre_save``. The text
    is built by Django's compiler the first time a shape is written and kept; later calls only
    prepare the values as that compiler does (``pre_save`` unless ``raw``, then
    ``get_db_prep_save``, or its result given directly for a plain value), which on the
    busiest calls cost a third of what building the text did.
    A call with a value that is an expression goes through Django's compiler, and its text is
    never kept.
    """
    fields = insert_fields(model)
    key = (model, connection.vendor, on_conflict, len(objs) == 1)
    text = _INSERT_TEXT.get(key)
    if text is not None:
        plain = _plain_of(model)
        rows = []
        for obj in objs:
            row = []
            for field, field_plain in zip(fields, plain, strict=True):
                value = getattr(obj, field.attname) if raw else field.pre_save(obj, True)
                if hasattr(value, "resolve_expression"):
                    return _compiled_insert(model, fields, objs, connection, raw, on_conflict)
                row.append(_prepared(field, field_plain, value, connection))
            rows.append(row)
        if len(rows) == 1:
            return text, rows[0]
        return text, [list(column) for column in zip(*rows, strict=True)]
    sql, params = _compiled_insert(model, fields, objs, connection, raw, on_conflict)
    # A text made for an expression (``Now()``, a database default) is not the text of plain
    # values: kept only when every value was plain, so the next call decides again otherwise.
    plain = not any(
        hasattr(getattr(obj, field.attname), "resolve_expression")
        for obj in objs
        for field in fields
    )
    if plain and key not in _INSERT_TEXT:
        kept = (
            connection.vendor == "postgresql"
            and not any(hasattr(field, "get_placeholder") for field in fields)
            and (len(objs) == 1 or " UNNEST(" in sql)
        )
        _INSERT_TEXT[key] = sql if kept else None
    return sql, params


def _compiled_insert(model, fields, objs, connection, raw, on_conflict) -> tuple[str, list]:
    query = InsertQuery(model, on_conflict=on_conflict)
    query.insert_values(fields, objs, raw=raw)
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


@contextmanager
def prepared_statements(connection=default_connection):
    """Within the block, a statement whose text the connection has run ``PREPARE_THRESHOLD``
    times (settings; ``DATABASE_PREPARE_THRESHOLD``) is prepared: PostgreSQL parses and plans it
    once and reuses the plan for later runs in such blocks. For the order path's statements, the
    same few texts run thousands of times with values whose plan does not change; in the order
    rush PostgreSQL's CPU per order fell by about 30%. Nothing outside such a block is prepared:
    a report's or a settlement run's statements are planned for their own date range each time.
    Needs server-side binding (on by default); without it, or on another database, it does
    nothing."""
    threshold = settings.PREPARE_THRESHOLD
    if (
        threshold is None
        or connection.vendor != "postgresql"
        or not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
    ):
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    previous = raw.prepare_threshold
    raw.prepare_threshold = threshold
    try:
        yield
    finally:
        raw.prepare_threshold = previous
