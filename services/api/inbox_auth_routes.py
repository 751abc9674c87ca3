"""HTTP routes for inbox credentials: API keys, Basic logins, signing secrets.

A new credential's secret is answered once and never again; the list shows
kinds, names and dates. Managing them needs the admin role. Gateways pick a
change up within moments, through the same notification as a deploy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter
from psycopg import Connection
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, Field

from services.api.access import CurrentUser, require_project
from services.api.audit import record_audit
from services.api.http_errors import NotFoundError
from services.api.schemas import ErrorBody
from shared.auth import Role
from shared.inbox_auth import (
    create_api_key,
    create_basic_credential,
    create_hmac_secret,
    revoke,
)
from shared.logging import get_logger

log = get_logger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API token."},
    403: {"model": ErrorBody, "description": "Inbox auth needs the admin role."},
    404: {"model": ErrorBody, "description": "No such project of yours."},
}


class NewInboxCredential(BaseModel):
    """An API key, a Basic login (``name`` is its user name), or a signing secret."""

    kind: Literal["api_key", "basic", "hmac"]
    name: str = Field(min_length=1, max_length=128, pattern=r"^[\w.@-]+$")
    """For ``basic``, the user name senders log in with."""


class IssuedCredentialOut(BaseModel):
    """A new inbox credential; ``secret`` is shown only in this answer."""

    id: UUID
    kind: str
    name: str
    secret: str


class InboxCredentialOut(BaseModel):
    """An inbox credential as listed: never its secret."""

    id: UUID
    kind: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


def inbox_auth_routes(pool: ConnectionPool[Connection[Any]]) -> APIRouter:
    """Create, list and revoke inbox credentials."""
    router = APIRouter()

    @router.post(
        "/api/projects/{name}/inbox-credentials",
        status_code=201,
        response_model=IssuedCredentialOut,
        responses=_ERRORS,
    )
    def create(
        name: str, new: NewInboxCredential, user: CurrentUser
    ) -> IssuedCredentialOut:
        """Create an inbox credential; its secret is in this answer only."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.ADMIN)
            with conn.transaction():
                if new.kind == "api_key":
                    issued = create_api_key(conn, project["id"], new.name)
                elif new.kind == "basic":
                    issued = create_basic_credential(conn, project["id"], new.name)
                else:
                    issued = create_hmac_secret(conn, project["id"], new.name)
                record_audit(
                    conn,
                    user.username,
                    "inbox_credential.created",
                    project["id"],
                    str(issued.id),
                    {"kind": new.kind, "name": new.name},
                )
        log.info(
            "inbox_credential.created",
            project=name,
            kind=new.kind,
            credential_id=str(issued.id),
            user=user.username,
        )
        return IssuedCredentialOut(
            id=issued.id, kind=new.kind, name=new.name, secret=issued.secret
        )

    @router.get(
        "/api/projects/{name}/inbox-credentials",
        response_model=list[InboxCredentialOut],
        responses=_ERRORS,
    )
    def list_credentials(name: str, user: CurrentUser) -> list[InboxCredentialOut]:
        """The project's inbox credentials, newest first, revoked ones included."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.ADMIN)
            rows = conn.execute(
                "SELECT id, kind, coalesce(username, name) AS name, created_at,"
                " revoked_at FROM inbox_credentials WHERE project_id = %s"
                " ORDER BY created_at DESC",
                (project["id"],),
            ).fetchall()
        return [InboxCredentialOut.model_validate(row) for row in rows]

    @router.delete(
        "/api/projects/{name}/inbox-credentials/{credential_id}",
        status_code=204,
        responses=_ERRORS,
    )
    def revoke_credential(name: str, credential_id: UUID, user: CurrentUser) -> None:
        """Revoke an inbox credential; senders using it get ``404`` from then on."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.ADMIN)
            owned = conn.execute(
                "SELECT 1 FROM inbox_credentials WHERE id = %s AND project_id = %s"
                " AND revoked_at IS NULL",
                (credential_id, project["id"]),
            ).fetchone()
            with conn.transaction():
                if owned is None or not revoke(conn, credential_id):
                    raise NotFoundError("inbox_credential", credential_id)
                record_audit(
                    conn,
                    user.username,
                    "inbox_credential.revoked",
                    project["id"],
                    str(credential_id),
                )
        log.info(
            "inbox_credential.revoked",
            project=name,
            credential_id=str(credential_id),
            user=user.username,
        )

    return router
