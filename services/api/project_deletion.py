"""Deletes a project with everything it owns: history, credentials, pending runs.

Messages or run events still in flight on Kafka when the project goes may
still be recorded; they belong to no project and only site admins see them.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection

from services.api.audit import record_audit
from shared.db.connection import DEPLOY_CHANNEL
from shared.vault import VaultClient

# Tables keyed by project without a foreign key (the history is written by
# the recorder, which must not wait on the projects table), in an order that
# reads each row before the row it is found through is gone.
_OWNED_ROWS = (
    "DELETE FROM run_claims WHERE run_id IN"
    " (SELECT id FROM runs WHERE project_id = %(project)s)",
    "DELETE FROM run_aborts WHERE project_id = %(project)s",
    "DELETE FROM run_gate WHERE job_id IN"
    " (SELECT id FROM jobs WHERE project_id = %(project)s)",
    "DELETE FROM scheduled_runs WHERE request->>'project_id' = %(project)s::text",
    "DELETE FROM job_states WHERE project_id = %(project)s",
    "DELETE FROM runs WHERE project_id = %(project)s",
    "DELETE FROM messages WHERE project_id = %(project)s",
    "DELETE FROM dead_letters WHERE project_id = %(project)s",
    "DELETE FROM deployments WHERE project_id = %(project)s",
)


def delete_project(
    conn: Connection[Any], vault: VaultClient, project_id: UUID, actor: str, name: str
) -> None:
    """Delete a project, its history and its credentials in Vault.

    The audit log keeps the project's events and gains one naming ``actor``.

    Running services stop matching its messages at their next catalog reload.
    Raises ``VaultUnavailableError``, with the project kept, if Vault fails.
    """
    with conn.transaction():
        conn.execute("SELECT id FROM projects WHERE id = %s FOR UPDATE", (project_id,))
        credentials = [
            row["name"]
            for row in conn.execute(
                "SELECT name FROM credentials WHERE project_id = %s", (project_id,)
            )
        ]
        for statement in _OWNED_ROWS:
            conn.execute(statement, {"project": project_id})
        conn.execute("DELETE FROM projects WHERE id = %s", (project_id,))
        # The deployment counter is what the gateway and dispatcher poll.
        conn.execute("INSERT INTO deployments (project_id, document) VALUES (NULL, '')")
        conn.execute("SELECT pg_notify(%s, %s)", (DEPLOY_CHANNEL, str(project_id)))
        record_audit(
            conn,
            actor,
            "project.deleted",
            project_id,
            name,
            {"credentials": credentials},
        )
        # Last, so that a Vault outage rolls everything back and the delete
        # can simply be asked for again.
        for name in credentials:
            vault.delete_credential(project_id, name)
