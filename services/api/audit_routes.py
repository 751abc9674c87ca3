"""HTTP routes that read the audit log: a project's (admins) and everyone's."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api.access import CurrentUser, require_project
from services.api.audit import audit_page
from services.api.http_errors import api_error
from services.api.schemas import AuditEventOut, AuditPage, ErrorBody
from shared.auth import Role

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API token."},
    403: {"model": ErrorBody, "description": "The audit log needs the admin role."},
    404: {"model": ErrorBody, "description": "No such project of yours."},
}

Limit = Annotated[int, Query(ge=1, le=500)]
Before = Annotated[int | None, Query(description="An event id from next_before.")]


def audit_routes(pool: ConnectionPool[Connection[Any]]) -> APIRouter:
    """The audit log's routes, reading through ``pool``."""
    router = APIRouter()

    def page(project_id: UUID | None, limit: int, before: int | None) -> AuditPage:
        with pool.connection() as conn:
            rows = audit_page(conn, project_id, limit + 1, before)
        events = [AuditEventOut.model_validate(row) for row in rows[:limit]]
        return AuditPage(
            events=events, next_before=events[-1].id if len(rows) > limit else None
        )

    @router.get(
        "/api/projects/{name}/audit", response_model=AuditPage, responses=_ERRORS
    )
    def project_audit(
        name: str, user: CurrentUser, limit: Limit = 50, before: Before = None
    ) -> AuditPage:
        """The project's audit log, newest first (admins and the owner)."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.ADMIN)
        return page(project["id"], limit, before)

    @router.get("/api/audit", response_model=AuditPage, responses=_ERRORS)
    def site_audit(
        user: CurrentUser, limit: Limit = 50, before: Before = None
    ) -> AuditPage:
        """Every event, users', tokens' and deleted projects' too (site admins)."""
        if not user.is_admin:
            raise api_error(403, "forbidden", "only site admins may read every event")
        return page(None, limit, before)

    return router
