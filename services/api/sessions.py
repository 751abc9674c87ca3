"""Console sessions: a signed-in browser's cookie, and its CSRF token.

The cookie holds a random session id; the database keeps only its SHA-256
hash. A session ends when its user signs out, changes password, has been idle
for ``idle`` or has lasted ``lifetime``. Each session has its own CSRF token,
which every form and every state-changing API call made with the cookie must
carry back: another site can make a browser send the cookie, but cannot read
the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection

from shared.auth import User

SESSION_COOKIE = "ofn_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SEEN_RESOLUTION = timedelta(minutes=1)
"""A session's last use is written at most this often."""


@dataclass(frozen=True)
class SessionPolicy:
    """How long sessions last and how their cookie is sent."""

    idle: timedelta
    lifetime: timedelta
    secure_cookie: bool | None
    """True or False to decide; None to set Secure when the request came over TLS."""


@dataclass(frozen=True)
class Session:
    """A signed-in browser."""

    user: User
    csrf_token: str


@dataclass(frozen=True)
class NewSession:
    """A session just started: ``cookie`` goes to the browser, once."""

    cookie: str
    session: Session
    expires_at: datetime


def _hash(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode()).digest()


def start_session(
    conn: Connection[Any], user: User, policy: SessionPolicy, now: datetime
) -> NewSession:
    """Sign a user in: a new session, and the cookie that names it."""
    cookie = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    expires_at = now + min(policy.idle, policy.lifetime)
    with conn.transaction():
        # Sweeping here keeps the table as small as the live sessions.
        conn.execute("DELETE FROM console_sessions WHERE expires_at <= %s", (now,))
        conn.execute(
            "INSERT INTO console_sessions"
            " (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (_hash(cookie), user.id, csrf_token, now, now, expires_at),
        )
    return NewSession(cookie, Session(user, csrf_token), expires_at)


def find_session(
    conn: Connection[Any], cookie: str, policy: SessionPolicy, now: datetime
) -> Session | None:
    """The live session a cookie names; None for an unknown or ended one.

    Using a session moves its idle expiry on, never past its lifetime.
    """
    row = conn.execute(
        "SELECT s.csrf_token, s.created_at, s.last_seen_at, s.expires_at,"
        " u.id, u.username, u.is_admin"
        " FROM console_sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id_hash = %s",
        (_hash(cookie),),
    ).fetchone()
    if row is None or row["expires_at"] <= now:
        return None
    if now - row["last_seen_at"] >= SEEN_RESOLUTION:
        conn.execute(
            "UPDATE console_sessions SET last_seen_at = %s, expires_at = %s"
            " WHERE id_hash = %s",
            (
                now,
                min(now + policy.idle, row["created_at"] + policy.lifetime),
                _hash(cookie),
            ),
        )
    return Session(User(row["id"], row["username"], row["is_admin"]), row["csrf_token"])


def end_session(conn: Connection[Any], cookie: str) -> None:
    """Sign a browser out."""
    conn.execute("DELETE FROM console_sessions WHERE id_hash = %s", (_hash(cookie),))


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Whether a request carried its session's CSRF token."""
    return presented is not None and hmac.compare_digest(
        session.csrf_token.encode(), presented.encode()
    )
