"""Who is calling and what they may do: the bearer-token check and project roles.

A caller authenticates with an API token, or, from the console, with its
session cookie; a cookie-authenticated request that changes anything must also
carry the session's CSRF token in the ``X-CSRF-Token`` header.

A caller who is not in a project learns nothing of it: the project, its
messages, runs and dead letters answer 404 exactly as if they did not exist.
A collaborator whose role is too low gets 403. Site admins act as owners of
every project.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import Connection

from services.api import queries
from services.api.collaborators import collaborator_role
from services.api.http_errors import NotFoundError, api_error
from services.api.sessions import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    csrf_matches,
    find_session,
)
from shared.auth import Role, User, authenticate

bearer = HTTPBearer(
    auto_error=False,
    description="An API token, `ofn_…`: from `POST /api/tokens`, or for the first "
    "admin from `openfn admin create-token`.",
)


def unauthenticated(message: str) -> HTTPException:
    """The 401 answer, which tells clients how to authenticate."""
    return api_error(
        401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"}
    )


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The caller, from the request's bearer token or console session.

    Raises:
        HTTPException: 401 without a valid token or session; 403 for a
            session's change that lacks its CSRF token.
    """
    now = datetime.now(UTC)
    cookie = request.cookies.get(SESSION_COOKIE)
    if credentials is None and cookie:
        with request.app.state.pool.connection() as conn:
            session = find_session(conn, cookie, request.app.state.sessions, now)
        if session is not None:
            if request.method not in SAFE_METHODS and not csrf_matches(
                session, request.headers.get(CSRF_HEADER)
            ):
                raise api_error(
                    403,
                    "csrf_token_missing",
                    "a change made with a console session needs its CSRF token"
                    " in the X-CSRF-Token header",
                )
            return session.user
    if credentials is None:
        raise unauthenticated(
            "an API token is required: send 'Authorization: Bearer <token>'"
        )
    with request.app.state.pool.connection() as conn:
        user = authenticate(conn, credentials.credentials, now)
    if user is None:
        raise unauthenticated("the API token is unknown or revoked")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
"""A route parameter of this type makes the route need a valid token."""


def role_in(conn: Connection[Any], user: User, project_id: UUID) -> Role | None:
    """The user's role in a project; None for an outsider."""
    if user.is_admin:
        return Role.OWNER
    return collaborator_role(conn, project_id, user.id)


def require_role(
    conn: Connection[Any],
    user: User,
    project_id: UUID,
    minimum: Role,
    hidden: HTTPException,
) -> Role:
    """The user's role in a project, if it includes ``minimum``.

    Raises:
        HTTPException: ``hidden`` (a 404 for what was asked) for an outsider;
            a 403 ``forbidden`` for a collaborator with a lower role.
    """
    role = role_in(conn, user, project_id)
    if role is None:
        raise hidden
    if not role.includes(minimum):
        raise api_error(
            403,
            "forbidden",
            f"this needs the {minimum} role or above in the project; you are {role}",
            project_id=str(project_id),
            role=role,
            required_role=minimum,
        )
    return role


def require_project(
    conn: Connection[Any], user: User, name: str, minimum: Role
) -> queries.Row:
    """The project named ``name`` if the user's role in it includes ``minimum``.

    An outsider gets the same 404 as for a project that does not exist.
    """
    missing = NotFoundError("project", name)
    project = queries.find_project(conn, name)
    if project is None:
        raise missing
    require_role(conn, user, project["id"], minimum, missing)
    return project
