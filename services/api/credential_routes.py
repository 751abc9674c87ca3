"""HTTP routes for a project's credentials: their names and fields, new values, delete.

Values go to Vault and are never answered; PostgreSQL keeps names, field
names and who wrote them. Managing credentials needs the admin role.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api.access import CurrentUser, require_project
from services.api.audit import record_audit
from services.api.http_errors import NotFoundError, api_error
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
    "SELECT name, fields, updated_at, updated_by FROM credentials"
    " WHERE project_id = %s ORDER BY name"
)
_UPSERT = (
    "INSERT INTO credentials (project_id, name, fields, updated_by)"
    " VALUES (%s, %s, %s, %s) ON CONFLICT (project_id, name)"
    " DO UPDATE SET fields = EXCLUDED.fields, updated_at = now(),"
    " updated_by = EXCLUDED.updated_by"
    " RETURNING name, fields, updated_at, updated_by"
)


def credential_routes(
    pool: ConnectionPool[Connection[Any]], vault: VaultClient
) -> APIRouter:
    """List, write and delete credentials, the values through ``vault``."""
    router = APIRouter()

    def vault_unavailable(exc: VaultUnavailableError, credential: str) -> Exception:
        return api_error(
            503,
            "vault_unavailable",
            str(exc),
            headers={"Retry-After": "5"},
            credential=credential,
        )

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
                raise vault_unavailable(exc, credential) from exc
            fields = sorted(body)
            with conn.transaction():
                row = conn.execute(
                    _UPSERT, (project["id"], credential, fields, user.username)
                ).fetchone()
                record_audit(
                    conn,
                    user.username,
                    "credential.written",
                    project["id"],
                    credential,
                    {"fields": fields},
                )
        log.info(
            "credential.written", project=name, credential=credential, by=user.username
        )
        return CredentialOut.model_validate(row)

    @router.delete(
        "/api/projects/{name}/credentials/{credential}",
        status_code=204,
        response_class=Response,
        responses={
            **_ERRORS,
            404: {"model": ErrorBody, "description": "No such project or credential."},
            409: {"model": ErrorBody, "description": "A deployed job names it."},
            503: {"model": ErrorBody, "description": "Vault is not reachable."},
        },
    )
    def delete_credential(name: str, credential: str, user: CurrentUser) -> None:
        """Delete a credential from Vault; refused while a deployed job names it."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.ADMIN)
            with conn.transaction():
                remove_credential(conn, project, credential, user.username)
                # Last, so that a Vault outage rolls the delete back and it can
                # simply be asked for again.
                try:
                    vault.delete_credential(project["id"], credential)
                except VaultUnavailableError as exc:
                    raise vault_unavailable(exc, credential) from exc
        log.info(
            "credential.deleted", project=name, credential=credential, by=user.username
        )

    return router


def remove_credential(
    conn: Connection[Any], project: dict[str, Any], credential: str, actor: str
) -> None:
    """Delete a credential's row and record who did, if no deployed job names it."""
    jobs = [
        row["name"]
        for row in conn.execute(
            "SELECT name FROM jobs WHERE project_id = %s AND credential = %s"
            " ORDER BY name",
            (project["id"], credential),
        )
    ]
    if jobs:
        raise api_error(
            409,
            "credential_in_use",
            f"credential {credential} is named by job(s) {', '.join(jobs)};"
            " deploy the project without it first",
            credential=credential,
            jobs=jobs,
        )
    deleted = conn.execute(
        "DELETE FROM credentials WHERE project_id = %s AND name = %s RETURNING name",
        (project["id"], credential),
    ).fetchone()
    if deleted is None:
        raise NotFoundError("credential", credential)
    record_audit(conn, actor, "credential.deleted", project["id"], credential)
