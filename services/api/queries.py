"""Reads of deployed projects and of the history tables for the API."""

from __future__ import annotations

from datetime import datetime
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


def list_projects(conn: Connection[Any], member: UUID | None) -> list[Row]:
    """Every project, or only those where the user ``member`` has a role."""
    return conn.execute(
        "SELECT id, name, inbox_id, revision FROM projects p"
        " WHERE %(member)s::uuid IS NULL OR EXISTS (SELECT 1 FROM project_members m"
        " WHERE m.project_id = p.id AND m.user_id = %(member)s)"
        " ORDER BY name",
        {"member": member},
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
        "SELECT id, job_id, job_name, trigger_kind, origin, attempt, status,"
        " exit_code, started_at, finished_at"
        " FROM runs WHERE message_id = %s ORDER BY started_at NULLS LAST, id",
        (message_id,),
    ).fetchall()


def find_run(conn: Connection[Any], run_id: UUID) -> Row | None:
    """A run with the request to abort it under ``abort``, if there is one."""
    return conn.execute(
        "SELECT r.id, r.project_id, r.job_id, r.job_name, r.trigger_kind, r.origin,"
        " r.attempt, r.message_id, r.status, r.exit_code,"
        " r.started_at, r.finished_at, r.runner, r.adaptor, r.adaptor_version,"
        " r.error, r.input_state, r.final_state, r.logs,"
        " CASE WHEN a.run_id IS NOT NULL THEN json_build_object("
        "   'requested_by', a.requested_by, 'requested_at', a.requested_at)"
        " END AS abort"
        " FROM runs r LEFT JOIN run_aborts a ON a.run_id = r.id WHERE r.id = %s",
        (run_id,),
    ).fetchone()


_RUN_TO_RERUN = """
SELECT r.id, r.project_id, r.job_id, r.message_id, r.origin, r.chain_depth,
       r.input_state, r.trigger_id, r.trigger_kind, t.name AS trigger_name
FROM runs r LEFT JOIN triggers t ON t.id = r.trigger_id
"""

_JOB_TO_RUN = """
SELECT j.id, j.project_id, j.name, j.version, j.adaptor, j.expression,
       j.credential, j.enabled, t.id AS trigger_id, t.name AS trigger_name,
       t.kind AS trigger_kind
FROM jobs j LEFT JOIN triggers t
    ON t.project_id = j.project_id AND t.name = j.trigger_name
"""


def run_to_rerun(conn: Connection[Any], run_id: UUID) -> Row | None:
    """What a re-run of a run needs of it, with its trigger's name if deployed."""
    return conn.execute(_RUN_TO_RERUN + " WHERE r.id = %s", (run_id,)).fetchone()


def history_runs(
    conn: Connection[Any],
    project_id: UUID,
    job_name: str | None,
    statuses: list[str] | None,
    since: datetime,
    until: datetime,
    limit: int,
) -> list[Row]:
    """The activity history filtered as an operator asked, newest first."""
    return conn.execute(
        _RUN_TO_RERUN + " WHERE r.project_id = %(project)s"
        " AND r.created_at >= %(since)s AND r.created_at < %(until)s"
        " AND (%(job)s::text IS NULL OR r.job_name = %(job)s)"
        " AND (%(statuses)s::text[] IS NULL OR r.status = ANY(%(statuses)s))"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT %(limit)s",
        {
            "project": project_id,
            "since": since,
            "until": until,
            "job": job_name,
            "statuses": statuses,
            "limit": limit,
        },
    ).fetchall()


def job_to_run(conn: Connection[Any], job_id: UUID) -> Row | None:
    """A deployed job as a runner needs it, with its trigger."""
    return conn.execute(_JOB_TO_RUN + " WHERE j.id = %s", (job_id,)).fetchone()


def job_named(conn: Connection[Any], project_id: UUID, name: str) -> Row | None:
    """A project's deployed job by name, as a runner needs it, with its trigger."""
    return conn.execute(
        _JOB_TO_RUN + " WHERE j.project_id = %s AND j.name = %s", (project_id, name)
    ).fetchone()


def messages_to_reprocess(
    conn: Connection[Any],
    project_id: UUID,
    ids: list[UUID] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[Row]:
    """Stored messages of a project as the filter names them, oldest first.

    The newest ``limit`` that match are taken.
    """
    rows = conn.execute(
        "SELECT id, project_id, received_at, content_type, headers, body, raw_body"
        " FROM messages WHERE project_id = %(project)s"
        " AND (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s))"
        " AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s)"
        " ORDER BY received_at DESC, id DESC LIMIT %(limit)s",
        {
            "project": project_id,
            "ids": ids,
            "since": since,
            "until": until,
            "limit": limit,
        },
    ).fetchall()
    return rows[::-1]


def catalog_revision(conn: Connection[Any]) -> int:
    """The latest deployment revision, as the gateway stamps it on messages."""
    row = conn.execute("SELECT coalesce(max(id), 0) AS r FROM deployments").fetchone()
    return int(row["r"]) if row else 0
