"""HTTP routes that start runs: re-run, bulk re-run, reprocess and run now.

Each plans its runs in the database (where the 10-second gate is) on a worker
thread and records who asked in the audit log, then writes them to the broker
and answers ``202`` once the broker has acknowledged them, or ``503`` with
``Retry-After`` when it has not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api import queries
from services.api.access import CurrentUser, require_project, require_role
from services.api.audit import record_audit
from services.api.http_errors import NotFoundError, api_error, rerun_refusal
from services.api.reprocessing import UnreplayableMessageError, reprocessed_message
from services.api.reruns import (
    BulkRerun,
    GateClosedError,
    RunNotPossibleError,
    as_utc,
    history_window,
    plan_bulk_rerun,
    plan_rerun,
    plan_run_now,
    statuses_for,
    whole_seconds,
)
from services.api.schemas import (
    BulkRerunOut,
    ErrorBody,
    NotRerun,
    RefusedRun,
    ReprocessFilter,
    ReprocessOut,
    RerunFilter,
    RunRequested,
)
from services.api.settings import ApiSettings
from shared.auth import Role, User
from shared.errors import BrokerUnavailableError
from shared.events import Message, RunRequest
from shared.kafka import AsyncProducer, Record
from shared.logging import get_logger
from shared.topics import Topics

log = get_logger(__name__)


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meanings = {
        401: "No valid API token.",
        403: "Starting runs needs the editor role.",
        404: "The project, job, run or message does not exist, or is not yours.",
        409: "The run cannot be re-run: no recorded input state, or job removed.",
        422: "The request is not valid, or the job has no cron trigger.",
        429: "The message/job pair ran less than the window ago; see Retry-After.",
        503: "The broker did not acknowledge; ask again after Retry-After.",
    }
    return {
        s: {"model": ErrorBody, "description": meanings[s]}
        for s in (401, 403, *statuses)
    }


def run_routes(
    settings: ApiSettings,
    pool: ConnectionPool[Connection[Any]],
    producer: AsyncProducer,
) -> APIRouter:
    """The routes that start runs, writing their requests through ``producer``."""
    router = APIRouter()
    topics = Topics.with_prefix(settings.topic_prefix)
    window_s = settings.run_gate_window_s
    # A re-run's gate is already open when the broker fails to take it, so
    # asking again inside the window would only be refused.
    rerun_retry_after_s = max(settings.api_retry_after_s, whole_seconds(window_s))

    async def write(records: Sequence[Record]) -> list[bool]:
        """Write records at once; for each, whether the broker acknowledged it."""
        results = await asyncio.gather(
            *(producer.produce(r, settings.api_ack_timeout_s) for r in records),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, BrokerUnavailableError
            ):
                raise result
        return [result is None for result in results]

    def request_record(request: RunRequest) -> Record:
        return Record(
            topic=topics.run_requests,
            key=request.run_id.bytes,
            value=request.model_dump_json().encode(),
        )

    def message_record(message: Message) -> Record:
        return Record(
            topic=topics.messages,
            key=message.project_id.bytes,
            value=message.body,
            headers=message.to_kafka_headers(),
        )

    def not_acknowledged(retry_after_s: int, **ids: Any) -> Exception:
        return api_error(
            503,
            "broker_unavailable",
            "the broker did not acknowledge; ask again later",
            headers={"Retry-After": str(retry_after_s)},
            **ids,
        )

    @router.post(
        "/api/runs/{run_id}/rerun",
        status_code=202,
        response_model=RunRequested,
        responses=_documented(404, 409, 429, 503),
    )
    async def rerun(run_id: UUID, user: CurrentUser) -> RunRequested:
        """Run a run's job again from the same input state, as a new run."""
        request = await run_in_threadpool(plan_one_rerun, user, run_id)
        if not all(await write([request_record(request)])):
            raise not_acknowledged(rerun_retry_after_s, run_id=str(request.run_id))
        log.info(
            "run.rerun_requested",
            run_id=str(request.run_id),
            rerun_of=str(run_id),
            job=request.job.name,
        )
        return RunRequested(run_id=request.run_id)

    def plan_one_rerun(user: User, run_id: UUID) -> RunRequest:
        missing = NotFoundError("run", run_id)
        with pool.connection() as conn:
            run = queries.run_to_rerun(conn, run_id)
            if run is None:
                raise missing
            require_role(conn, user, run["project_id"], Role.EDITOR, missing)
            try:
                with conn.transaction():
                    request = plan_rerun(conn, run, window_s, datetime.now(UTC))
                    record_audit(
                        conn,
                        user.username,
                        "run.rerun_requested",
                        request.project_id,
                        str(run_id),
                        {"run_id": str(request.run_id), "job": request.job.name},
                    )
                    return request
            except (RunNotPossibleError, GateClosedError) as exc:
                raise rerun_refusal(exc, run_id) from exc

    @router.post(
        "/api/projects/{name}/runs/rerun",
        status_code=202,
        response_model=BulkRerunOut,
        responses=_documented(404, 422, 503),
    )
    async def rerun_history(
        name: str, filters: Annotated[RerunFilter, Body()], user: CurrentUser
    ) -> BulkRerunOut:
        """Re-run every run of a filtered activity-history list.

        Runs that only a flow or catch trigger started are left out: they fire
        again downstream of the re-runs as usual.
        """
        plan = await run_in_threadpool(plan_history_rerun, user, name, filters)
        acked = await write([request_record(r) for r in plan.requests])
        requested = [r.run_id for r, ok in zip(plan.requests, acked, strict=True) if ok]
        if not all(acked):
            raise not_acknowledged(
                rerun_retry_after_s,
                requested=[str(run_id) for run_id in requested],
            )
        log.info(
            "runs.rerun_requested",
            project=name,
            requested=len(requested),
            refused=len(plan.refused),
            skipped_chained=plan.skipped_chained,
        )
        return BulkRerunOut(
            requested=requested,
            refused=[
                RefusedRun(
                    run_id=r.run_id, retry_after_s=whole_seconds(r.retry_after_s)
                )
                for r in plan.refused
            ],
            not_rerun=[
                NotRerun(run_id=run_id, code=exc.code, message=exc.message)
                for run_id, exc in plan.not_possible
            ],
            skipped_chained=plan.skipped_chained,
        )

    def plan_history_rerun(user: User, name: str, filters: RerunFilter) -> BulkRerun:
        now = datetime.now(UTC)
        since, until = history_window(filters.since, filters.until, now)
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.EDITOR)
            runs = queries.history_runs(
                conn,
                project["id"],
                filters.job,
                statuses_for(filters.status),
                since,
                until,
                filters.limit,
            )
            plan = plan_bulk_rerun(conn, runs, window_s, now)
            # Not in the gates' transaction: holding every pair's gate lock
            # until the last one passes could deadlock two bulk re-runs.
            record_audit(
                conn,
                user.username,
                "runs.rerun_requested",
                project["id"],
                name,
                {
                    "count": len(plan.requests),
                    "run_ids": [str(r.run_id) for r in plan.requests],
                    "filters": filters.model_dump(mode="json", exclude_none=True),
                },
            )
            return plan

    @router.post(
        "/api/projects/{name}/messages/reprocess",
        status_code=202,
        response_model=ReprocessOut,
        responses=_documented(404, 409, 422, 503),
    )
    async def reprocess(
        name: str, filters: Annotated[ReprocessFilter, Body()], user: CurrentUser
    ) -> ReprocessOut:
        """Send inbox messages through trigger matching again.

        They are matched against the jobs enabled now; each message/job pair
        still runs at most once per window.
        """
        messages = await run_in_threadpool(plan_reprocess, user, name, filters)
        acked = await write([message_record(m) for m in messages])
        reprocessed = [m.id for m, ok in zip(messages, acked, strict=True) if ok]
        if not all(acked):
            raise not_acknowledged(
                settings.api_retry_after_s,
                reprocessed=[str(message_id) for message_id in reprocessed],
            )
        log.info("messages.reprocess_requested", project=name, messages=len(messages))
        return ReprocessOut(reprocessed=reprocessed)

    def plan_reprocess(
        user: User, name: str, filters: ReprocessFilter
    ) -> list[Message]:
        since, until = as_utc(filters.since), as_utc(filters.until)
        if not filters.ids:
            since, until = history_window(since, until, datetime.now(UTC))
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.EDITOR)
            rows = queries.messages_to_reprocess(
                conn, project["id"], filters.ids, since, until, filters.limit
            )
            revision = queries.catalog_revision(conn)
        missing = set(filters.ids or ()) - {row["id"] for row in rows}
        if missing and len(rows) < filters.limit:
            raise api_error(
                404,
                "message_not_found",
                f"project {name} has no such message in the period asked",
                message_ids=sorted(str(message_id) for message_id in missing),
            )
        try:
            messages = [reprocessed_message(row, revision, uuid4()) for row in rows]
        except UnreplayableMessageError as exc:
            raise api_error(409, "message_not_reprocessable", str(exc)) from exc
        with pool.connection() as conn:
            record_audit(
                conn,
                user.username,
                "messages.reprocess_requested",
                project["id"],
                name,
                {
                    "count": len(messages),
                    "message_ids": [str(row["id"]) for row in rows],
                },
            )
        return messages

    @router.post(
        "/api/projects/{name}/jobs/{job}/run",
        status_code=202,
        response_model=RunRequested,
        responses=_documented(404, 422, 503),
    )
    async def run_now(name: str, job: str, user: CurrentUser) -> RunRequested:
        """Run a cron job now, from its cursor, outside its schedule."""
        request = await run_in_threadpool(plan_now, user, name, job)
        if not all(await write([request_record(request)])):
            raise not_acknowledged(settings.api_retry_after_s)
        log.info("run.run_now_requested", run_id=str(request.run_id), job=job)
        return RunRequested(run_id=request.run_id)

    def plan_now(user: User, name: str, job_name: str) -> RunRequest:
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.EDITOR)
            job = queries.job_named(conn, project["id"], job_name)
            if job is None:
                raise NotFoundError("job", job_name)
            try:
                request = plan_run_now(
                    conn, job, settings.cron_state_max_bytes, datetime.now(UTC)
                )
            except RunNotPossibleError as exc:
                raise api_error(422, exc.code, exc.message, job=job_name) from exc
            record_audit(
                conn,
                user.username,
                "run.run_now_requested",
                project["id"],
                job_name,
                {"run_id": str(request.run_id)},
            )
            return request

    return router
