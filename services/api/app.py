"""HTTP routes of the API: deploy a project, read its inbox, receipts and runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from http import HTTPStatus
from typing import Annotated, Any
from uuid import UUID

from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from psycopg import Connection, DataError
from psycopg_pool import ConnectionPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api import queries
from services.api.abort_routes import abort_routes
from services.api.access import CurrentUser, require_project, require_role
from services.api.audit_routes import audit_routes
from services.api.collaborator_routes import collaborator_routes
from services.api.collaborators import add_collaborator
from services.api.console import error_page, install_console, is_console_page
from services.api.credential_routes import credential_routes
from services.api.dead_letter_routes import dead_letter_routes
from services.api.deploy import deploy_project, sets_credentials
from services.api.export import export_routes
from services.api.history_routes import history_routes
from services.api.http_errors import NotFoundError
from services.api.inbox_auth_routes import inbox_auth_routes
from services.api.job_routes import job_routes
from services.api.run_routes import run_routes
from services.api.schemas import (
    ErrorBody,
    MessagePage,
    MessageSummary,
    ProjectOut,
    Receipt,
    RunOut,
)
from services.api.settings import ApiSettings
from services.api.user_routes import user_routes
from shared.auth import Role, User
from shared.errors import InvalidProjectError
from shared.kafka import AsyncProducer
from shared.logging import get_logger
from shared.project_file import PROJECT_NAME_PATTERN, ProjectDocument
from shared.vault import VaultClient, VaultUnavailableError

log = get_logger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API token."},
    403: {"model": ErrorBody, "description": "Your role in the project is too low."},
    404: {"model": ErrorBody, "description": "Not found, or not in your projects."},
}


def create_app(
    settings: ApiSettings,
    pool: ConnectionPool[Connection[Any]],
    vault: VaultClient,
    producer: AsyncProducer,
) -> FastAPI:
    """The API's ASGI application, reading and writing through ``pool``.

    Runs it starts (re-runs, reprocessing, run now) are written through
    ``producer``. Every ``/api`` route needs a bearer token; see
    ``services.api.access``.
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(producer.close)
        pool.close()

    app = FastAPI(
        title="Integration platform API",
        summary="Deploy projects; read messages, job states, receipts and runs.",
        version="1",
        lifespan=lifespan,
    )
    # The authentication dependency finds the pool here.
    app.state.pool = pool

    @contextmanager
    def connection() -> Iterator[Connection[Any]]:
        with pool.connection() as conn:
            yield conn

    def project_out(conn: Connection[Any], row: dict[str, Any]) -> ProjectOut:
        return ProjectOut(
            **row,
            inbox_url=f"{settings.inbox_public_url.rstrip('/')}/inbox/{row['inbox_id']}",
            jobs=queries.project_jobs(conn, row["id"]),
            triggers=queries.project_triggers(conn, row["id"]),
        )

    # Starlette's class, so the framework's own refusals (an unparsable body,
    # an unknown path or method) get the one error shape too.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_console_page(request):
            return error_page(request, exc.status_code, exc.detail)
        detail: Any = exc.detail
        if not isinstance(detail, dict):
            detail = {"code": to_error_code(exc.status_code), "message": str(detail)}
        return JSONResponse(detail, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(
        request: Request, exc: RequestValidationError
    ) -> Response:
        if is_console_page(request):
            # A page's address with a malformed id names nothing.
            return error_page(request, 404, "there is no such page")
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return JSONResponse(
            {
                "code": "invalid_request",
                "message": "the request is not valid",
                "problems": problems,
            },
            status_code=422,
        )

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL refused a value the request carried (a NUL byte, a
        # number out of range): the caller's mistake, so a 422, but logged in
        # case a route should have validated it first.
        log.warning(
            "request.value_refused",
            path=request.url.path,
            sqlstate=exc.sqlstate,
            error=str(exc),
        )
        return JSONResponse(
            {
                "code": "invalid_value",
                "message": "a value in the request cannot be stored",
                "problems": [exc.diag.message_primary or str(exc)],
            },
            status_code=422,
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        try:
            with connection() as conn:
                conn.execute("SELECT 1")
        except Exception as exc:
            return JSONResponse(
                {"code": "not_ready", "message": str(exc)}, status_code=503
            )
        return JSONResponse({"status": "ready"})

    @app.put(
        "/api/projects/{name}",
        response_model=ProjectOut,
        responses={
            **_ERRORS,
            200: {"description": "The project was updated."},
            201: {"description": "The project was created; you are its owner."},
            413: {"model": ErrorBody, "description": "The document is too large."},
            422: {"model": ErrorBody, "description": "The project.yaml was refused."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The project.yaml to deploy.",
                "content": {"application/yaml": {"schema": {"type": "string"}}},
            }
        },
    )
    async def deploy(
        name: Annotated[str, Path(pattern=PROJECT_NAME_PATTERN)],
        request: Request,
        user: CurrentUser,
    ) -> JSONResponse:
        """Create or update a project from its project.yaml.

        Anyone may create a project and becomes its owner; updating one needs
        the editor role, or admin when the document sets credential values.
        """
        raw = await request.body()
        if len(raw) > settings.project_max_bytes:
            raise HTTPException(
                413,
                {"code": "document_too_large", "message": "project.yaml is too large"},
            )
        filename = request.headers.get("x-filename", "project.yaml")
        return await run_in_threadpool(deploy_document, user, name, raw, filename)

    def deploy_document(
        user: User, name: str, raw: bytes, filename: str
    ) -> JSONResponse:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(
                422, {"code": "invalid_project", "message": "project.yaml is not UTF-8"}
            ) from None

        def authorize(
            conn: Connection[Any],
            project_id: UUID,
            created: bool,
            document: ProjectDocument,
        ) -> None:
            if created:
                add_collaborator(conn, project_id, user.id, Role.OWNER)
                return
            minimum = Role.ADMIN if sets_credentials(document) else Role.EDITOR
            require_role(
                conn, user, project_id, minimum, NotFoundError("project", name)
            )

        with connection() as conn:
            try:
                project_id, created = deploy_project(
                    conn, vault, name, text, filename, authorize, actor=user.username
                )
            except VaultUnavailableError as exc:
                raise HTTPException(
                    503,
                    {"code": "vault_unavailable", "message": str(exc)},
                    headers={"Retry-After": "5"},
                ) from exc
            except InvalidProjectError as exc:
                raise HTTPException(
                    422,
                    {
                        "code": "invalid_project",
                        "message": "the project was not deployed",
                        "problems": exc.problems,
                    },
                ) from exc
            out = project_out(conn, require_project(conn, user, name, Role.VIEWER))
        log.info(
            "project.deployed",
            project_id=str(project_id),
            project=name,
            created=created,
            user=user.username,
        )
        return JSONResponse(
            out.model_dump(mode="json"), status_code=201 if created else 200
        )

    @app.get("/api/projects", response_model=list[ProjectOut], responses=_ERRORS)
    def list_projects(user: CurrentUser) -> list[ProjectOut]:
        """The projects you collaborate on (site admins: every project)."""
        member = None if user.is_admin else user.id
        with connection() as conn:
            return [
                project_out(conn, row) for row in queries.list_projects(conn, member)
            ]

    @app.get("/api/projects/{name}", response_model=ProjectOut, responses=_ERRORS)
    def get_project(name: str, user: CurrentUser) -> ProjectOut:
        """A project with its inbox URL, jobs and triggers."""
        with connection() as conn:
            return project_out(conn, require_project(conn, user, name, Role.VIEWER))

    @app.get(
        "/api/projects/{name}/messages", response_model=MessagePage, responses=_ERRORS
    )
    def list_messages(
        name: str,
        user: CurrentUser,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: UUID | None = None,
    ) -> MessagePage:
        """The inbox: messages newest first, each with one job state per job."""
        with connection() as conn:
            project = require_project(conn, user, name, Role.VIEWER)
            rows = queries.message_page(conn, project["id"], limit + 1, before)
        page = [MessageSummary.model_validate(row) for row in rows[:limit]]
        return MessagePage(
            messages=page, next_before=page[-1].id if len(rows) > limit else None
        )

    @app.get("/api/messages/{message_id}", response_model=Receipt, responses=_ERRORS)
    def get_receipt(message_id: UUID, user: CurrentUser) -> Receipt:
        """A message's receipt: its body, headers, job states and every run."""
        missing = NotFoundError("message", message_id)
        with connection() as conn:
            message = queries.find_message(conn, message_id)
            if message is None:
                raise missing
            require_role(conn, user, message["project_id"], Role.VIEWER, missing)
            states = queries.job_states(conn, [message_id]).get(message_id, [])
            runs = queries.message_runs(conn, message_id)
        return Receipt(**message, job_states=states, runs=runs)

    @app.get("/api/runs/{run_id}", response_model=RunOut, responses=_ERRORS)
    def get_run(run_id: UUID, user: CurrentUser) -> RunOut:
        """A run with its logs, input state and final state."""
        missing = NotFoundError("run", run_id)
        with connection() as conn:
            run = queries.find_run(conn, run_id)
            if run is None:
                raise missing
            require_role(conn, user, run["project_id"], Role.VIEWER, missing)
        return RunOut.model_validate(run)

    app.include_router(user_routes(pool))
    app.include_router(collaborator_routes(pool, vault))
    app.include_router(credential_routes(pool, vault))
    app.include_router(inbox_auth_routes(pool, vault))
    app.include_router(job_routes(pool, vault))
    app.include_router(export_routes(pool))
    app.include_router(run_routes(settings, pool, producer))
    app.include_router(abort_routes(pool))
    app.include_router(dead_letter_routes(settings, pool, producer))
    app.include_router(history_routes(settings, pool))
    app.include_router(audit_routes(pool))
    install_console(app, settings, pool)
    # Replacing the method is FastAPI's documented way to adjust the document.
    app.openapi = partial(_openapi_with_one_error_shape, app)  # type: ignore[method-assign]
    return app


def _openapi_with_one_error_shape(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with request-validation errors in the API's one shape.

    FastAPI documents its own ``{"detail": [...]}`` body for 422, but the
    API's handler answers ``{"code", "message", "problems"}``.
    """
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        schemas = document.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = ErrorBody.model_json_schema()
            schemas.pop("ValidationError", None)
        app.openapi_schema = document
    return app.openapi_schema


def to_error_code(status: int) -> str:
    """An error code from an HTTP status: 405 gives ``method_not_allowed``."""
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"
