"""Who collaborates on a project, in which role: the ``project_members`` table."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection

from services.api.queries import Row
from shared.auth import Role


def add_collaborator(
    conn: Connection[Any], project_id: UUID, user_id: UUID, role: Role
) -> None:
    """Give a user a role in a project, replacing any role they had."""
    conn.execute(
        "INSERT INTO project_members (project_id, user_id, role) VALUES (%s, %s, %s)"
        " ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        (project_id, user_id, role.value),
    )


def list_collaborators(conn: Connection[Any], project_id: UUID) -> list[Row]:
    """A project's collaborators, owner first, then by name."""
    return conn.execute(
        "SELECT u.username, m.role, m.added_at FROM project_members m"
        " JOIN users u ON u.id = m.user_id WHERE m.project_id = %s"
        " ORDER BY m.role = 'owner' DESC, u.username",
        (project_id,),
    ).fetchall()


def collaborator_role(
    conn: Connection[Any], project_id: UUID, user_id: UUID
) -> Role | None:
    """A user's own role in a project (site admins have none of their own)."""
    row = conn.execute(
        "SELECT role FROM project_members WHERE project_id = %s AND user_id = %s",
        (project_id, user_id),
    ).fetchone()
    return Role(row["role"]) if row else None


def remove_collaborator(conn: Connection[Any], project_id: UUID, user_id: UUID) -> bool:
    """Take a user's role in a project away; whether they had one."""
    row = conn.execute(
        "DELETE FROM project_members WHERE project_id = %s AND user_id = %s"
        " RETURNING user_id",
        (project_id, user_id),
    ).fetchone()
    return row is not None


def transfer_ownership(conn: Connection[Any], project_id: UUID, user_id: UUID) -> None:
    """Make a user the project's owner; the previous owner stays on as an admin."""
    with conn.transaction():
        conn.execute(
            "UPDATE project_members SET role = %s"
            " WHERE project_id = %s AND role = %s AND user_id <> %s",
            (Role.ADMIN.value, project_id, Role.OWNER.value, user_id),
        )
        add_collaborator(conn, project_id, user_id, Role.OWNER)
