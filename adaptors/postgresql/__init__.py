"""The ``postgresql`` adaptor: queries and writes against a PostgreSQL database.

The credential (``state["configuration"]``) gives either ``url`` (a
``postgresql://`` URL) or ``host``, ``port`` (default 5432), ``database``,
``user``, ``password`` and optionally ``sslmode``; ``connect_timeout_s``
(default 10) bounds connecting. Each operation opens a connection, runs in one
transaction, commits and closes. Values are always bound parameters, names
always quoted identifiers, and results are made JSON-ready.
"""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import JsonbBinaryDumper, JsonbDumper

from adaptors.common import (
    chunk,
    cursor,
    data_path,
    data_value,
    each,
    expand_references,
    field,
    fields,
    fn,
    log,
    merge,
    source_value,
)
from shared.job_language import Operation
from shared.model import JsonObject

# Like every OpenFn adaptor, this one offers the common operations too.
__all__ = [
    "PostgresError",
    "chunk",
    "cursor",
    "data_path",
    "data_value",
    "each",
    "expand_references",
    "field",
    "fields",
    "fn",
    "insert",
    "insert_many",
    "log",
    "merge",
    "source_value",
    "sql",
    "upsert",
]

DEFAULT_PORT = 5432
DEFAULT_CONNECT_TIMEOUT_S = 10
REDACTED = "******"
# Rows per INSERT statement in insert_many: keeps each statement well under
# PostgreSQL's 65,535 bound parameters for tables of up to 65 columns.
ROWS_PER_STATEMENT = 1000

Connection = psycopg.Connection[DictRow]
TableName = str | Sequence[str]


class PostgresError(Exception):
    """The database could not be reached with the run's credential."""


def sql(query: Any, params: Any = None) -> Operation:
    """An operation that runs one SQL statement with bound parameters.

    Args:
        query: The statement, with ``%s`` or ``%(name)s`` placeholders.
        params: The values for the placeholders: a list, or an object for
            named ones. Never format values into ``query`` itself.

    Both may be functions of state (or contain some). The operation sets
    ``state["data"]`` to the rows, as objects, or to ``{"rowcount": n}`` for a
    statement that returns no rows. Several statements (allowed only without
    params) give the result of the last.
    """

    def run_sql(state: JsonObject) -> JsonObject:
        statement = expand_references(query, state)
        if not isinstance(statement, str):
            found = type(statement).__name__
            raise TypeError(f"sql expects the query as text, found {found}")
        values = expand_references(params, state)

        with _connect(state) as connection, connection.cursor() as cursor:
            # The job's author writes the query; values reach it only bound.
            cursor.execute(statement, values)
            # Several statements without params give several results; the
            # last is the one a job means, as in psql.
            while cursor.nextset():
                pass
            if cursor.description is None:
                data: Any = {"rowcount": cursor.rowcount}
            else:
                data = [_to_json(row) for row in cursor.fetchall()]
        return {**state, "data": data}

    return run_sql


def insert(table: TableName, record: Any) -> Operation:
    """An operation that inserts one row; ``state["data"]`` becomes the row stored.

    Args:
        table: The table, ``"name"`` or ``"schema.name"``; a list of parts
            for names that contain a dot.
        record: The row, an object from column names to values; it may be a
            function of state (or contain some).
    """
    target = _table_identifier(table)

    def run_insert(state: JsonObject) -> JsonObject:
        row = _record_of(expand_references(record, state), "insert")
        with _connect(state) as connection:
            stored = _insert_rows(connection, target, [row])
        return {**state, "data": stored[0]}

    return run_insert


def insert_many(table: TableName, records: Any) -> Operation:
    """An operation that inserts rows in one transaction; ``state["data"]``
    becomes the rows stored, in order.

    Args:
        table: The table, as for :func:`insert`.
        records: The rows, objects from column names to values; a column a
            row leaves out gets its default. It may be a function of state.
    """
    target = _table_identifier(table)

    def run_insert_many(state: JsonObject) -> JsonObject:
        rows = expand_references(records, state)
        if not isinstance(rows, list):
            found = type(rows).__name__
            raise TypeError(f"insert_many expects a list of records, found {found}")
        rows = [_record_of(row, "insert_many") for row in rows]

        stored: list[JsonObject] = []
        if rows:
            with _connect(state) as connection:
                for start in range(0, len(rows), ROWS_PER_STATEMENT):
                    batch = rows[start : start + ROWS_PER_STATEMENT]
                    stored.extend(_insert_rows(connection, target, batch))
        return {**state, "data": stored}

    return run_insert_many


def upsert(
    table: TableName, conflict_columns: str | Sequence[str], record: Any
) -> Operation:
    """An operation that inserts a row, or updates the row it conflicts with.

    Args:
        table: The table, as for :func:`insert`.
        conflict_columns: The column, or columns, of the unique constraint
            that identifies the row; the record must hold them.
        record: The row, as for :func:`insert`.

    The operation sets ``state["data"]`` to the row as stored.
    """
    target = _table_identifier(table)
    keys = (
        [conflict_columns]
        if isinstance(conflict_columns, str)
        else list(conflict_columns)
    )
    if not keys or not all(isinstance(key, str) for key in keys):
        raise ValueError(f"upsert expects conflict column names, found {keys!r}")

    def run_upsert(state: JsonObject) -> JsonObject:
        row = _record_of(expand_references(record, state), "upsert")
        missing = [key for key in keys if key not in row]
        if missing:
            raise ValueError(
                f"upsert needs the conflict columns {missing} in the record"
            )
        # Updating the key columns to the values they already have keeps the
        # statement an update, so RETURNING gives the row even then.
        updated = [column for column in row if column not in keys] or keys
        statement = pgsql.SQL(
            "INSERT INTO {table} ({columns}) VALUES ({values})"
            " ON CONFLICT ({keys}) DO UPDATE SET {assignments} RETURNING *"
        ).format(
            table=target,
            columns=_identifiers(list(row)),
            values=pgsql.SQL(", ").join(pgsql.Placeholder() * len(row)),
            keys=_identifiers(keys),
            assignments=pgsql.SQL(", ").join(
                pgsql.SQL("{column} = EXCLUDED.{column}").format(
                    column=pgsql.Identifier(column)
                )
                for column in updated
            ),
        )

        with _connect(state) as connection, connection.cursor() as cursor:
            cursor.execute(statement, list(row.values()))
            stored = cursor.fetchone()
        return {**state, "data": _to_json(stored)}

    return run_upsert


def _insert_rows(
    connection: Connection, table: pgsql.Identifier, rows: list[JsonObject]
) -> list[JsonObject]:
    columns = list(dict.fromkeys(column for row in rows for column in row))
    if not columns:
        return [_insert_defaults(connection, table) for _ in rows]

    values: list[Any] = []
    tuples = []
    for row in rows:
        cells: list[pgsql.Composable] = []
        for column in columns:
            if column in row:
                values.append(row[column])
                cells.append(pgsql.Placeholder())
            else:
                cells.append(pgsql.DEFAULT)
        tuples.append(pgsql.SQL("({})").format(pgsql.SQL(", ").join(cells)))

    statement = pgsql.SQL(
        "INSERT INTO {table} ({columns}) VALUES {rows} RETURNING *"
    ).format(
        table=table,
        columns=_identifiers(columns),
        rows=pgsql.SQL(", ").join(tuples),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        return [_to_json(row) for row in cursor.fetchall()]


def _insert_defaults(connection: Connection, table: pgsql.Identifier) -> JsonObject:
    # VALUES needs at least one column; a row of nothing but defaults has none.
    statement = pgsql.SQL("INSERT INTO {table} DEFAULT VALUES RETURNING *")
    with connection.cursor() as cursor:
        cursor.execute(statement.format(table=table))
        stored: JsonObject = _to_json(cursor.fetchone())
        return stored


def _table_identifier(table: TableName) -> pgsql.Identifier:
    parts = table.split(".") if isinstance(table, str) else list(table)
    if not 1 <= len(parts) <= 2 or not all(
        isinstance(part, str) and part for part in parts
    ):
        raise ValueError(
            f"expected a table as 'name' or 'schema.name', found {table!r}"
        )
    return pgsql.Identifier(*parts)


def _identifiers(names: Sequence[str]) -> pgsql.Composed:
    return pgsql.SQL(", ").join(pgsql.Identifier(name) for name in names)


def _record_of(value: Any, operation: str) -> JsonObject:
    if not isinstance(value, Mapping):
        found = type(value).__name__
        raise TypeError(f"{operation} expects a record (an object), found {found}")
    if not all(isinstance(column, str) for column in value):
        raise TypeError(f"{operation} expects column names as text")
    return dict(value)


def _connect(state: JsonObject) -> Connection:
    configuration = state.get("configuration") or {}
    if not isinstance(configuration, Mapping):
        found = type(configuration).__name__
        raise TypeError(
            f"postgresql expects state['configuration'] an object, found {found}"
        )
    secrets = _secrets_of(configuration)
    try:
        connection = psycopg.connect(
            str(configuration.get("url") or ""),
            row_factory=dict_row,
            **_connection_options(configuration),
        )
    except psycopg.Error as error:
        problem = f"{type(error).__name__}: {error}"
        for secret in secrets:
            problem = problem.replace(secret, REDACTED)
        # Not chained: the original may quote a malformed URL, password and all.
        raise PostgresError(f"could not connect: {problem}") from None

    # Objects bound as values go in as jsonb, the natural column for them.
    connection.adapters.register_dumper(dict, JsonbDumper)
    connection.adapters.register_dumper(dict, JsonbBinaryDumper)
    return connection


def _connection_options(configuration: Mapping[str, Any]) -> dict[str, Any]:
    timeout_s = configuration.get("connect_timeout_s", DEFAULT_CONNECT_TIMEOUT_S)
    options: dict[str, Any] = {"connect_timeout": max(1, math.ceil(timeout_s))}
    if configuration.get("url"):
        if configuration.get("sslmode"):
            options["sslmode"] = configuration["sslmode"]
        return options

    missing = [
        key for key in ("host", "database", "user") if not configuration.get(key)
    ]
    if missing:
        raise ValueError(f"postgresql needs url, or {missing} in the credential")
    options.update(
        host=configuration["host"],
        port=configuration.get("port", DEFAULT_PORT),
        dbname=configuration["database"],
        user=configuration["user"],
    )
    for key in ("password", "sslmode"):
        if configuration.get(key) is not None:
            options[key] = configuration[key]
    return options


def _secrets_of(configuration: Mapping[str, Any]) -> list[str]:
    secrets = [str(configuration["password"])] if configuration.get("password") else []
    if configuration.get("url"):
        url = str(configuration["url"])
        secrets.append(url)
        with contextlib.suppress(ValueError):
            # A password in a URL may be percent-encoded; libpq decodes it.
            password = urlsplit(url).password
            if password:
                secrets.extend([password, unquote(password)])
    return sorted(secrets, key=len, reverse=True)


def _to_json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        # JSON has no NaN or infinity; a state holding one cannot be stored.
        return value if math.isfinite(value) else _non_finite_text(value)
    if isinstance(value, Decimal):
        return _decimal_to_json(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(key): _to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    return str(value)


def _non_finite_text(value: float) -> str:
    # PostgreSQL's own spelling, which numeric values (as Decimal) share.
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _decimal_to_json(value: Decimal) -> int | float | str:
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return int(value)
    # A float only where it gives back the same number; money and other exact
    # values keep every digit as text.
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)
