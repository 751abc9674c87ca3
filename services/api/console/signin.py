"""Signing in to the console and out of it.

Sign-in takes a username and password, or an API token. Its form carries a
CSRF token of its own, checked against a short-lived cookie (the browser has no
session yet), so another site cannot sign a browser in to an account of its
choosing.

Wrong passwords slow guessing down. After ``FREE_FAILURES`` in a row for one
username, known or not, from one client address, that address is refused the
username for a while without a check, the wait doubling with each further
failure up to ``LONGEST_LOCK``. Someone guessing from one address therefore
does not lock the owner out; only ``FREE_FAILURES_PER_USERNAME`` failures
from all addresses together lock the username for everyone, which bounds what
many addresses can guess.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api.console.render import SECURITY_HEADERS, render
from services.api.sessions import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SessionPolicy,
    csrf_matches,
    end_session,
    find_session,
    start_session,
)
from shared.auth import User, authenticate, authenticate_password
from shared.logging import get_logger

log = get_logger(__name__)

SIGN_IN_PATH = "/console/sign-in"
HOME_PATH = "/console/projects"
_SIGN_IN_COOKIE = "ofn_sign_in"
_SIGN_IN_COOKIE_S = 3600
FREE_FAILURES = 5
FREE_FAILURES_PER_USERNAME = 50
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(minutes=15)
FAILURES_KEPT = timedelta(days=1)
"""Failures older than this are forgotten."""


@dataclass(frozen=True)
class Locked:
    """Sign-in for a username is refused for ``wait``."""

    wait: timedelta


def lock_remaining(
    failures: int,
    last_failure_at: datetime,
    now: datetime,
    free: int = FREE_FAILURES,
) -> timedelta:
    """How much longer sign-in waits after ``failures``, the first ``free`` of
    them costing nothing; zero for no wait."""
    if failures < free:
        return timedelta(0)
    doublings = min(failures - free, 16)
    lock: timedelta = min(FIRST_LOCK * (1 << doublings), LONGEST_LOCK)
    remaining: timedelta = last_failure_at + lock - now
    return max(remaining, timedelta(0))


def password_sign_in(
    conn: Connection[Any], username: str, password: str, client: str, now: datetime
) -> User | Locked | None:
    """The user, if the password is theirs and the username is not locked for
    ``client`` (the address the attempt came from) or for everyone."""
    wait = _lock_for(conn, username, client, now)
    if wait:
        return Locked(wait)
    user = authenticate_password(conn, username, password)
    with conn.transaction():
        if user is not None:
            # Only this address's count: failures from elsewhere still count
            # towards the username's allowance.
            conn.execute(
                "DELETE FROM sign_in_failures WHERE username = %s AND client = %s",
                (username, client),
            )
            return user
        conn.execute(
            "INSERT INTO sign_in_failures"
            " (username, client, failures, last_failure_at)"
            " VALUES (%s, %s, 1, %s) ON CONFLICT (username, client) DO UPDATE"
            " SET failures = sign_in_failures.failures + 1,"
            " last_failure_at = excluded.last_failure_at",
            (username, client, now),
        )
        conn.execute(
            "DELETE FROM sign_in_failures WHERE last_failure_at < %s",
            (now - FAILURES_KEPT,),
        )
    return None


def _lock_for(
    conn: Connection[Any], username: str, client: str, now: datetime
) -> timedelta:
    """The longer of the username's wait for ``client`` and for everyone."""
    row = conn.execute(
        "SELECT coalesce(sum(failures), 0) AS failures,"
        " max(last_failure_at) AS last_failure_at,"
        " coalesce(sum(failures) FILTER (WHERE client = %s), 0) AS mine,"
        " max(last_failure_at) FILTER (WHERE client = %s) AS my_last"
        " FROM sign_in_failures WHERE username = %s",
        (client, client, username),
    ).fetchone()
    if row is None or not row["failures"]:
        return timedelta(0)
    everyone = lock_remaining(
        row["failures"], row["last_failure_at"], now, FREE_FAILURES_PER_USERNAME
    )
    if not row["mine"]:
        return everyone
    return max(everyone, lock_remaining(row["mine"], row["my_last"], now))


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a console page of this site."""
    if not target:
        return HOME_PATH
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return HOME_PATH
    if "\\" in target or target.startswith("//"):
        return HOME_PATH
    return target


def is_secure(request: Request, policy: SessionPolicy) -> bool:
    """Whether cookies for this request get the Secure attribute."""
    if policy.secure_cookie is not None:
        return policy.secure_cookie
    return request.url.scheme == "https"


def sign_in_routes(
    pool: ConnectionPool[Connection[Any]], policy: SessionPolicy
) -> APIRouter:
    """The sign-in page, its form, and sign-out."""
    router = APIRouter(include_in_schema=False)

    def sign_in_page(
        request: Request,
        next_url: str,
        status_code: int = 200,
        problem: str | None = None,
        username: str = "",
    ) -> Response:
        form_token = secrets.token_urlsafe(32)
        page = render(
            request,
            "sign_in.html",
            status_code,
            form_token=form_token,
            next_url=next_url,
            problem=problem,
            username=username,
        )
        page.set_cookie(
            _SIGN_IN_COOKIE,
            form_token,
            max_age=_SIGN_IN_COOKIE_S,
            path=SIGN_IN_PATH,
            httponly=True,
            samesite="strict",
            secure=is_secure(request, policy),
        )
        return page

    @router.get(SIGN_IN_PATH)
    def show(request: Request, next: str | None = None) -> Response:
        return sign_in_page(request, safe_next(next))

    @router.post(SIGN_IN_PATH)
    async def sign_in(request: Request) -> Response:
        form = await request.form()
        fields = {key: str(value) for key, value in form.items()}
        next_url = safe_next(fields.get("next"))
        expected = request.cookies.get(_SIGN_IN_COOKIE)
        presented = fields.get(CSRF_FIELD, "")
        if not expected or not secrets.compare_digest(expected, presented):
            return sign_in_page(
                request,
                next_url,
                400,
                "The sign-in form expired; please sign in again.",
            )
        username = fields.get("username", "").strip().lower()
        client = request.client.host if request.client else ""
        user = await run_in_threadpool(
            check_credentials, username, fields.get("password", ""), client, fields
        )
        if isinstance(user, Locked):
            log.warning("console.sign_in_locked", username=username, client=client)
            wait_s = max(1, round(user.wait.total_seconds()))
            page = sign_in_page(
                request,
                next_url,
                429,
                f"Too many wrong passwords for {username}; try again in {wait_s} s.",
                username,
            )
            page.headers["retry-after"] = str(wait_s)
            return page
        if user is None:
            log.info(
                "console.sign_in_refused", username=username or None, client=client
            )
            problem = (
                "That API token is unknown or revoked."
                if fields.get("token", "").strip()
                else "The username or password is wrong."
            )
            return sign_in_page(request, next_url, 401, problem, username)
        with pool.connection() as conn:
            previous = request.cookies.get(SESSION_COOKIE)
            if previous:
                # Whoever this browser was signed in as before is signed out.
                end_session(conn, previous)
            started = start_session(conn, user, policy, datetime.now(UTC))
        log.info("console.signed_in", username=user.username)
        response = RedirectResponse(next_url, 303, headers=SECURITY_HEADERS)
        response.set_cookie(
            SESSION_COOKIE,
            started.cookie,
            max_age=int(policy.lifetime.total_seconds()),
            path="/",
            httponly=True,
            samesite="lax",
            secure=is_secure(request, policy),
        )
        response.delete_cookie(_SIGN_IN_COOKIE, path=SIGN_IN_PATH)
        return response

    def check_credentials(
        username: str, password: str, client: str, fields: dict[str, str]
    ) -> User | Locked | None:
        token = fields.get("token", "").strip()
        now = datetime.now(UTC)
        with pool.connection() as conn:
            if token:
                return authenticate(conn, token, now)
            if not username or not password:
                return None
            return password_sign_in(conn, username, password, client, now)

    @router.post("/console/sign-out")
    async def sign_out(request: Request) -> Response:
        form = await request.form()
        cookie = request.cookies.get(SESSION_COOKIE)
        response = RedirectResponse(SIGN_IN_PATH, 303, headers=SECURITY_HEADERS)
        if cookie:
            with pool.connection() as conn:
                session = find_session(conn, cookie, policy, datetime.now(UTC))
                presented = form.get(CSRF_FIELD)
                if session is not None and not csrf_matches(
                    session, presented if isinstance(presented, str) else None
                ):
                    return render(
                        request,
                        "error.html",
                        403,
                        title="Not signed out",
                        message="The sign-out form expired; reload the page and"
                        " try again.",
                    )
                end_session(conn, cookie)
            if session is not None:
                log.info("console.signed_out", username=session.user.username)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router
