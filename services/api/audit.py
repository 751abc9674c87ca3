"""The audit log: who deployed, changed credentials or access, or started runs.

An event is written in the same transaction as the change it records, so the
log holds exactly the changes that happened. Its details name credentials and
fields but never hold a credential's value.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from services.api.queries import Row


def record_audit(
    conn: Connection[Any],
    actor: str,
    action: str,
    project_id: UUID | None,
    subject: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one event to the audit log.

    Args:
        conn: The connection, inside the transaction of the change recorded.
        actor: The username of whoever made the change.
        action: A stable event name, such as ``credential.deleted``.
        project_id: The project changed; None for users and tokens.
        subject: What was changed: a credential, user, token or run.
        details: Anything else worth knowing, never a credential value.
    """
    conn.execute(
        "INSERT INTO audit_events (project_id, actor, action, subject, details)"
        " VALUES (%s, %s, %s, %s, %s)",
        (project_id, actor, action, subject, Jsonb(details or {})),
    )


def audit_page(
    conn: Connection[Any], project_id: UUID | None, limit: int, before: int | None
) -> list[Row]:
    """Events newest first, older than event ``before``; all projects' for None."""
    return conn.execute(
        "SELECT id, project_id, actor, action, subject, details, at"
        " FROM audit_events"
        " WHERE (%(project)s::uuid IS NULL OR project_id = %(project)s)"
        " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
        " ORDER BY id DESC LIMIT %(limit)s",
        {"project": project_id, "before": before, "limit": limit},
    ).fetchall()
