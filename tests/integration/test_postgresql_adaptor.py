"""The ``postgresql`` adaptor against the session's real PostgreSQL server."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from adaptors.common import data_value
from adaptors.postgresql import (
    ROWS_PER_STATEMENT,
    PostgresError,
    insert,
    insert_many,
    sql,
    upsert,
)
from services.runner.engine import ProcessEngine
from shared.events import JobSpec
from shared.model import ExitCode, JsonObject

pytestmark = pytest.mark.integration

SCHEMA = f"adaptor_{uuid.uuid4().hex[:8]}"
ODD_TABLE = 'we"ird; DROP TABLE people; --'
ODD_COLUMN = 'Full "Name"'
INJECTION = "x'); DROP TABLE t; --"


@pytest.fixture(scope="module")
def admin(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection for setting up and checking, outside the adaptor."""
    with psycopg.connect(
        postgres_url, autocommit=True, row_factory=dict_row
    ) as connection:
        connection.execute(
            pgsql.SQL("CREATE SCHEMA {}").format(pgsql.Identifier(SCHEMA))
        )
        connection.execute(f"SET search_path TO {SCHEMA}")
        yield connection
        connection.execute(
            pgsql.SQL("DROP SCHEMA {} CASCADE").format(pgsql.Identifier(SCHEMA))
        )


@pytest.fixture
def state(postgres_url: str, admin: psycopg.Connection[Any]) -> JsonObject:
    """A fresh ``people`` table, and a state whose credential reaches it."""
    admin.execute("DROP TABLE IF EXISTS people, t")
    admin.execute(
        "CREATE TABLE people ("
        " id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE,"
        " age int, tags text[], profile jsonb, joined date DEFAULT '2026-01-01')"
    )
    admin.execute("CREATE TABLE t (v text)")
    # The schema is not on the adaptor's search path: names say where to go.
    return {
        "configuration": {"url": postgres_url},
        "data": {"name": "Ada", "email": "ada@example.org", "age": 36},
        "references": [],
    }


def rows(admin: psycopg.Connection[Any], query: str) -> list[dict[str, Any]]:
    return admin.execute(query).fetchall()


def people(name: str = "people") -> str:
    return f"{SCHEMA}.{name}"


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_sql_binds_positional_params_and_gives_rows_as_objects(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("INSERT INTO people (name, age) VALUES ('Ada', 36), ('Bo', 12)")

    result = sql(f"SELECT name, age FROM {people()} WHERE age > %s", [18])(state)

    assert result["data"] == [{"name": "Ada", "age": 36}]
    assert result["references"] == []
    assert result["configuration"] == state["configuration"]


def test_sql_binds_named_params_that_are_functions_of_state(
    state: JsonObject,
) -> None:
    result = sql(
        "SELECT %(name)s::text AS name, %(age)s::int + 1 AS next_age",
        {"name": data_value("$.name"), "age": lambda state: state["data"]["age"]},
    )(state)

    assert result["data"] == [{"name": "Ada", "next_age": 37}]


def test_sql_takes_the_query_as_a_function_of_state(state: JsonObject) -> None:
    result = sql(lambda state: "SELECT 1 AS one")(state)

    assert result["data"] == [{"one": 1}]


def test_sql_stores_an_injection_attempt_verbatim(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    sql(f"INSERT INTO {SCHEMA}.t (v) VALUES (%s)", [INJECTION])(state)

    assert rows(admin, "SELECT v FROM t") == [{"v": INJECTION}]


def test_sql_without_rows_gives_the_rowcount(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("INSERT INTO people (name) VALUES ('Ada'), ('Bo'), ('Cy')")

    result = sql(f"UPDATE {people()} SET age = %s WHERE name <> %s", [1, "Cy"])(state)

    assert result["data"] == {"rowcount": 2}


def test_sql_that_fails_leaves_nothing_behind(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    query = f"INSERT INTO {SCHEMA}.t (v) VALUES ('kept?'); SELECT 1 / 0"

    with pytest.raises(psycopg.errors.DivisionByZero):
        sql(query)(state)

    assert rows(admin, "SELECT v FROM t") == []


def test_sql_refuses_a_query_that_is_not_text(state: JsonObject) -> None:
    with pytest.raises(TypeError, match="sql expects the query as text, found int"):
        sql(lambda state: 1)(state)


def test_an_object_bound_as_a_value_goes_in_as_jsonb(state: JsonObject) -> None:
    result = sql("SELECT %s -> 'a' AS a", [{"a": [1, "two"]}])(state)

    assert result["data"] == [{"a": [1, "two"]}]


def test_insert_stores_a_row_and_gives_it_back_with_defaults(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    result = insert(
        people(),
        {
            "name": data_value("$.name"),
            "tags": ["a", "b"],
            "profile": {"likes": ["maths"]},
        },
    )(state)

    assert result["data"] == {
        "id": 1,
        "name": "Ada",
        "email": None,
        "age": None,
        "tags": ["a", "b"],
        "profile": {"likes": ["maths"]},
        "joined": "2026-01-01",
    }
    assert rows(admin, "SELECT name FROM people") == [{"name": "Ada"}]


def test_insert_takes_the_record_as_a_function_of_state(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    insert(people(), lambda state: state["data"])(state)

    assert rows(admin, "SELECT name, email, age FROM people") == [state["data"]]


def test_insert_of_an_empty_record_stores_the_defaults(state: JsonObject) -> None:
    result = insert(f"{SCHEMA}.t", {})(state)

    assert result["data"] == {"v": None}


def test_insert_refuses_a_record_that_is_not_an_object(state: JsonObject) -> None:
    with pytest.raises(TypeError, match="insert expects a record"):
        insert(people(), ["Ada"])(state)


def test_insert_many_stores_rows_in_order_with_defaults_for_missing_columns(
    state: JsonObject,
) -> None:
    result = insert_many(
        people(),
        [
            {"name": "Ada", "age": 36},
            {"name": "Bo", "email": "bo@example.org"},
            {"name": data_value("$.name"), "joined": "2026-03-01"},
        ],
    )(state)

    assert [
        (row["name"], row["age"], row["email"], row["joined"]) for row in result["data"]
    ] == [
        ("Ada", 36, None, "2026-01-01"),
        ("Bo", None, "bo@example.org", "2026-01-01"),
        ("Ada", None, None, "2026-03-01"),
    ]


def test_insert_many_of_more_rows_than_one_statement_holds_stores_them_all(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    records = [{"name": f"p{n}"} for n in range(ROWS_PER_STATEMENT * 2 + 5)]

    result = insert_many(people(), lambda state: records)(state)

    assert len(result["data"]) == len(records)
    assert rows(admin, "SELECT count(*) AS n FROM people") == [{"n": len(records)}]


def test_insert_many_stores_nothing_when_one_row_fails(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    records: list[dict[str, str | None]] = [
        {"name": f"p{n}"} for n in range(ROWS_PER_STATEMENT + 1)
    ]
    records.append({"name": None})

    with pytest.raises(psycopg.errors.NotNullViolation):
        insert_many(people(), records)(state)

    assert rows(admin, "SELECT count(*) AS n FROM people") == [{"n": 0}]


def test_insert_many_of_nothing_stores_nothing(state: JsonObject) -> None:
    assert insert_many(people(), [])(state)["data"] == []


def test_insert_many_of_empty_records_stores_a_row_of_defaults_each(
    state: JsonObject,
) -> None:
    assert insert_many(f"{SCHEMA}.t", [{}, {}])(state)["data"] == [
        {"v": None},
        {"v": None},
    ]


def test_upsert_inserts_and_then_updates_the_same_row(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    first = upsert(people(), "email", {"email": "ada@example.org", "name": "Ada"})(
        state
    )
    second = upsert(
        people(), ["email"], {"email": "ada@example.org", "name": "Ada L.", "age": 37}
    )(state)

    assert first["data"]["name"] == "Ada"
    assert second["data"]["id"] == first["data"]["id"]
    assert (second["data"]["name"], second["data"]["age"]) == ("Ada L.", 37)
    assert rows(admin, "SELECT name, age FROM people") == [
        {"name": "Ada L.", "age": 37}
    ]


def test_upsert_on_several_columns_and_only_those_gives_the_row(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    admin.execute(
        "CREATE TABLE visits (person int, day date, PRIMARY KEY (person, day))"
    )
    visit = {"person": 1, "day": "2026-03-01"}

    upsert(f"{SCHEMA}.visits", ["person", "day"], visit)(state)
    again = upsert(f"{SCHEMA}.visits", ["person", "day"], visit)(state)

    assert again["data"] == visit
    assert rows(admin, "SELECT count(*) AS n FROM visits") == [{"n": 1}]


def test_upsert_needs_the_conflict_columns_in_the_record(state: JsonObject) -> None:
    with pytest.raises(ValueError, match=r"conflict columns \['email'\]"):
        upsert(people(), "email", {"name": "Ada"})(state)


def test_upsert_refuses_no_conflict_columns() -> None:
    with pytest.raises(ValueError, match="upsert expects conflict column names"):
        upsert(people(), [], {"name": "Ada"})


def test_odd_table_and_column_names_are_quoted_safely(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    admin.execute(
        pgsql.SQL("CREATE TABLE {} ({} text PRIMARY KEY, {} int)").format(
            pgsql.Identifier(ODD_TABLE),
            pgsql.Identifier(ODD_COLUMN),
            pgsql.Identifier("order"),
        )
    )
    table = [SCHEMA, ODD_TABLE]

    insert(table, {ODD_COLUMN: INJECTION, "order": 1})(state)
    insert_many(table, [{ODD_COLUMN: "b", "order": 2}])(state)
    result = upsert(table, ODD_COLUMN, {ODD_COLUMN: INJECTION, "order": 3})(state)

    assert result["data"] == {ODD_COLUMN: INJECTION, "order": 3}
    assert rows(admin, "SELECT count(*) AS n FROM people") == [{"n": 0}]
    stored = admin.execute(
        pgsql.SQL("SELECT * FROM {} ORDER BY 2").format(pgsql.Identifier(ODD_TABLE))
    ).fetchall()
    assert stored == [
        {ODD_COLUMN: "b", "order": 2},
        {ODD_COLUMN: INJECTION, "order": 3},
    ]


def test_a_name_without_a_schema_is_found_on_the_search_path(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("CREATE TABLE IF NOT EXISTS public.plain (v text)")
    admin.execute("TRUNCATE public.plain")

    insert("plain", {"v": "in public"})(state)

    assert rows(admin, "SELECT v FROM public.plain") == [{"v": "in public"}]
    admin.execute("DROP TABLE public.plain")


@pytest.mark.parametrize("table", ["a.b.c", "", "schema.", ["a", "b", "c"]])
def test_a_table_name_of_the_wrong_shape_is_refused(table: Any) -> None:
    with pytest.raises(
        ValueError, match=r"expected a table as 'name' or 'schema\.name'"
    ):
        insert(table, {"v": 1})


def test_results_are_converted_to_json(state: JsonObject) -> None:
    query = """
        SELECT
            42::numeric AS whole,
            1.5::numeric AS half,
            0.1::numeric AS tenth,
            12345678901234567890.123456789::numeric AS exact,
            'NaN'::numeric AS not_a_number,
            'Infinity'::float8 AS infinite,
            2.5::float8 AS float,
            true AS yes,
            NULL::text AS nothing,
            '2026-03-01 12:30:00+00'::timestamptz AS at,
            '2026-03-01 12:30:00'::timestamp AS local_at,
            '2026-03-01'::date AS day,
            '12:30:05'::time AS clock,
            '1 hour 30 seconds'::interval AS wait,
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id,
            '\\x00ff10'::bytea AS raw,
            '{"a": [1, 2.5]}'::jsonb AS doc,
            ARRAY[1.5::numeric, 2::numeric] AS amounts,
            ARRAY['2026-03-01'::date] AS days
    """

    result = sql("SET TIME ZONE 'UTC'; " + query)(state)

    assert result["data"] == [
        {
            "whole": 42,
            "half": 1.5,
            "tenth": 0.1,
            "exact": "12345678901234567890.123456789",
            "not_a_number": "NaN",
            "infinite": "Infinity",
            "float": 2.5,
            "yes": True,
            "nothing": None,
            "at": "2026-03-01T12:30:00+00:00",
            "local_at": "2026-03-01T12:30:00",
            "day": "2026-03-01",
            "clock": "12:30:05",
            "wait": 3630.0,
            "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "raw": base64.b64encode(b"\x00\xff\x10").decode(),
            "doc": {"a": [1, 2.5]},
            "amounts": [1.5, 2],
            "days": ["2026-03-01"],
        }
    ]
    json.dumps(result, allow_nan=False)


def test_a_credential_of_host_port_database_user_reaches_the_database(
    postgres_url: str,
) -> None:
    parts = conninfo_to_dict(postgres_url)
    configuration = {
        "host": parts["host"],
        "port": int(str(parts["port"])),
        "database": parts["dbname"],
        "user": parts["user"],
        "password": "unused-with-trust-auth",
        "sslmode": "disable",
    }

    result = sql("SELECT current_database() AS db")({"configuration": configuration})

    assert result["data"] == [{"db": parts["dbname"]}]


def test_a_credential_missing_keys_is_refused() -> None:
    with pytest.raises(ValueError, match=r"needs url, or \['database', 'user'\]"):
        sql("SELECT 1")({"configuration": {"host": "127.0.0.1"}})


@pytest.mark.parametrize(
    "configuration",
    [
        {"url": "postgresql://ada:s3cret-password@127.0.0.1:{port}/db"},
        {"url": "postgresql://ada:s3cret-password@127.0.0.1:not-a-port/db"},
        {
            "host": "127.0.0.1",
            "port": "{port}",
            "database": "db",
            "user": "ada",
            "password": "s3cret-password",
        },
    ],
    ids=["url", "malformed-url", "keys"],
)
def test_a_failed_connection_never_shows_the_password(
    configuration: dict[str, str],
) -> None:
    port = str(unused_port())
    filled = {
        key: value.replace("{port}", port) for key, value in configuration.items()
    }

    with pytest.raises(PostgresError, match="could not connect") as raised:
        sql("SELECT 1")({"configuration": filled})

    assert "s3cret-password" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_a_job_using_the_postgresql_adaptor_runs_in_the_engine(
    state: JsonObject, admin: psycopg.Connection[Any]
) -> None:
    expression = (
        f"insert('{SCHEMA}.people', data_value('$'))\n"
        f"sql('SELECT name FROM {SCHEMA}.people WHERE email = %s',"
        " [data_value('$.email')])\n"
    )
    job = JobSpec(
        id=uuid.uuid4(),
        name="postgresql-job",
        version="1",
        adaptor="postgresql",
        expression=expression,
    )

    credential = state.pop("configuration")
    with ProcessEngine(workers=1) as engine:
        execution = engine.execute(job, state, 30, credential)

    assert execution.exit_code == ExitCode.SUCCESS, execution.error
    assert execution.final_state is not None
    assert execution.final_state["data"] == [{"name": "Ada"}]
    assert rows(admin, "SELECT count(*) AS n FROM people") == [{"n": 1}]
