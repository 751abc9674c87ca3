"""HTTP routes for inbox credentials: API keys, Basic logins, signing secrets.

A new credential's secret is answered once and never again; the list shows
kinds, names and dates. Signing secrets are sealed by Vault before they are
stored, so creating one needs Vault. Managing them needs the admin role.
Gateways pick a change up within moments, through the same notification as a
deploy.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter
from psycopg import Connection
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, Field

from services.api.access import CurrentUser, require_project
from services.api.audit import record_audit
from services.api.http_errors import NotFoundError, api_error
from services.api.schemas import ErrorBody
from shared.auth import Role
from shared.inbox_auth import (
    IssuedInboxCredential,
    create_api_key,
    create_basic_credential,
    create_hmac_secret,
    revoke,
    seal_stored_secrets,
)
from shared.logging import get_logger
from shared.vault import SealRefusedError, VaultClient, VaultUnavailableError

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


def inbox_auth_routes(
    pool: ConnectionPool[Connection[Any]], vault: VaultClient
) -> APIRouter:
    """Create, list and revoke inbox credentials; ``vault`` seals signing secrets."""
    router = APIRouter()

    @router.post(
        "/api/projects/{name}/inbox-credentials",
        status_code=201,
        response_model=IssuedCredentialOut,
        responses={
            **_ERRORS,
            503: {
                "model": ErrorBody,
                "description": "Vault did not seal a new signing secret.",
            },
        },
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
                    issued = _sealed_hmac_secret(conn, project["id"], new.name, vault)
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


def _sealed_hmac_secret(
    conn: Connection[Any], project_id: UUID, name: str, vault: VaultClient
) -> IssuedInboxCredential:
    try:
        return create_hmac_secret(conn, project_id, name, vault)
    except VaultUnavailableError as exc:
        raise api_error(
            503, "vault_unavailable", str(exc), headers={"Retry-After": "5"}
        ) from exc
    except SealRefusedError as exc:
        raise api_error(
            503,
            "vault_refused",
            f"{exc}; the API needs the transit key and leave to encrypt with it",
        ) from exc


def seal_stored_secrets_in_background(
    pool: ConnectionPool[Connection[Any]], vault: VaultClient, retry_s: float = 60.0
) -> threading.Thread:
    """Seal the signing secrets stored before sealing existed, trying again
    every ``retry_s`` while Vault or PostgreSQL is away. Gateways read both
    forms meanwhile."""

    def seal() -> None:
        while True:
            try:
                with pool.connection() as conn:
                    sealed = seal_stored_secrets(conn, vault)
            except Exception as exc:  # whatever it is, a later try may pass
                log.warning(
                    "inbox_auth.sealing_deferred", error=str(exc), retry_s=retry_s
                )
                time.sleep(retry_s)
                continue
            if sealed:
                log.info("inbox_auth.secrets_sealed", count=sealed)
            return

    thread = threading.Thread(target=seal, name="seal-secrets", daemon=True)
    thread.start()
    return thread
