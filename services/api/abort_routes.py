"""Aborting a run in progress: ``POST /api/runs/{run_id}/abort``.

The request is recorded in ``run_aborts``, with who asked, in the same
transaction as its audit event. The runner executing the run sees it within
``OPENFN_ABORT_POLL_S``, kills the run's worker and reports exit code 6
(status ``aborted``); if no runner answers, the scheduler reports the run
aborted after ``OPENFN_ABORT_GRACE_S``. An aborted run is not retried and
starts no flow or catch job. Asking again changes nothing and answers the same.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api.access import CurrentUser, require_role
from services.api.audit import record_audit
from services.api.http_errors import NotFoundError, api_error
from services.api.schemas import ErrorBody, RunAbortRequested
from shared.auth import Role
from shared.logging import get_logger

log = get_logger(__name__)

_REQUEST = """
INSERT INTO run_aborts (run_id, project_id, requested_by)
VALUES (%s, %s, %s)
ON CONFLICT (run_id) DO NOTHING
RETURNING requested_by, requested_at
"""

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API token."},
    403: {"model": ErrorBody, "description": "Aborting runs needs the admin role."},
    404: {
        "model": ErrorBody,
        "description": "The run has not started, does not exist, or is not yours.",
    },
    409: {"model": ErrorBody, "description": "The run has finished already."},
}


def abort_routes(pool: ConnectionPool[Connection[Any]]) -> APIRouter:
    """The route that aborts runs."""
    router = APIRouter()

    @router.post(
        "/api/runs/{run_id}/abort",
        status_code=202,
        response_model=RunAbortRequested,
        responses=_ERRORS,
    )
    def abort(run_id: UUID, user: CurrentUser) -> RunAbortRequested:
        """Stop a run in progress; it ends with exit code 6, status ``aborted``."""
        missing = NotFoundError("run", run_id)
        with pool.connection() as conn, conn.transaction():
            run = conn.execute(
                "SELECT project_id, job_name, finished_at FROM runs"
                " WHERE id = %s FOR UPDATE",
                (run_id,),
            ).fetchone()
            if run is None:
                raise missing
            require_role(conn, user, run["project_id"], Role.ADMIN, missing)
            if run["finished_at"] is not None:
                raise api_error(
                    409,
                    "run_finished",
                    "the run has finished; only a run in progress can be aborted",
                    run_id=str(run_id),
                )
            made = conn.execute(
                _REQUEST, (run_id, run["project_id"], user.username)
            ).fetchone()
            if made is None:
                made = conn.execute(
                    "SELECT requested_by, requested_at FROM run_aborts"
                    " WHERE run_id = %s",
                    (run_id,),
                ).fetchone()
            else:
                record_audit(
                    conn,
                    user.username,
                    "run.abort_requested",
                    run["project_id"],
                    str(run_id),
                    {"job": run["job_name"]},
                )
                log.warning("run.abort_requested", run_id=str(run_id), by=user.username)
        assert made is not None  # the runs row lock serialises requests
        return RunAbortRequested(run_id=run_id, **made)

    return router
