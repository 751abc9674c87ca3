"""HTTP route that enables or disables one deployed job.

Projects are code, so a toggle is a deployment: the project's current document
(``export_document``, credential values masked so deploying keeps them) with
the job's ``enabled`` changed. It gets a new revision and an audit entry like
any deploy, and running services follow it at once: a disabled job gets no new
runs, and enabling it again lets the next matching message run it.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import yaml
from fastapi import APIRouter, Body
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api import queries
from services.api.access import CurrentUser, require_project, require_role
from services.api.deploy import deploy_project
from services.api.export import export_document
from services.api.http_errors import NotFoundError, api_error
from services.api.schemas import ErrorBody, JobEnabledIn, JobOut
from shared.auth import Role, User
from shared.errors import InvalidProjectError
from shared.logging import get_logger
from shared.project_file import ProjectDocument
from shared.vault import VaultClient, VaultUnavailableError

log = get_logger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API token."},
    403: {"model": ErrorBody, "description": "Changing a job needs the editor role."},
    404: {"model": ErrorBody, "description": "No such project of yours, or job."},
    409: {
        "model": ErrorBody,
        "description": "The project as deployed is refused when deployed again, "
        "with `problems`: an adaptor no longer installed, or a credential value "
        "missing from Vault.",
    },
    503: {
        "model": ErrorBody,
        "description": "Vault did not answer; ask again after Retry-After.",
    },
}


def job_routes(pool: ConnectionPool[Connection[Any]], vault: VaultClient) -> APIRouter:
    """``PATCH /api/projects/{name}/jobs/{job}``; its deploy reads and keeps the
    project's credentials through ``vault``."""
    router = APIRouter()

    @router.patch(
        "/api/projects/{name}/jobs/{job}",
        response_model=JobOut,
        responses={
            **_ERRORS,
            200: {"description": "The job, enabled or disabled as asked."},
        },
    )
    def set_job_enabled(
        name: str,
        job: str,
        change: Annotated[JobEnabledIn, Body()],
        user: CurrentUser,
    ) -> JobOut:
        """Enable or disable a job by deploying the project with the change.

        The new revision, its audit entry and its notification are those of a
        deploy. A job already as asked is answered without a new deployment.
        """
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.EDITOR)
            # One transaction, the project's row locked first: a deploy or
            # toggle at the same time waits, so neither undoes the other.
            with conn.transaction():
                locked = conn.execute(
                    "SELECT id, timezone FROM projects WHERE id = %s FOR UPDATE",
                    (project["id"],),
                ).fetchone()
                if locked is None:
                    raise NotFoundError("project", name)
                document = yaml.safe_load(export_document(conn, locked))
                jobs: dict[str, dict[str, Any]] = document["jobs"]
                if job not in jobs:
                    raise NotFoundError("job", job)
                changed = jobs[job].get("enabled", True) != change.enabled
                if changed:
                    jobs[job]["enabled"] = change.enabled
                    redeploy(conn, user, name, document)
                out = job_out(conn, locked["id"], job)
        if changed:
            log.info(
                "job.enabled_changed",
                project=name,
                job=job,
                enabled=change.enabled,
                user=user.username,
            )
        return out

    def redeploy(
        conn: Connection[Any], user: User, name: str, document: dict[str, Any]
    ) -> None:
        def authorize(
            conn: Connection[Any],
            project_id: UUID,
            created: bool,
            _document: ProjectDocument,
        ) -> None:
            missing = NotFoundError("project", name)
            if created:
                # The row is locked and was there: only a bug gets here.
                raise missing
            require_role(conn, user, project_id, Role.EDITOR, missing)

        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        try:
            deploy_project(
                conn, vault, name, text, "project.yaml", authorize, actor=user.username
            )
        except VaultUnavailableError as exc:
            raise api_error(
                503,
                "vault_unavailable",
                str(exc),
                headers={"Retry-After": "5"},
            ) from exc
        except InvalidProjectError as exc:
            raise api_error(
                409,
                "project_not_redeployable",
                "the project as deployed cannot be deployed again",
                problems=exc.problems,
            ) from exc

    def job_out(conn: Connection[Any], project_id: UUID, job: str) -> JobOut:
        for row in queries.project_jobs(conn, project_id):
            if row["name"] == job:
                return JobOut.model_validate(row)
        raise NotFoundError("job", job)

    return router
