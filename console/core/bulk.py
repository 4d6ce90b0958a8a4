"""Bulk writes: COPY on PostgreSQL; elsewhere one INSERT executed for every row (the ORM's
``bulk_create`` where the keys are wanted back).

Extraction stores hundreds of thousands of rows a run, and a worker running a batch of
actions writes their events, audit events and call log together. On PostgreSQL they are streamed with
``COPY … FROM STDIN`` (psycopg's ``cursor.copy``), their primary keys drawn from the table's
own sequence first, so a row stored by COPY is the row ``bulk_create`` would have stored,
without building a model instance and a multi-row INSERT for each. Changed rows are
rewritten by one ``UPDATE … FROM jsonb_to_recordset(…)`` statement (``update_rows``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from psycopg import sql

BATCH = 500  # rows per INSERT on the ORM path


def copy_supported() -> bool:
    """Whether rows are written with COPY (PostgreSQL) rather than the ORM."""
    return connection.vendor == "postgresql"


def _fields(model: type[models.Model], names: Sequence[str]) -> list[models.Field[Any, Any]]:
    fields = [model._meta.get_field(name) for name in names]
    assert all(isinstance(field, models.Field) and field.column for field in fields), "concrete fields only"
    return fields  # type: ignore[return-value]


def _pk_column(model: type[models.Model]) -> str:
    column = model._meta.pk.column if model._meta.pk is not None else None
    assert column
    return column


def json_bytes(value: Any) -> bytes:
    """``json.dumps(value)`` as UTF-8: orjson (a tenth of the time, on resources), or the
    standard library for what orjson will not write (integers past 64 bits, say). Keys that
    are not strings are written as ``json.dumps`` writes them, by a slower path of orjson's
    taken only for those (parsed JSON has none)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        pass
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value).encode()


def json_text(value: Any) -> str:
    """``json.dumps(value)`` for a column, as ``json_bytes`` writes it."""
    return json_bytes(value).decode()


@dataclass(frozen=True)
class EncodedRows:
    """Rows of one model for ``insert_encoded``, with their COPY text when it could be built.

    ``encode_rows`` builds the text (a line a row, without primary keys) on PostgreSQL when
    the text encoder knows every column, without touching the database: a caller can
    encode on one thread and insert on another (extraction's reader and writer). The rows
    themselves are kept only where there is no text (they may be large: whole resources).
    """

    model: type[models.Model]
    fields: tuple[str, ...]
    rows: Sequence[Sequence[Any]]
    text: bytes | None
    count: int


def encode_rows(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> EncodedRows:
    """``rows`` (values of ``fields``) ready for ``insert_encoded``."""
    if rows and copy_supported():
        encoders = [_column_encoder(field) for field in _fields(model, fields)]
        if all(encoders):
            return EncodedRows(model, tuple(fields), (), _copy_text(rows, encoders), len(rows))
    return EncodedRows(model, tuple(fields), rows, None, len(rows))


def insert_rows(
    model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]], *, returning: bool = False
) -> list[int]:
    """Insert ``rows`` (values of ``fields``, by attribute name); with ``returning``, return their primary keys.

    Values are what the model would hold (a dict for a JSON field, an aware datetime): on
    PostgreSQL a JSON value goes as its JSON text (adapted by its field when it has an
    encoder of its own), every other value as it is, as the ORM passes it; elsewhere each
    value is prepared by its field and one INSERT is executed for every row, or, with
    ``returning``, the rows become instances for ``bulk_create``. Give every column that has
    no database default: COPY writes only those given. Keys are drawn from the table's
    sequence only when asked for.
    """
    return insert_encoded(encode_rows(model, fields, rows), returning=returning)


def insert_encoded(encoded: EncodedRows, *, returning: bool = False) -> list[int]:
    """Insert rows ``encode_rows`` made ready, as ``insert_rows`` does."""
    model, fields, rows = encoded.model, encoded.fields, encoded.rows
    if not encoded.count:
        return []
    if encoded.text is None and not copy_supported():
        if not returning:
            _insert_many(model, fields, rows)
            return []
        if connection.vendor == "sqlite":
            return _insert_many_returning(model, fields, rows)
        objects = [model(**dict(zip(fields, row, strict=True))) for row in rows]
        model._default_manager.bulk_create(objects, batch_size=BATCH)
        return [obj.pk for obj in objects]
    table = model._meta.db_table
    pk_column = _pk_column(model)
    columns = _fields(model, fields)
    names = [str(field.column) for field in columns]
    pks: list[int] = []
    if returning:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, pk_column, encoded.count],
            )
            pks = [int(pk) for (pk,) in cursor.fetchall()]
        names.insert(0, pk_column)
    if encoded.text is not None:
        _copy(table, names, _with_keys(encoded.text, pks) if returning else encoded.text)
        return pks
    # A kind of column the text encoder does not know: psycopg adapts each row. Each value of
    # such a field is prepared by the field itself first (encrypted, or JSON with an encoder
    # of its own); plain JSON goes as its text.
    encoders = [_column_encoder(field) for field in columns]
    prepare_at = [
        (index, json_text if encoder else partial(field.get_db_prep_save, connection=connection))
        for index, (field, encoder) in enumerate(zip(columns, encoders, strict=True))
        if encoder is None or encoder is _encode_json
    ]
    with connection.cursor() as cursor, cursor.cursor.copy(_copy_statement(table, names)) as copy:
        for number, row in enumerate(rows):
            values = list(row)
            for index, prepare in prepare_at:
                values[index] = prepare(values[index])
            copy.write_row([pks[number], *values] if returning else values)
    return pks


def _insert_many(model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Rows without keys asked for, elsewhere than PostgreSQL: one INSERT executed for every row,
    each value prepared by its field as the ORM prepares it (``bulk_create`` built a model
    instance a row and compiled a statement of hundreds of rows, several times slower), and
    only the given columns written, as COPY writes them."""
    columns = _fields(model, fields)
    quote = connection.ops.quote_name
    names = ", ".join(quote(str(field.column)) for field in columns)
    marks = ", ".join(["%s"] * len(columns))
    statement = f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES ({marks})"  # noqa: S608 - names from the model
    prepare = [_preparer(field) for field in columns]
    params = [[ready(value) for ready, value in zip(prepare, row, strict=True)] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(statement, params)


# Fields whose preparation of a value of their own type (``PLAIN_TYPES``) returns it unchanged:
# exactly these classes, not subclasses, which may prepare more (encrypt, say).
PLAIN_TYPES: dict[type[models.Field[Any, Any]], type] = {
    models.AutoField: int,
    models.BigAutoField: int,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.SmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.CharField: str,
    models.TextField: str,
    models.SlugField: str,
    models.EmailField: str,
    models.BooleanField: bool,
}


def _preparer(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """What makes a value of ``field`` ready for the database, as a save makes it.

    A plain field's value of its own type (or None) is already ready: the field's own
    preparation, several calls deep, is kept for the rest. A foreign key's is its target's.
    A JSON field without an encoder of its own writes a dict or list as its JSON text.
    """
    prepare = partial(field.get_db_prep_save, connection=connection)
    target = field
    if type(field) in (models.ForeignKey, models.OneToOneField):
        target = field.target_field  # type: ignore[attr-defined]
    kind = PLAIN_TYPES.get(type(target))
    if kind is not None:
        return lambda value: value if value is None or type(value) is kind else prepare(value)
    if type(field) is models.JSONField and field.encoder is None:
        return lambda value: json_text(value) if type(value) in (dict, list) else prepare(value)
    return prepare


def _insert_many_returning(
    model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[int]:
    """``_insert_many`` on SQLite, returning the new rows' keys.

    SQLite lets one connection write at a time, from its first write to the end of its
    transaction, and gives a new row the table's largest key plus one: rows inserted one
    after the other inside one transaction get consecutive keys, the last of them
    ``last_insert_rowid()``. The insert is therefore made inside a transaction (the caller's,
    or one of its own). Building model instances and a multi-row INSERT for ``bulk_create``
    took about three times as long.
    """
    from django.db import transaction

    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        _insert_many(model, fields, rows)
        cursor.execute("SELECT last_insert_rowid()")
        (last,) = cursor.fetchone()
    return list(range(last - len(rows) + 1, last + 1))


def create_objects(objects: Sequence[models.Model], *, batch_size: int = BATCH) -> None:
    """Insert unsaved instances of one model, each getting its primary key, as ``bulk_create`` does.

    By ``insert_rows`` (on PostgreSQL COPY, the keys drawn from the table's sequence first; on
    SQLite one INSERT executed for every row), each field's value made ready as a save makes
    it (``pre_save``: an ``auto_now`` stamped); on other databases ``bulk_create``.
    """
    if not objects:
        return
    model = type(objects[0])
    if not copy_supported() and connection.vendor != "sqlite":
        model._default_manager.bulk_create(objects, batch_size=batch_size)
        return
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    rows = [[field.pre_save(obj, add=True) for field in fields] for obj in objects]
    keys = insert_rows(model, [field.attname for field in fields], rows, returning=True)
    for obj, key in zip(objects, keys, strict=True):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = connection.alias


@dataclass(frozen=True)
class EncodedBlocks:
    """Rows of one model in blocks, for ``insert_blocks``: the rows of a block share the value of
    ``lead``, known only when they are inserted (the key of a parent drawn then: a group's members).

    ``encode_blocks`` builds each block's COPY text (without ``lead``) as ``encode_rows`` does,
    and keeps the blocks only where there is no text.
    """

    model: type[models.Model]
    lead: str
    fields: tuple[str, ...]
    blocks: Sequence[Sequence[Sequence[Any]]]
    texts: list[bytes] | None


def encode_blocks(
    model: type[models.Model], lead: str, fields: Sequence[str], blocks: Sequence[Sequence[Sequence[Any]]]
) -> EncodedBlocks:
    """``blocks`` of rows (values of ``fields``) ready for ``insert_blocks``."""
    texts = None
    if copy_supported():
        encoders = [_column_encoder(field) for field in _fields(model, fields)]
        if all(encoders):
            flat = [row for block in blocks for row in block]
            lines = _copy_text(flat, encoders).split(b"\n") if flat else []
            texts, start = [], 0
            for block in blocks:
                texts.append(b"\n".join(lines[start : start + len(block)]))
                start += len(block)
            return EncodedBlocks(model, lead, tuple(fields), (), texts)
    return EncodedBlocks(model, lead, tuple(fields), blocks, None)


def insert_blocks(encoded: EncodedBlocks, leads: Sequence[int | None]) -> None:
    """Insert each block of ``encoded`` with its value of the lead field (``leads``, a key per
    block, in order); a block whose lead is None is left out."""
    model, blocks = encoded.model, encoded.blocks
    count = len(blocks) if encoded.texts is None else len(encoded.texts)
    if len(leads) != count:
        raise ValueError(f"{len(leads)} lead values for {count} blocks")
    if encoded.texts is None:
        rows = [(lead, *row) for lead, block in zip(leads, blocks, strict=True) if lead is not None for row in block]
        insert_rows(model, [encoded.lead, *encoded.fields], rows)
        return
    parts = []
    for lead, text in zip(leads, encoded.texts, strict=True):
        if lead is not None and text:
            prefix = b"%d\t" % lead  # COPY text holds no newline inside a value: each one starts a row
            parts.append(prefix + text.replace(b"\n", b"\n" + prefix) + b"\n")
    if parts:
        names = [str(field.column) for field in _fields(model, [encoded.lead, *encoded.fields])]
        _copy(model._meta.db_table, names, b"".join(parts))


def _copy_statement(table: str, names: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join([sql.Identifier(name) for name in names])
    )


def _copy(table: str, names: Sequence[str], text: bytes) -> None:
    with connection.cursor() as cursor, cursor.cursor.copy(_copy_statement(table, names)) as copy:
        copy.write(text)


# COPY's text format (https://www.postgresql.org/docs/current/sql-copy.html): a row a line, a
# tab between columns, \N for NULL, and a backslash, newline, carriage return or tab inside a
# value written as \\, \n, \r, \t. Rows are built as UTF-8 bytes, the connection's encoding
# (Django's PostgreSQL backend sets client_encoding to UTF8).
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = b"\\N"
ColumnEncoder = Callable[[Sequence[Any]], Iterable[bytes]]


def _copy_text(rows: Sequence[Sequence[Any]], encoders: Sequence[ColumnEncoder | None]) -> bytes:
    """``rows`` as COPY text, a column at a time: each column's values are encoded in one pass
    (most in C: ``str`` over the integers, one scan of a whole text column for characters that
    need escaping, JSON as orjson's bytes), then joined row by row as bytes. psycopg's
    ``write_row`` took about 1.7 µs a row."""
    columns = [encode(values) for encode, values in zip(encoders, zip(*rows, strict=True), strict=True) if encode]
    return b"\n".join(map(b"\t".join, zip(*columns, strict=True))) + b"\n"


def _with_keys(text: bytes, pks: Sequence[int]) -> bytes:
    """COPY text with each row's primary key put before it (a column more, the first)."""
    lines = text.split(b"\n")
    lines.pop()  # after the last newline
    return b"".join([b"%d\t%s\n" % key_and_line for key_and_line in zip(pks, lines, strict=True)])


def _column_encoder(field: models.Field[Any, Any]) -> ColumnEncoder | None:
    """How a column of ``field``'s values is written as COPY text, or None for a kind not handled here.

    Only Django's own fields (and JSON fields that prepare values as JSONField does): a field
    that prepares its values itself (encrypts them, say) goes through psycopg row by row.
    """
    prepares = ("get_prep_value", "get_db_prep_value", "get_db_prep_save")
    if isinstance(field, models.JSONField):
        plain = all(getattr(type(field), name) is getattr(models.JSONField, name) for name in prepares)
        return _encode_json if plain and field.encoder is None else None
    if not type(field).__module__.startswith("django.db.models."):
        return None
    if isinstance(field, models.ForeignKey):
        return _column_encoder(field.target_field)
    if isinstance(field, models.BooleanField):
        return _encode_booleans
    if isinstance(field, models.IntegerField):  # the auto fields too
        return _encode_integers
    if isinstance(field, models.DateTimeField):
        return _encode_datetimes
    if isinstance(field, (models.CharField, models.TextField)):
        return _encode_texts
    return None


def _encode_integers(values: Sequence[Any]) -> Iterable[bytes]:
    if None in values:
        return [_NULL if value is None else b"%d" % int(value) for value in values]
    return [b"%d" % value for value in map(int, values)]


_BOOLEAN_TEXT = {True: b"t", False: b"f", None: _NULL}


def _encode_booleans(values: Sequence[Any]) -> Iterable[bytes]:
    return [_BOOLEAN_TEXT[None if value is None else bool(value)] for value in values]


def _encode_texts(values: Sequence[Any]) -> Iterable[bytes]:
    texts: list[str | None] = [
        value if type(value) is str else (None if value is None else str(value)) for value in values
    ]
    present = [text for text in texts if text is not None]
    if _COPY_SPECIAL.search("".join(present)):  # one scan of the column: escaping is rare
        texts = [None if text is None else text.translate(_COPY_ESCAPES) for text in texts]
    return [_NULL if text is None else text.encode() for text in texts]


def _encode_datetimes(values: Sequence[Any]) -> Iterable[bytes]:
    # A batch usually shares a few instants (the read's own time): each is formatted once.
    text = {value: _datetime_text(value) for value in dict.fromkeys(values)}
    return map(text.__getitem__, values)


def _datetime_text(value: Any) -> bytes:
    if value is None:
        return _NULL
    return (value.isoformat() if isinstance(value, datetime) else str(value).translate(_COPY_ESCAPES)).encode()


def _encode_json(values: Sequence[Any]) -> Iterable[bytes]:
    # JSON text holds no raw tab, newline or carriage return: only its backslashes need doubling.
    encoded = []
    for value in values:
        data = json_bytes(value)
        encoded.append(data.replace(b"\\", b"\\\\") if b"\\" in data else data)
    return encoded


def upsert_objects(
    objects: Sequence[models.Model], *, unique_fields: Sequence[str], update_fields: Sequence[str]
) -> None:
    """Insert unsaved instances of one model, or update ``update_fields`` of the rows that hold
    their ``unique_fields`` already; each instance gets its row's primary key.

    On PostgreSQL one ``INSERT … SELECT … FROM jsonb_to_recordset(…) ON CONFLICT … DO UPDATE …
    RETURNING`` statement (what ``bulk_create(update_conflicts=True)`` does, without its
    per-column arrays); elsewhere ``bulk_create``, then a read of the keys it did not return.
    Two instances must not share their unique values.
    """
    if not objects:
        return
    model = type(objects[0])
    unique = _fields(model, unique_fields)
    if not copy_supported():
        model._default_manager.bulk_create(
            objects, update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields
        )
        missing = [obj for obj in objects if obj.pk is None]
        if missing:  # a database that does not return the key of an updated row
            columns = [field.attname for field in unique]
            among = {f"{column}__in": {getattr(obj, column) for obj in missing} for column in columns}
            stored = model._default_manager.filter(**among).values_list("pk", *columns)
            keys = {tuple(row[1:]): row[0] for row in stored}
            for obj in missing:
                obj.pk = keys[tuple(getattr(obj, column) for column in columns)]
        return
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    for obj in objects:
        for field in fields:
            field.pre_save(obj, add=True)
    names = [str(field.column) for field in fields]
    document = json.dumps(
        [{name: getattr(obj, field.attname) for name, field in zip(names, fields, strict=True)} for obj in objects],
        default=_json_default,
    )
    unique_names = [str(field.column) for field in unique]
    statement = sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS v({definitions}) "
        "ON CONFLICT ({unique}) DO UPDATE SET {assignments} RETURNING {pk}, {unique}"
    ).format(
        table=sql.Identifier(model._meta.db_table),
        columns=sql.SQL(", ").join(sql.Identifier(name) for name in names),
        definitions=sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(str(field.column)), sql.SQL(str(field.db_type(connection))))
            for field in fields
        ),
        unique=sql.SQL(", ").join(sql.Identifier(name) for name in unique_names),
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(column), sql.Identifier(column))
            for column in (str(field.column) for field in _fields(model, update_fields))
        ),
        pk=sql.Identifier(_pk_column(model)),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(cursor.cursor.connection), [document])
        keys = {tuple(str(value) for value in row[1:]): row[0] for row in cursor.fetchall()}
    for obj in objects:
        obj.pk = keys[tuple(str(getattr(obj, field.attname)) for field in unique)]


def update_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[tuple[Any, Sequence[Any]]],
    *,
    key: str = "pk",
    scope: dict[str, Any] | None = None,
) -> int:
    """Set ``fields`` of existing rows, given as ``(key value, values)``; returns how many rows were found.

    A row is the one whose ``key`` field (the primary key unless said) has the key value,
    among those that also match ``scope`` (``{"integration_id": 3}``: equal columns). On
    PostgreSQL one ``UPDATE … FROM jsonb_to_recordset(…)`` statement for all rows (an UPDATE
    per row, even pipelined, spent a third of a millisecond a row in the client). Elsewhere
    one statement executed for every row (on SQLite a ``CASE`` per column, as
    ``bulk_update`` builds, costs more).
    """
    if not rows:
        return 0
    scope = scope or {}
    columns = _fields(model, fields)
    [key_field] = [model._meta.pk] if key == "pk" else _fields(model, [key])
    scoped = list(zip(_fields(model, list(scope)), scope.values(), strict=True))
    if copy_supported():
        return len(_update_from_json(model, columns, key_field, scoped, rows))
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(field.column))} = %s" for field in columns)
    conditions = " AND ".join(f"{quote(str(field.column))} = %s" for field, _ in [(key_field, None), *scoped])
    statement = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {conditions}"  # noqa: S608 - names from the model
    fixed = [field.get_db_prep_save(value, connection) for field, value in scoped]
    params = [
        [
            *(field.get_db_prep_save(value, connection) for field, value in zip(columns, values, strict=True)),
            key_field.get_db_prep_save(key_value, connection),
            *fixed,
        ]
        for key_value, values in rows
    ]
    with connection.cursor() as cursor:
        if len(params) == 1:  # executemany costs more than it saves for one row
            cursor.execute(statement, params[0])
        else:
            cursor.executemany(statement, params)
        return max(cursor.rowcount, 0)


_django_json = DjangoJSONEncoder()


def _json_default(value: Any) -> Any:
    """Datetimes to the microsecond (DjangoJSONEncoder keeps milliseconds); the rest as Django encodes it."""
    if isinstance(value, datetime):
        return value.isoformat()
    return _django_json.default(value)


def update_rows_returning(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Sequence[tuple[Any, Sequence[Any]]],
    *,
    scope: dict[str, Any],
) -> set[Any]:
    """:func:`update_rows` by primary key, returning the keys of the rows it found in ``scope``.

    On PostgreSQL the same one statement, with ``RETURNING``; elsewhere the keys are read
    first (the caller's transaction keeps them), then updated.
    """
    if not rows:
        return set()
    if copy_supported():
        columns = _fields(model, fields)
        scoped = list(zip(_fields(model, list(scope)), scope.values(), strict=True))
        return set(_update_from_json(model, columns, model._meta.pk, scoped, rows))
    found = set(model._default_manager.filter(pk__in=[key for key, _ in rows], **scope).values_list("pk", flat=True))
    update_rows(model, fields, [(key, values) for key, values in rows if key in found])
    return found


def _update_from_json(
    model: type[models.Model],
    columns: list[models.Field[Any, Any]],
    key_field: models.Field[Any, Any],
    scoped: list[tuple[models.Field[Any, Any], Any]],
    rows: Sequence[tuple[Any, Sequence[Any]]],
) -> list[Any]:
    """The rows as one JSON document, turned back into typed columns by ``jsonb_to_recordset``;
    returns the keys of the rows updated.

    One C-encoded parameter instead of an array per column, whose elements psycopg adapts
    one at a time in Python (the rows of a read that finds little changed are mostly the
    resources themselves). Datetimes go as ISO 8601 with their offset, so nothing is lost.
    """
    names = [str(field.column) for field in [key_field, *columns]]
    document = json.dumps(
        [dict(zip(names, [key_value, *values], strict=True)) for key_value, values in rows], default=_json_default
    )
    types = [str(field.db_type(connection)) for field in [key_field, *columns]]
    key_column = str(key_field.column)
    conditions = [sql.SQL("t.{} = v.{}").format(sql.Identifier(key_column), sql.Identifier(key_column))]
    conditions += [sql.SQL("t.{} = %s").format(sql.Identifier(str(field.column))) for field, _ in scoped]
    statement = sql.SQL(
        "UPDATE {table} AS t SET {assignments} FROM jsonb_to_recordset(%s::jsonb) AS v({definitions}) WHERE {where} "
        "RETURNING t.{key}"
    ).format(
        key=sql.Identifier(key_column),
        table=sql.Identifier(model._meta.db_table),
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = v.{}").format(sql.Identifier(name), sql.Identifier(name)) for name in names[1:]
        ),
        definitions=sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
            for name, kind in zip(names, types, strict=True)
        ),
        where=sql.SQL(" AND ").join(conditions),
    )
    params = [document, *(field.get_db_prep_save(value, connection) for field, value in scoped)]
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(cursor.cursor.connection), params)
        return [key for (key,) in cursor.fetchall()]
