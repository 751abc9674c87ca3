"""HTTP routes for the dead letters: runs that used up their retries.

An operator lists them and sends one again ("redrive"): a new run of the same
job, from the same input state, through the 10-second gate like a re-run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api import queries
from services.api.access import CurrentUser, require_project, require_role
from services.api.audit import record_audit
from services.api.http_errors import NotFoundError, api_error, rerun_refusal
from services.api.reruns import (
    GateClosedError,
    RunNotPossibleError,
    plan_rerun,
)
from services.api.schemas import DeadLetterOut, ErrorBody, RunRequested
from services.api.settings import ApiSettings
from shared.auth import Role, User
from shared.errors import BrokerUnavailableError
from shared.events import RunRequest
from shared.kafka import AsyncProducer, Record
from shared.logging import get_logger
from shared.topics import Topics

log = get_logger(__name__)

_LIST = """
SELECT d.run_id, p.name AS project, d.job_name, d.message_id, d.exit_code, d.error,
       d.attempts, d.dead_at, d.redriven_at, d.redriven_as
FROM dead_letters d JOIN projects p ON p.id = d.project_id
"""


def dead_letter_routes(
    settings: ApiSettings,
    pool: ConnectionPool[Connection[Any]],
    producer: AsyncProducer,
) -> APIRouter:
    """List and redrive dead letters, writing redriven runs through ``producer``."""
    router = APIRouter()
    topics = Topics.with_prefix(settings.topic_prefix)

    @router.get(
        "/api/dead-letters",
        response_model=list[DeadLetterOut],
        responses={
            401: {"model": ErrorBody, "description": "No valid API token."},
            404: {"model": ErrorBody, "description": "No such project of yours."},
        },
    )
    def list_dead_letters(
        user: CurrentUser,
        project: str | None = None,
        include_redriven: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[DeadLetterOut]:
        """Dead letters of your projects, newest first; not redriven unless asked."""
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        with pool.connection() as conn:
            if project is not None:
                where.append("d.project_id = %s")
                params.append(require_project(conn, user, project, Role.VIEWER)["id"])
            elif not user.is_admin:
                where.append(
                    "d.project_id IN"
                    " (SELECT project_id FROM project_members WHERE user_id = %s)"
                )
                params.append(user.id)
            if not include_redriven:
                where.append("d.redriven_at IS NULL")
            rows = conn.execute(
                f"{_LIST} WHERE {' AND '.join(where)} ORDER BY d.dead_at DESC LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [DeadLetterOut.model_validate(row) for row in rows]

    @router.post(
        "/api/dead-letters/{run_id}/redrive",
        status_code=202,
        response_model=RunRequested,
        responses={
            401: {"model": ErrorBody, "description": "No valid API token."},
            403: {"model": ErrorBody, "description": "Redrive needs the editor role."},
            404: {
                "model": ErrorBody,
                "description": "No dead letter of yours has this id.",
            },
            409: {"model": ErrorBody, "description": "Already redriven, or job gone."},
            429: {"model": ErrorBody, "description": "Inside the 10-second window."},
            503: {"model": ErrorBody, "description": "The broker did not answer."},
        },
    )
    async def redrive(run_id: UUID, user: CurrentUser) -> RunRequested:
        """Send a dead-lettered run again as a new run."""
        request = await run_in_threadpool(plan_redrive, user, run_id)
        record = Record(
            topic=topics.run_requests,
            key=request.run_id.bytes,
            value=request.model_dump_json().encode(),
        )
        try:
            await producer.produce(record, settings.api_ack_timeout_s)
        except BrokerUnavailableError as exc:
            raise api_error(
                503,
                "broker_unavailable",
                "the broker did not acknowledge; ask again later",
                headers={"Retry-After": str(settings.api_retry_after_s)},
            ) from exc
        await run_in_threadpool(mark_redriven, user, run_id, request)
        log.info(
            "dead_letter.redriven", run_id=str(run_id), new_run_id=str(request.run_id)
        )
        return RunRequested(run_id=request.run_id)

    def plan_redrive(user: User, run_id: UUID) -> RunRequest:
        missing = NotFoundError("dead_letter", run_id)
        with pool.connection() as conn:
            letter = conn.execute(
                "SELECT redriven_as FROM dead_letters WHERE run_id = %s", (run_id,)
            ).fetchone()
            run = queries.run_to_rerun(conn, run_id)
            if letter is None or run is None:
                raise missing
            require_role(conn, user, run["project_id"], Role.EDITOR, missing)
            if letter["redriven_as"] is not None:
                raise api_error(
                    409,
                    "already_redriven",
                    f"dead letter {run_id} was redriven as {letter['redriven_as']}",
                    run_id=str(run_id),
                )
            try:
                return plan_rerun(
                    conn, run, settings.run_gate_window_s, datetime.now(UTC)
                )
            except (RunNotPossibleError, GateClosedError) as exc:
                raise rerun_refusal(exc, run_id) from exc

    def mark_redriven(user: User, run_id: UUID, request: RunRequest) -> None:
        with pool.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE dead_letters SET redriven_at = now(), redriven_as = %s"
                " WHERE run_id = %s",
                (request.run_id, run_id),
            )
            record_audit(
                conn,
                user.username,
                "dead_letter.redriven",
                request.project_id,
                str(run_id),
                {"run_id": str(request.run_id), "job": request.job.name},
            )

    return router
