"""Reads of the history tables for the API."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection

Row = dict[str, Any]

_JOB_STATES = """
SELECT message_id, job_id, job_name, status AS state, run_id
FROM job_states WHERE message_id = ANY(%s) ORDER BY job_name
"""


def find_project(conn: Connection[Any], name: str) -> Row | None:
    return conn.execute(
        "SELECT id, name, inbox_id, revision FROM projects WHERE name = %s", (name,)
    ).fetchone()


def list_projects(conn: Connection[Any]) -> list[Row]:
    return conn.execute(
        "SELECT id, name, inbox_id, revision FROM projects ORDER BY name"
    ).fetchall()


def project_jobs(conn: Connection[Any], project_id: UUID) -> list[Row]:
    return conn.execute(
        "SELECT id, name, trigger_name AS trigger, adaptor, credential, enabled,"
        " version"
        " FROM jobs WHERE project_id = %s ORDER BY name",
        (project_id,),
    ).fetchall()


def project_triggers(conn: Connection[Any], project_id: UUID) -> list[Row]:
    return conn.execute(
        "SELECT id, name, kind, criteria, exclusion, cron, upstream_job"
        " FROM triggers WHERE project_id = %s ORDER BY name",
        (project_id,),
    ).fetchall()


def message_page(
    conn: Connection[Any], project_id: UUID, limit: int, before: UUID | None
) -> list[Row]:
    """Messages newest first, starting after the message ``before`` if given."""
    if before is None:
        rows = conn.execute(
            "SELECT id, received_at, content_type FROM messages WHERE project_id = %s"
            " ORDER BY received_at DESC, id DESC LIMIT %s",
            (project_id, limit),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT id, received_at, content_type FROM messages WHERE project_id = %s"
            " AND (received_at, id) <"
            " (SELECT received_at, id FROM messages WHERE id = %s)"
            " ORDER BY received_at DESC, id DESC LIMIT %s",
            (project_id, before, limit),
        ).fetchall()
    states = job_states(conn, [row["id"] for row in rows])
    return [{**row, "job_states": states.get(row["id"], [])} for row in rows]


def job_states(conn: Connection[Any], message_ids: list[UUID]) -> dict[UUID, list[Row]]:
    """The job states of each message, by message id."""
    if not message_ids:
        return {}
    grouped: dict[UUID, list[Row]] = {}
    for row in conn.execute(_JOB_STATES, (message_ids,)).fetchall():
        grouped.setdefault(row.pop("message_id"), []).append(row)
    return grouped


def find_message(conn: Connection[Any], message_id: UUID) -> Row | None:
    return conn.execute(
        "SELECT id, project_id, received_at, content_type, headers, body, raw_body"
        " FROM messages WHERE id = %s",
        (message_id,),
    ).fetchone()


def message_runs(conn: Connection[Any], message_id: UUID) -> list[Row]:
    return conn.execute(
        "SELECT id, job_id, job_name, trigger_kind, status, exit_code, started_at,"
        " finished_at"
        " FROM runs WHERE message_id = %s ORDER BY started_at NULLS LAST, id",
        (message_id,),
    ).fetchall()


def find_run(conn: Connection[Any], run_id: UUID) -> Row | None:
    return conn.execute(
        "SELECT id, project_id, job_id, job_name, trigger_kind, message_id, status,"
        " exit_code,"
        " started_at, finished_at, runner, adaptor, adaptor_version, error,"
        " input_state, final_state, logs"
        " FROM runs WHERE id = %s",
        (run_id,),
    ).fetchone()
