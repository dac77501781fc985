"""Small database helpers shared by the services."""

import functools
import zlib

from django.db import connection, connections

# Namespaces for transaction-level advisory locks (first key of the two-int form).
LOCK_OTP_PHONE = 1
LOCK_OTP_IP = 2
LOCK_REFERRALS = 3


def advisory_xact_lock(*locks: tuple[int, str | int]) -> None:
    """Serialise a check-and-set across processes until the transaction ends.

    Takes each (namespace, key) lock in the order given, in one round trip: callers that take
    several always pass them in the same order, so two requests cannot deadlock.
    PostgreSQL only; SQLite (the embedded `make run`) already runs one writer at a time.
    """
    if connection.vendor != "postgresql" or not locks:
        return
    # The keys are integers written into the statement: a statement without parameters opens
    # its transaction in the same round trip (project/postgresql).
    calls = ", ".join(f"pg_advisory_xact_lock({space}, {key})" for space, key in lock_keys(*locks))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}")


def lock_keys(*locks: tuple[int, str | int]) -> list[list[int]]:
    """advisory_xact_lock's (namespace, key) pairs as the two int4 keys PostgreSQL takes."""
    return [
        [int(space), zlib.crc32(key.encode()) - 2**31 if isinstance(key, str) else int(key)] for space, key in locks
    ]


# The helpers below work out what they need once per connection alias and field or model
# (functools.cache): the ORM's metadata walks cost more than the query they serve on the login
# path (bench/).


@functools.cache
def _converters_of(alias: str, field) -> tuple:
    """The column expression the ORM would read `field` by, and its converters."""
    column = field.get_col(field.model._meta.db_table)
    db = connections[alias]
    return column, db.ops.get_db_converters(column) + field.get_db_converters(db)


@functools.cache
def _row_shape(alias: str, model) -> tuple[list[str], list[tuple]]:
    """The attribute names of a raw row's columns, and which of them need converting."""
    fields = model._meta.concrete_fields
    return [f.attname for f in fields], [(n, f) for n, f in enumerate(fields) if _converters_of(alias, f)[1]]


@functools.cache
def _columns(alias: str, model, table_alias: str) -> str:
    prefix = f"{table_alias}." if table_alias else ""
    return ", ".join(prefix + connections[alias].ops.quote_name(f.column) for f in model._meta.concrete_fields)


def value_from_db(field, value):
    """A raw query's value as the ORM would return it (SQLite hands timestamps back as text)."""
    column, converters = _converters_of(connection.alias, field)
    for converter in converters:
        value = converter(value, column, connection)
    return value


def instance_from_row(model, row):
    """A model instance from a raw row holding every concrete field, in _meta order."""
    attnames, converted = _row_shape(connection.alias, model)
    if len(row) != len(attnames):
        raise ValueError(f"{model._meta.label} has {len(attnames)} columns, the row {len(row)}")
    values = list(row)
    for n, field in converted:
        values[n] = value_from_db(field, values[n])
    return model.from_db(connection.alias, attnames, values)


def columns(model, alias: str = "") -> str:
    """Every concrete column of `model`, in the order instance_from_row expects; qualified by a
    table alias of the query when given."""
    return _columns(connection.alias, model, alias)


def flush_skipped(connection) -> str:
    """A RETURNING item that lets this statement's own commit skip the WAL flush, or "".

    For writes whose loss in a PostgreSQL crash costs nothing but a repeat (a delivery claim, a
    task result): the session stays durable, and `set_config(..., true)` lasts only until the
    statement's implicit transaction ends. Inside an atomic block it would make the whole
    transaction's commit skip the flush, so it is never used there, nor off PostgreSQL.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return ""
    return "set_config('synchronous_commit', 'off', true)"


def _insert_fields(alias: str, model) -> tuple[list, str]:
    """The fields a new row of `model` sends, and "INSERT INTO table (their columns)"."""
    meta = model._meta
    computed = [field for field in meta.concrete_fields if field.generated or field.has_db_default()]
    if meta.parents or meta.pk is not meta.auto_field or computed:
        raise TypeError(f"insert() does not handle {meta.label}: use save()")
    fields = [field for field in meta.local_concrete_fields if not field.primary_key]
    quote = connections[alias].ops.quote_name
    return fields, f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)})"


def _insert_values(instance, fields) -> list:
    """The values save() would send for a new row: each field's pre_save and get_db_prep_save."""
    return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


@functools.cache
def _insert_statement(alias: str, models: tuple) -> tuple[list[list], str]:
    """The fields each model's row sends and one statement inserting a row of each, in order."""
    quote = connections[alias].ops.quote_name
    fields_of, inserts = [], []
    for model in models:
        fields, into = _insert_fields(alias, model)
        fields_of.append(fields)
        inserts.append(f"{into} VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(model._meta.pk.column)}")
    if len(inserts) == 1:
        return fields_of, inserts[0]
    # PostgreSQL runs data-modifying CTEs; the outer SELECT returns each row's key.
    ctes = ", ".join(f"r{n} AS ({sql})" for n, sql in enumerate(inserts))
    return fields_of, f"WITH {ctes} SELECT {', '.join(f'(SELECT * FROM r{n})' for n in range(len(inserts)))}"


def insert(*instances) -> None:
    """`instance.save()` for new rows of plain models, in one statement written once per
    sequence of models (one per row off PostgreSQL).

    For rows written on a hot path: a signup writes its code row and the outbox row in one
    round trip. The values are the ones the ORM sends: each field's pre_save (auto_now_add,
    auto_now) and get_db_prep_save; each primary key (an auto field) comes back from RETURNING.
    The ORM's compiler builds the statement on every save, about 0.1 ms a row (bench/). Not
    for models with signal receivers (none are sent), parents (multi-table inheritance) or
    database-computed fields.
    """
    if len(instances) > 1 and connection.vendor != "postgresql":
        for instance in instances:
            insert(instance)
        return
    fields_of, sql = _insert_statement(connection.alias, tuple(type(instance) for instance in instances))
    values = []
    for instance, fields in zip(instances, fields_of, strict=True):
        values += _insert_values(instance, fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        keys = cursor.fetchone()
    mark_saved(instances, keys)


def insert_select(instance, source: str) -> tuple[str, list]:
    """insert()'s statement and values for one new row, written "INSERT ... SELECT values FROM
    `source`": for a data-modifying CTE that inserts the row only when `source` (an earlier
    CTE, with its condition) has a row. RETURNING gives the primary key; mark_saved records it."""
    fields, sql = _insert_select_statement(connection.alias, type(instance), source)
    return sql, _insert_values(instance, fields)


@functools.cache
def _insert_select_statement(alias: str, model, source: str) -> tuple[list, str]:
    fields, into = _insert_fields(alias, model)
    pk = connections[alias].ops.quote_name(model._meta.pk.column)
    return fields, f"{into} SELECT {', '.join(['%s'] * len(fields))} FROM {source} RETURNING {pk}"


def mark_saved(instances, keys) -> None:
    """What save() leaves on new rows written by other means: each its primary key, and the
    state of a row loaded from this connection's database."""
    for instance, pk in zip(instances, keys, strict=True):
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = connection.alias
