"""HTTP routes for a project's credentials: their names and fields, and new values.

Values go to Vault and are never answered; PostgreSQL keeps names and field
names only. Managing credentials needs the admin role.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api.access import CurrentUser, require_project
from services.api.http_errors import api_error
from services.api.schemas import CredentialOut, ErrorBody
from shared.auth import Role
from shared.logging import get_logger
from shared.project_file import MASK
from shared.vault import CredentialNotFoundError, VaultClient, VaultUnavailableError

log = get_logger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API token."},
    403: {"model": ErrorBody, "description": "Credentials need the admin role."},
    404: {"model": ErrorBody, "description": "No such project of yours."},
}

_LIST = (
    "SELECT name, fields, updated_at FROM credentials WHERE project_id = %s"
    " ORDER BY name"
)


def credential_routes(
    pool: ConnectionPool[Connection[Any]], vault: VaultClient
) -> APIRouter:
    """List and write credentials, the values through ``vault``."""
    router = APIRouter()

    @router.get(
        "/api/projects/{name}/credentials",
        response_model=list[CredentialOut],
        responses=_ERRORS,
    )
    def list_credentials(name: str, user: CurrentUser) -> list[CredentialOut]:
        """The project's credentials: names and field names, never values."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.ADMIN)
            rows = conn.execute(_LIST, (project["id"],)).fetchall()
        return [CredentialOut.model_validate(row) for row in rows]

    @router.put(
        "/api/projects/{name}/credentials/{credential}",
        response_model=CredentialOut,
        responses={
            **_ERRORS,
            422: {"model": ErrorBody, "description": "Not a credential body."},
            503: {"model": ErrorBody, "description": "Vault is not reachable."},
        },
    )
    def put_credential(
        name: str,
        credential: str,
        body: Annotated[dict[str, Any], Body(min_length=1)],
        user: CurrentUser,
    ) -> CredentialOut:
        """Create or replace a credential's values.

        Runs read them once runners' credential cache has expired.
        """
        if MASK in body.values():
            raise api_error(
                422,
                "invalid_credential",
                f"{MASK} is the mask of a stored value, not a value",
                credential=credential,
            )
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.ADMIN)
            try:
                vault.write_credential(project["id"], credential, body)
            except CredentialNotFoundError as exc:
                raise api_error(
                    422, "invalid_credential", str(exc), credential=credential
                ) from exc
            except VaultUnavailableError as exc:
                raise api_error(
                    503,
                    "vault_unavailable",
                    str(exc),
                    headers={"Retry-After": "5"},
                    credential=credential,
                ) from exc
            row = conn.execute(
                "INSERT INTO credentials (project_id, name, fields) VALUES (%s, %s, %s)"
                " ON CONFLICT (project_id, name)"
                " DO UPDATE SET fields = EXCLUDED.fields, updated_at = now()"
                " RETURNING name, fields, updated_at",
                (project["id"], credential, sorted(body)),
            ).fetchone()
        log.info(
            "credential.written", project=name, credential=credential, by=user.username
        )
        return CredentialOut.model_validate(row)

    return router
