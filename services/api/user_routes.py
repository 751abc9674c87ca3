"""HTTP routes for users, their passwords and API tokens: who you are, new
users, passwords for the console, tokens.

A token's secret is answered once, when it is issued; listings show its id,
name and times only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api.access import CurrentUser
from services.api.audit import record_audit
from services.api.http_errors import NotFoundError, api_error
from services.api.schemas import (
    ErrorBody,
    MeOut,
    PasswordIn,
    TokenIn,
    TokenIssued,
    TokenOut,
    UserIn,
    UserOut,
)
from shared.auth import (
    User,
    UserExistsError,
    authenticate_password,
    create_token,
    create_user,
    find_user,
    set_password,
)
from shared.logging import get_logger

log = get_logger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API token."},
    403: {"model": ErrorBody, "description": "Site admins only."},
    404: {"model": ErrorBody, "description": "No such user or token of yours."},
    409: {"model": ErrorBody, "description": "The username is taken."},
}


def _require_site_admin(user: User, action: str) -> None:
    if not user.is_admin:
        raise api_error(403, "forbidden", f"only site admins may {action}")


def user_routes(pool: ConnectionPool[Connection[Any]]) -> APIRouter:
    """The routes of users and tokens, reading and writing through ``pool``."""
    router = APIRouter()

    @router.get("/api/me", response_model=MeOut, responses=_ERRORS)
    def me(user: CurrentUser) -> MeOut:
        """You, and your role in each project you collaborate on."""
        with pool.connection() as conn:
            rows = conn.execute(
                "SELECT p.name AS project, m.role FROM project_members m"
                " JOIN projects p ON p.id = m.project_id"
                " WHERE m.user_id = %s ORDER BY p.name",
                (user.id,),
            ).fetchall()
        return MeOut(
            id=user.id, username=user.username, is_admin=user.is_admin, projects=rows
        )

    @router.post(
        "/api/users", status_code=201, response_model=UserOut, responses=_ERRORS
    )
    def add_user(body: UserIn, user: CurrentUser) -> UserOut:
        """Add a user (site admins only); give them a token with POST /api/tokens."""
        _require_site_admin(user, "add users")
        with pool.connection() as conn:
            try:
                with conn.transaction():
                    added = create_user(conn, body.username, is_admin=body.is_admin)
                    record_audit(
                        conn,
                        user.username,
                        "user.created",
                        None,
                        added.username,
                        {"is_admin": added.is_admin},
                    )
            except UserExistsError as exc:
                raise api_error(
                    409, "user_exists", str(exc), username=body.username
                ) from exc
        log.info("user.created", username=added.username, by=user.username)
        return UserOut(id=added.id, username=added.username, is_admin=added.is_admin)

    @router.put(
        "/api/me/password",
        status_code=204,
        response_class=Response,
        responses=_ERRORS,
    )
    def set_own_password(body: PasswordIn, user: CurrentUser) -> None:
        """Set or change your password for the console; ends your console sessions.

        Once you have a password, changing it needs the current one.
        """
        with pool.connection() as conn:
            has_password = conn.execute(
                "SELECT password_hash IS NOT NULL AS set FROM users WHERE id = %s",
                (user.id,),
            ).fetchone()
            if (
                has_password
                and has_password["set"]
                and (
                    body.current_password is None
                    or authenticate_password(conn, user.username, body.current_password)
                    is None
                )
            ):
                raise api_error(
                    403,
                    "current_password_wrong",
                    "the current password is missing or wrong",
                )
            store_password(conn, user, user, body.new_password)

    @router.put(
        "/api/users/{username}/password",
        status_code=204,
        response_class=Response,
        responses=_ERRORS,
    )
    def set_user_password(username: str, body: PasswordIn, user: CurrentUser) -> None:
        """Set a user's password (site admins only); ends their console sessions."""
        _require_site_admin(user, "set other users' passwords")
        with pool.connection() as conn:
            target = find_user(conn, username)
            if target is None:
                raise NotFoundError("user", username)
            store_password(conn, user, target, body.new_password)

    def store_password(
        conn: Connection[Any], actor: User, target: User, password: str
    ) -> None:
        with conn.transaction():
            set_password(conn, target.id, password)
            record_audit(
                conn, actor.username, "user.password_set", None, target.username, {}
            )
        log.info("user.password_set", username=target.username, by=actor.username)

    @router.post(
        "/api/tokens", status_code=201, response_model=TokenIssued, responses=_ERRORS
    )
    def issue_token(body: TokenIn, user: CurrentUser) -> TokenIssued:
        """Issue a token: the answer is the only time its secret is shown."""
        with pool.connection() as conn:
            owner = user
            if body.username is not None and body.username != user.username:
                _require_site_admin(user, "issue tokens for other users")
                found = find_user(conn, body.username)
                if found is None:
                    raise NotFoundError("user", body.username)
                owner = found
            with conn.transaction():
                issued = create_token(conn, owner.id, body.name)
                record_audit(
                    conn,
                    user.username,
                    "token.issued",
                    None,
                    issued.id,
                    {"username": owner.username, "name": issued.name},
                )
        log.info(
            "token.issued", token_id=issued.id, user=owner.username, by=user.username
        )
        return TokenIssued(
            id=issued.id,
            name=issued.name,
            username=owner.username,
            token=issued.token,
            created_at=issued.created_at,
        )

    @router.get("/api/tokens", response_model=list[TokenOut], responses=_ERRORS)
    def list_tokens(user: CurrentUser) -> list[TokenOut]:
        """Your tokens, oldest first, without their secrets."""
        with pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, name, created_at, last_used_at FROM api_tokens"
                " WHERE user_id = %s ORDER BY created_at, id",
                (user.id,),
            ).fetchall()
        return [TokenOut.model_validate(row) for row in rows]

    @router.delete(
        "/api/tokens/{token_id}",
        status_code=204,
        response_class=Response,
        responses=_ERRORS,
    )
    def revoke_token(token_id: str, user: CurrentUser) -> None:
        """Revoke one of your tokens (site admins: anyone's); it stops working now."""
        with pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "DELETE FROM api_tokens t USING users u WHERE t.id = %s"
                " AND u.id = t.user_id AND (t.user_id = %s OR %s)"
                " RETURNING u.username",
                (token_id, user.id, user.is_admin),
            ).fetchone()
            if row is None:
                raise NotFoundError("token", token_id)
            record_audit(
                conn,
                user.username,
                "token.revoked",
                None,
                token_id,
                {"username": row["username"]},
            )
        log.info("token.revoked", token_id=token_id, by=user.username)

    return router
