"""HTTP routes that manage who works on a project: collaborators, transfer, delete.

Admins add, change and remove collaborators; only the owner hands the project
to someone else or deletes it. The owner's own role changes only by transfer.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api.access import CurrentUser, require_project
from services.api.audit import record_audit
from services.api.collaborators import (
    add_collaborator,
    collaborator_role,
    list_collaborators,
    remove_collaborator,
    transfer_ownership,
)
from services.api.http_errors import NotFoundError, api_error
from services.api.project_deletion import delete_project
from services.api.schemas import CollaboratorIn, CollaboratorOut, ErrorBody, TransferIn
from shared.auth import Role, User, find_user
from shared.logging import get_logger
from shared.vault import VaultClient, VaultUnavailableError

log = get_logger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API token."},
    403: {"model": ErrorBody, "description": "Your role in the project is too low."},
    404: {"model": ErrorBody, "description": "No such project of yours, or user."},
    409: {"model": ErrorBody, "description": "The owner changes only by transfer."},
}


def _require_user(conn: Connection[Any], username: str) -> User:
    user = find_user(conn, username)
    if user is None:
        raise NotFoundError("user", username)
    return user


def collaborator_routes(
    pool: ConnectionPool[Connection[Any]], vault: VaultClient
) -> APIRouter:
    """Collaborator, transfer and delete routes; deletes also remove credentials."""
    router = APIRouter()

    def collaborators_of(
        conn: Connection[Any], project_id: UUID
    ) -> list[CollaboratorOut]:
        return [
            CollaboratorOut.model_validate(row)
            for row in list_collaborators(conn, project_id)
        ]

    def refuse_owner_change(
        conn: Connection[Any], project: dict[str, Any], target: User
    ) -> None:
        if collaborator_role(conn, project["id"], target.id) is Role.OWNER:
            raise api_error(
                409,
                "owner_role",
                f"{target.username} owns project {project['name']}; the owner"
                " changes only by transfer",
                project=project["name"],
                username=target.username,
            )

    @router.get(
        "/api/projects/{name}/collaborators",
        response_model=list[CollaboratorOut],
        responses=_ERRORS,
    )
    def get_collaborators(name: str, user: CurrentUser) -> list[CollaboratorOut]:
        """Who works on the project, in which role (admins and the owner)."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.ADMIN)
            return collaborators_of(conn, project["id"])

    @router.put(
        "/api/projects/{name}/collaborators/{username}",
        response_model=list[CollaboratorOut],
        responses=_ERRORS,
    )
    def put_collaborator(
        name: str, username: str, body: CollaboratorIn, user: CurrentUser
    ) -> list[CollaboratorOut]:
        """Add a collaborator or change their role; answers every collaborator."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.ADMIN)
            target = _require_user(conn, username)
            refuse_owner_change(conn, project, target)
            with conn.transaction():
                previous = collaborator_role(conn, project["id"], target.id)
                add_collaborator(conn, project["id"], target.id, Role(body.role))
                record_audit(
                    conn,
                    user.username,
                    "collaborator.added"
                    if previous is None
                    else "collaborator.changed",
                    project["id"],
                    username,
                    {"role": body.role, "previous_role": previous},
                )
            log.info(
                "collaborator.set",
                project=name,
                username=username,
                role=body.role,
                by=user.username,
            )
            return collaborators_of(conn, project["id"])

    @router.delete(
        "/api/projects/{name}/collaborators/{username}",
        status_code=204,
        response_class=Response,
        responses=_ERRORS,
    )
    def delete_collaborator(name: str, username: str, user: CurrentUser) -> None:
        """Take a collaborator's role away."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.ADMIN)
            target = _require_user(conn, username)
            refuse_owner_change(conn, project, target)
            with conn.transaction():
                if not remove_collaborator(conn, project["id"], target.id):
                    raise NotFoundError("collaborator", username)
                record_audit(
                    conn, user.username, "collaborator.removed", project["id"], username
                )
        log.info(
            "collaborator.removed", project=name, username=username, by=user.username
        )

    @router.post(
        "/api/projects/{name}/transfer",
        response_model=list[CollaboratorOut],
        responses=_ERRORS,
    )
    def transfer(
        name: str, body: TransferIn, user: CurrentUser
    ) -> list[CollaboratorOut]:
        """Hand the project to another user (owner only); you stay on as an admin."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.OWNER)
            target = _require_user(conn, body.username)
            with conn.transaction():
                transfer_ownership(conn, project["id"], target.id)
                record_audit(
                    conn,
                    user.username,
                    "project.transferred",
                    project["id"],
                    target.username,
                )
            log.info(
                "project.transferred",
                project=name,
                owner=target.username,
                by=user.username,
            )
            return collaborators_of(conn, project["id"])

    @router.delete(
        "/api/projects/{name}",
        status_code=204,
        response_class=Response,
        responses={
            **_ERRORS,
            503: {"model": ErrorBody, "description": "Vault is not reachable."},
        },
    )
    def delete(name: str, user: CurrentUser) -> None:
        """Delete the project (owner only), its history and its credentials."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.OWNER)
            try:
                delete_project(conn, vault, project["id"], user.username, name)
            except VaultUnavailableError as exc:
                raise api_error(
                    503,
                    "vault_unavailable",
                    str(exc),
                    headers={"Retry-After": "5"},
                    project=name,
                ) from exc
        log.info(
            "project.deleted",
            project_id=str(project["id"]),
            project=name,
            by=user.username,
        )

    return router
