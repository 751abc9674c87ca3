"""The console's pages: projects, inbox, receipts, activity history, runs, jobs,
credentials and collaborators.

Pages only read. What they let people do (re-run, set a credential, change a
role) is done by the page's script calling the JSON API with the session's
cookie and CSRF token, so the console and the API share one set of rules. The
same role checks decide what a page shows: an outsider gets the same 404 as for
a project that does not exist, and actions above a viewer's role are not drawn.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, cast, get_args
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api import history_queries, queries
from services.api.access import require_project, require_role, role_in
from services.api.audit import audit_page
from services.api.console.activity import ActivityFeed
from services.api.console.render import render
from services.api.history_queries import MessageFilter
from services.api.history_routes import StatusFilter, run_filter
from services.api.http_errors import NotFoundError, api_error
from services.api.reruns import history_window
from services.api.sessions import SESSION_COOKIE, Session, SessionPolicy, find_session
from services.api.settings import ApiSettings
from shared.adaptors import adaptor_version
from shared.auth import Role
from shared.errors import PlatformError
from shared.model import RunOrigin, TriggerKind

PAGE_SIZE = 50


class SignInRequiredError(Exception):
    """The page needs a signed-in browser; ``next_url`` is where it was going."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def _blank(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def _choice(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    value = _blank(value)
    if value is not None and value not in allowed:
        raise api_error(422, "invalid_filter", f"{what} {value!r} is not one we know")
    return value


def _day(value: str | None, what: str) -> date | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise api_error(
            422, "invalid_filter", f"{what} {value!r} is not a date (YYYY-MM-DD)"
        ) from None


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(_blank(name) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_window(
    since: date | None, until: date | None, zone: ZoneInfo, now: datetime
) -> tuple[datetime, datetime]:
    """The period two calendar days cover in the viewer's zone, both included.

    Without them, the API's default: the last 30 days.
    """
    start = datetime.combine(since, time(), zone) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), zone) if until else None
    return history_window(start, end, now)


def _period(
    since: str | None, until: str | None, tz: str | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The period a page's "from" and "to" days cover in the viewer's zone."""
    return day_window(
        _day(since, "from"), _day(until, "to"), _zone(tz), now or datetime.now(UTC)
    )


def _event_id(value: str | None) -> int | None:
    value = _blank(value)
    if value is None:
        return None
    if not value.isdigit():
        raise api_error(422, "invalid_filter", f"{value!r} is not an event id")
    return int(value)


def _uuid(value: str | None) -> UUID | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise api_error(422, "invalid_filter", f"{value!r} is not an id") from None


def console_routes(
    settings: ApiSettings,
    pool: ConnectionPool[Connection[Any]],
    policy: SessionPolicy,
    feed: ActivityFeed,
) -> APIRouter:
    """Every page of the console but sign-in, reading through ``pool``, and the
    stream that tells a project's open pages when to fetch themselves again."""

    def console_session(request: Request) -> Session:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            with pool.connection() as conn:
                session = find_session(conn, cookie, policy, datetime.now(UTC))
            if session is not None:
                request.state.console = session
                return session
        target = request.url.path
        if request.url.query:
            target += f"?{request.url.query}"
        raise SignInRequiredError(target)

    router = APIRouter(include_in_schema=False)
    signed_in = Depends(console_session)
    inbox_base = settings.inbox_public_url.rstrip("/")

    def project_context(
        conn: Connection[Any], session: Session, name: str, minimum: Role
    ) -> dict[str, Any]:
        project = require_project(conn, session.user, name, minimum)
        role = role_in(conn, session.user, project["id"])
        return {
            "project": {
                **project,
                "inbox_url": f"{inbox_base}/inbox/{project['inbox_id']}",
            },
            "role": role,
            "can_edit": role is not None and role.includes(Role.EDITOR),
            "can_admin": role is not None and role.includes(Role.ADMIN),
        }

    @router.get("/")
    def root() -> Response:
        return RedirectResponse("/console/projects", 303)

    @router.get("/console")
    @router.get("/console/")
    def console_root() -> Response:
        return RedirectResponse("/console/projects", 303)

    @router.get("/console/projects/{name}/activity")
    def activity(name: str, session: Session = signed_in) -> Response:
        with pool.connection() as conn:
            project = require_project(conn, session.user, name, Role.VIEWER)
        return StreamingResponse(
            feed.stream(project["id"]),
            media_type="text/event-stream",
            # Proxies must pass each event on as it comes, not buffer them.
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @router.get("/console/projects")
    def projects(request: Request, session: Session = signed_in) -> Response:
        member = None if session.user.is_admin else session.user.id
        with pool.connection() as conn:
            rows = queries.list_projects(conn, member)
            listed = [
                {
                    **row,
                    "role": role_in(conn, session.user, row["id"]),
                    "jobs": len(queries.project_jobs(conn, row["id"])),
                    "last_message_at": _last_message_at(conn, row["id"]),
                }
                for row in rows
            ]
        return render(request, "projects.html", projects=listed)

    @router.get("/console/projects/{name}")
    def project_home(name: str, session: Session = signed_in) -> Response:
        with pool.connection() as conn:
            require_project(conn, session.user, name, Role.VIEWER)
        return RedirectResponse(f"/console/projects/{name}/inbox", 303)

    @router.get("/console/projects/{name}/inbox")
    def inbox(
        request: Request,
        name: str,
        since: str | None = None,
        until: str | None = None,
        q: str | None = None,
        tz: str | None = None,
        before: str | None = None,
        session: Session = signed_in,
    ) -> Response:
        start, end = _period(since, until, tz)
        filters = MessageFilter(start, end, history_queries.search_terms(q))
        after_id = _uuid(before)
        with pool.connection() as conn:
            context = project_context(conn, session, name, Role.VIEWER)
            project_id = context["project"]["id"]
            after = None
            if after_id is not None:
                after = history_queries.message_position(conn, project_id, after_id)
                if after is None:
                    raise NotFoundError("message", after_id)
            rows = history_queries.message_page(
                conn, project_id, filters, PAGE_SIZE + 1, after
            )
            any_message = bool(rows) or _last_message_at(conn, project_id) is not None
            # Only the empty inbox's example needs to know.
            protected = not any_message and _inbox_protected(conn, project_id)
        query = {"since": since or "", "until": until or "", "q": q or "", "tz": tz}
        return render(
            request,
            "inbox.html",
            tab="inbox",
            messages=rows[:PAGE_SIZE],
            older=_older_link(query, rows, PAGE_SIZE),
            filters=query,
            filtered=any(_blank(v) for v in (since, until, q)),
            paged=after_id is not None,
            any_message=any_message,
            protected=protected,
            **context,
        )

    @router.get("/console/messages/{message_id}")
    def receipt(
        request: Request, message_id: UUID, session: Session = signed_in
    ) -> Response:
        missing = NotFoundError("message", message_id)
        with pool.connection() as conn:
            message = queries.find_message(conn, message_id)
            if message is None:
                raise missing
            require_role(
                conn, session.user, message["project_id"], Role.VIEWER, missing
            )
            name = _project_name(conn, message["project_id"])
            context = project_context(conn, session, name, Role.VIEWER)
            states = queries.job_states(conn, [message_id]).get(message_id, [])
            runs = queries.message_runs(conn, message_id)
        return render(
            request,
            "receipt.html",
            tab="inbox",
            message=message,
            job_states=states,
            runs=runs,
            **context,
        )

    @router.get("/console/projects/{name}/history")
    def history(
        request: Request,
        name: str,
        since: str | None = None,
        until: str | None = None,
        job: str | None = None,
        status: str | None = None,
        trigger: str | None = None,
        origin: str | None = None,
        q: str | None = None,
        tz: str | None = None,
        before: str | None = None,
        session: Session = signed_in,
    ) -> Response:
        now = datetime.now(UTC)
        start, end = _period(since, until, tz, now)
        chosen_status = _choice(status, get_args(StatusFilter), "status")
        chosen_trigger = _choice(trigger, tuple(TriggerKind), "trigger")
        chosen_origin = _choice(origin, tuple(RunOrigin), "origin")
        filters = run_filter(
            start,
            end,
            _blank(job),
            cast(StatusFilter | None, chosen_status),
            TriggerKind(chosen_trigger) if chosen_trigger else None,
            RunOrigin(chosen_origin) if chosen_origin else None,
            q,
            now,
        )
        after_id = _uuid(before)
        with pool.connection() as conn:
            context = project_context(conn, session, name, Role.VIEWER)
            project_id = context["project"]["id"]
            after = None
            if after_id is not None:
                after = history_queries.run_position(conn, project_id, after_id)
                if after is None:
                    raise NotFoundError("run", after_id)
            rows = history_queries.run_page(
                conn, project_id, filters, PAGE_SIZE + 1, after
            )
            jobs = [row["name"] for row in queries.project_jobs(conn, project_id)]
        query = {
            "since": since or "",
            "until": until or "",
            "job": job or "",
            "status": status or "",
            "trigger": trigger or "",
            "origin": origin or "",
            "q": q or "",
            "tz": tz,
        }
        export = {
            "since": start.isoformat(),
            "until": end.isoformat(),
            "job": filters.job,
            "status": chosen_status,
            "trigger": chosen_trigger,
            "origin": chosen_origin,
            "q": filters.search,
        }
        csv_url = f"/api/projects/{name}/runs.csv?" + urlencode(
            {key: value for key, value in export.items() if value}
        )
        return render(
            request,
            "history.html",
            tab="history",
            runs=rows[:PAGE_SIZE],
            older=_older_link(query, rows, PAGE_SIZE),
            filters=query,
            jobs=jobs,
            statuses=get_args(StatusFilter),
            triggers=[kind.value for kind in TriggerKind],
            origins=[kind.value for kind in RunOrigin],
            csv_url=csv_url,
            paged=after_id is not None,
            **context,
        )

    @router.get("/console/runs/{run_id}")
    def run(
        request: Request,
        run_id: UUID,
        requested: bool = False,
        session: Session = signed_in,
    ) -> Response:
        missing = NotFoundError("run", run_id)
        with pool.connection() as conn:
            found = queries.find_run(conn, run_id)
            if found is None and requested:
                # Just asked for, not started yet: the page waits for it. It
                # says nothing of any project, so it tells an outsider nothing.
                return render(request, "run_pending.html", 202, run_id=run_id)
            if found is None:
                raise missing
            require_role(conn, session.user, found["project_id"], Role.VIEWER, missing)
            name = _project_name(conn, found["project_id"])
            context = project_context(conn, session, name, Role.VIEWER)
        return render(
            request,
            "run.html",
            tab="history",
            run=found,
            window_s=settings.run_gate_window_s,
            **context,
        )

    @router.get("/console/projects/{name}/jobs")
    def jobs(request: Request, name: str, session: Session = signed_in) -> Response:
        with pool.connection() as conn:
            context = project_context(conn, session, name, Role.VIEWER)
            project_id = context["project"]["id"]
            rows = conn.execute(
                "SELECT name, trigger_name, adaptor, credential, expression, enabled,"
                " version, retries FROM jobs WHERE project_id = %s ORDER BY name",
                (project_id,),
            ).fetchall()
            triggers = {
                row["name"]: row for row in queries.project_triggers(conn, project_id)
            }
        listed = [
            {
                **row,
                "trigger": triggers.get(row["trigger_name"]),
                "adaptor_version": _installed_version(row["adaptor"]),
                "lines": row["expression"].rstrip("\n").split("\n"),
            }
            for row in rows
        ]
        return render(
            request,
            "jobs.html",
            tab="jobs",
            jobs=listed,
            triggers=list(triggers.values()),
            **context,
        )

    @router.get("/console/projects/{name}/credentials")
    def credentials(
        request: Request, name: str, session: Session = signed_in
    ) -> Response:
        with pool.connection() as conn:
            context = project_context(conn, session, name, Role.ADMIN)
            rows = conn.execute(
                "SELECT c.name, c.fields, c.updated_at, c.updated_by,"
                " array_remove(array_agg(j.name ORDER BY j.name), NULL) AS jobs"
                " FROM credentials c LEFT JOIN jobs j"
                " ON j.project_id = c.project_id AND j.credential = c.name"
                " WHERE c.project_id = %s GROUP BY c.name, c.fields, c.updated_at,"
                " c.updated_by ORDER BY c.name",
                (context["project"]["id"],),
            ).fetchall()
        return render(
            request, "credentials.html", tab="credentials", credentials=rows, **context
        )

    @router.get("/console/projects/{name}/collaborators")
    def collaborators(
        request: Request, name: str, session: Session = signed_in
    ) -> Response:
        with pool.connection() as conn:
            context = project_context(conn, session, name, Role.ADMIN)
            rows = conn.execute(
                "SELECT u.username, m.role, m.added_at FROM project_members m"
                " JOIN users u ON u.id = m.user_id WHERE m.project_id = %s"
                " ORDER BY array_position(ARRAY['owner','admin','editor','viewer'],"
                " m.role), u.username",
                (context["project"]["id"],),
            ).fetchall()
        return render(
            request,
            "collaborators.html",
            tab="collaborators",
            collaborators=rows,
            roles=[Role.ADMIN.value, Role.EDITOR.value, Role.VIEWER.value],
            **context,
        )

    @router.get("/console/projects/{name}/dead-letters")
    def dead_letters(
        request: Request,
        name: str,
        redriven: bool = False,
        session: Session = signed_in,
    ) -> Response:
        with pool.connection() as conn:
            context = project_context(conn, session, name, Role.VIEWER)
            rows = conn.execute(
                "SELECT run_id, job_name, message_id, exit_code, error, attempts,"
                " dead_at, redriven_at, redriven_as FROM dead_letters"
                " WHERE project_id = %s AND (%s OR redriven_at IS NULL)"
                " ORDER BY dead_at DESC LIMIT %s",
                (context["project"]["id"], redriven, PAGE_SIZE),
            ).fetchall()
        return render(
            request,
            "dead_letters.html",
            tab="dead-letters",
            dead_letters=rows,
            redriven=redriven,
            **context,
        )

    @router.get("/console/projects/{name}/inbox-access")
    def inbox_access(
        request: Request, name: str, session: Session = signed_in
    ) -> Response:
        with pool.connection() as conn:
            context = project_context(conn, session, name, Role.ADMIN)
            rows = conn.execute(
                "SELECT id, kind, coalesce(username, name) AS name, created_at,"
                " revoked_at FROM inbox_credentials WHERE project_id = %s"
                " ORDER BY revoked_at IS NOT NULL, created_at DESC",
                (context["project"]["id"],),
            ).fetchall()
        return render(
            request,
            "inbox_access.html",
            tab="inbox-access",
            credentials=rows,
            protected=any(row["revoked_at"] is None for row in rows),
            **context,
        )

    @router.get("/console/projects/{name}/audit")
    def audit(
        request: Request,
        name: str,
        before: str | None = None,
        session: Session = signed_in,
    ) -> Response:
        older_than = _event_id(before)
        with pool.connection() as conn:
            context = project_context(conn, session, name, Role.ADMIN)
            rows = audit_page(conn, context["project"]["id"], PAGE_SIZE + 1, older_than)
        older = None
        if len(rows) > PAGE_SIZE:
            older = "?" + urlencode({"before": rows[PAGE_SIZE - 1]["id"]})
        return render(
            request,
            "audit.html",
            tab="audit",
            events=rows[:PAGE_SIZE],
            older=older,
            **context,
        )

    @router.get("/console/account")
    def account(request: Request, session: Session = signed_in) -> Response:
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT password_hash IS NOT NULL AS has_password FROM users"
                " WHERE id = %s",
                (session.user.id,),
            ).fetchone()
            tokens = conn.execute(
                "SELECT id, name, created_at, last_used_at FROM api_tokens"
                " WHERE user_id = %s ORDER BY created_at, id",
                (session.user.id,),
            ).fetchall()
        return render(
            request,
            "account.html",
            has_password=bool(row and row["has_password"]),
            tokens=tokens,
        )

    return router


def _older_link(
    query: dict[str, str | None], rows: list[dict[str, Any]], size: int
) -> str | None:
    """The query string of the next, older page; None on the last page."""
    if len(rows) <= size:
        return None
    kept = {key: value for key, value in query.items() if value}
    return "?" + urlencode({**kept, "before": str(rows[size - 1]["id"])})


def _last_message_at(conn: Connection[Any], project_id: UUID) -> datetime | None:
    row = conn.execute(
        "SELECT received_at FROM messages WHERE project_id = %s"
        " ORDER BY received_at DESC LIMIT 1",
        (project_id,),
    ).fetchone()
    return row["received_at"] if row else None


def _inbox_protected(conn: Connection[Any], project_id: UUID) -> bool:
    """Whether posting to the project's inbox needs a credential."""
    row = conn.execute(
        "SELECT 1 FROM inbox_credentials WHERE project_id = %s"
        " AND revoked_at IS NULL LIMIT 1",
        (project_id,),
    ).fetchone()
    return row is not None


def _project_name(conn: Connection[Any], project_id: UUID) -> str:
    row = conn.execute(
        "SELECT name FROM projects WHERE id = %s", (project_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError("project", project_id)
    name: str = row["name"]
    return name


@cache
def _installed_version(adaptor: str) -> str | None:
    """An adaptor's version; the installed packages do not change while serving."""
    try:
        return adaptor_version(adaptor)
    except PlatformError:
        return None
