"""HTTP routes of the activity history and the searchable inbox.

``GET /api/projects/{name}/runs`` lists a project's runs newest first,
``…/runs.csv`` streams the same list as CSV, and ``…/inbox`` lists its
messages with their job states. Each filters by a period (the last 30 days
unless told otherwise) and by full-text search, and pages by keyset: the
``next_before`` of one page is the ``before`` of the next.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from psycopg import Connection
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from services.api import history_queries
from services.api.access import CurrentUser, require_project
from services.api.history_queries import MessageFilter, Position, RunFilter
from services.api.http_errors import NotFoundError
from services.api.reruns import history_window, statuses_for
from services.api.schemas import ErrorBody, MessagePage, MessageSummary, RunSummary
from services.api.settings import ApiSettings
from shared.auth import Role
from shared.model import RunOrigin, TriggerKind

StatusFilter = Literal[
    "started", "succeeded", "failed", "timed_out", "lost", "aborted", "failure"
]

CSV_COLUMNS = (
    "run_id",
    "job",
    "trigger",
    "origin",
    "status",
    "exit_code",
    "started_at",
    "finished_at",
    "message_id",
)
# Rows read per query while streaming a CSV export: large enough that the
# per-query cost vanishes, small enough that a connection is never held long.
CSV_BATCH_ROWS = 1000

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API token."},
    404: {
        "model": ErrorBody,
        "description": "No such project in your projects, or `before` names none "
        "of its runs (messages).",
    },
}

_SINCE = Query(description="Created (received) at or after; default 30 days ago.")
_UNTIL = Query(description="Created (received) before; default now.")
_SEARCH = Query(
    max_length=500,
    description="Words to search for, in web-search syntax: `amina -test`, "
    '`"exact phrase"`, `kisumu or nakuru`.',
)


class HistoryRun(RunSummary):
    """A run as the activity history lists it."""

    message_id: UUID | None
    created_at: datetime


class RunPage(BaseModel):
    """One page of the activity history, newest first."""

    runs: list[HistoryRun]
    next_before: UUID | None
    """Pass as ``before`` to read the next, older page; null on the last page."""


def run_filter(
    since: datetime | None,
    until: datetime | None,
    job: str | None,
    status: StatusFilter | None,
    trigger: TriggerKind | None,
    origin: RunOrigin | None,
    q: str | None,
    now: datetime,
) -> RunFilter:
    """The filter the query parameters of a history request describe."""
    start, end = history_window(since, until, now)
    return RunFilter(
        since=start,
        until=end,
        job=job,
        statuses=statuses_for(status),
        trigger=trigger.value if trigger else None,
        origin=origin.value if origin else None,
        search=history_queries.search_terms(q),
    )


def csv_row(run: history_queries.Row) -> list[str]:
    """A run as a line of the CSV export, in the order of ``CSV_COLUMNS``."""
    return [
        str(run["id"]),
        run["job_name"],
        run["trigger_kind"],
        run["origin"],
        run["status"],
        "" if run["exit_code"] is None else str(run["exit_code"]),
        _iso(run["started_at"]),
        _iso(run["finished_at"]),
        "" if run["message_id"] is None else str(run["message_id"]),
    ]


def history_routes(
    settings: ApiSettings, pool: ConnectionPool[Connection[Any]]
) -> APIRouter:
    """The activity history and inbox routes, reading through ``pool``."""
    router = APIRouter()
    csv_max_rows = settings.history_csv_max_rows

    def start_of_runs(
        conn: Connection[Any], project_id: UUID, before: UUID | None
    ) -> Position | None:
        if before is None:
            return None
        position = history_queries.run_position(conn, project_id, before)
        if position is None:
            raise NotFoundError("run", before)
        return position

    @router.get("/api/projects/{name}/runs", response_model=RunPage, responses=_ERRORS)
    def list_runs(
        name: str,
        user: CurrentUser,
        since: Annotated[datetime | None, _SINCE] = None,
        until: Annotated[datetime | None, _UNTIL] = None,
        job: Annotated[str | None, Query(description="Only runs of this job.")] = None,
        status: Annotated[
            StatusFilter | None,
            Query(
                description="`failure` is failed, timed_out, lost and aborted together."
            ),
        ] = None,
        trigger: Annotated[
            TriggerKind | None, Query(description="Only runs of this kind of trigger.")
        ] = None,
        origin: Annotated[
            RunOrigin | None,
            Query(description="Only runs asked for this way: a message, a re-run…"),
        ] = None,
        q: Annotated[str | None, _SEARCH] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: UUID | None = None,
    ) -> RunPage:
        """The activity history: a project's runs, newest first.

        `q` searches the run's logs and error and its message's body.
        """
        filters = run_filter(
            since, until, job, status, trigger, origin, q, datetime.now(UTC)
        )
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.VIEWER)
            after = start_of_runs(conn, project["id"], before)
            rows = history_queries.run_page(
                conn, project["id"], filters, limit + 1, after
            )
        page = [HistoryRun.model_validate(row) for row in rows[:limit]]
        return RunPage(
            runs=page, next_before=page[-1].id if len(rows) > limit else None
        )

    @router.get(
        "/api/projects/{name}/runs.csv",
        response_class=StreamingResponse,
        responses={
            **_ERRORS,
            200: {
                "content": {"text/csv": {}},
                "description": f"Columns: {', '.join(CSV_COLUMNS)}.",
            },
        },
    )
    def export_runs(
        name: str,
        user: CurrentUser,
        since: Annotated[datetime | None, _SINCE] = None,
        until: Annotated[datetime | None, _UNTIL] = None,
        job: str | None = None,
        status: StatusFilter | None = None,
        trigger: TriggerKind | None = None,
        origin: RunOrigin | None = None,
        q: Annotated[str | None, _SEARCH] = None,
        before: UUID | None = None,
    ) -> StreamingResponse:
        """The activity history as CSV, newest first, as filtered as its list.

        At most `OPENFN_HISTORY_CSV_MAX_ROWS` runs; pass the last run's id as
        `before` to continue.
        """
        filters = run_filter(
            since, until, job, status, trigger, origin, q, datetime.now(UTC)
        )
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.VIEWER)
            after = start_of_runs(conn, project["id"], before)
        return StreamingResponse(
            csv_lines(project["id"], filters, after),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}-runs.csv"'},
        )

    def csv_lines(
        project_id: UUID, filters: RunFilter, after: Position | None
    ) -> Iterator[str]:
        # A connection per batch, not one for the whole export: a slow reader
        # then holds no connection, and batches continue by keyset, so the rows
        # written are the same as one long read would give.
        yield _csv_text([list(CSV_COLUMNS)])
        remaining = csv_max_rows
        while remaining > 0:
            batch = min(CSV_BATCH_ROWS, remaining)
            with pool.connection() as conn:
                rows = history_queries.run_page(conn, project_id, filters, batch, after)
            if rows:
                yield _csv_text([csv_row(row) for row in rows])
                after = (rows[-1]["created_at"], rows[-1]["id"])
            if len(rows) < batch:
                return
            remaining -= batch

    @router.get(
        "/api/projects/{name}/inbox", response_model=MessagePage, responses=_ERRORS
    )
    def list_inbox(
        name: str,
        user: CurrentUser,
        since: Annotated[datetime | None, _SINCE] = None,
        until: Annotated[datetime | None, _UNTIL] = None,
        q: Annotated[str | None, _SEARCH] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: UUID | None = None,
    ) -> MessagePage:
        """The inbox: messages newest first with their job states, searchable.

        `q` searches the message's body.
        """
        start, end = history_window(since, until, datetime.now(UTC))
        filters = MessageFilter(start, end, history_queries.search_terms(q))
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.VIEWER)
            after = None
            if before is not None:
                after = history_queries.message_position(conn, project["id"], before)
                if after is None:
                    raise NotFoundError("message", before)
            rows = history_queries.message_page(
                conn, project["id"], filters, limit + 1, after
            )
        page = [MessageSummary.model_validate(row) for row in rows[:limit]]
        return MessagePage(
            messages=page, next_before=page[-1].id if len(rows) > limit else None
        )

    return router


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat()


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()
