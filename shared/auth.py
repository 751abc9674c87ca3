"""Users, API tokens, passwords and project roles, shared by the API, the CLI
and the stack.

A token reads ``ofn_<id>_<secret>``. The id is public and finds the token's
row; the database keeps only a SHA-256 hash of the whole token, compared in
constant time, so a leaked table gives no usable token. Passwords, which
people choose and may reuse, are kept as Argon2id hashes: memory-hard, so
guessing them from a leaked table is slow even on special hardware.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import Connection
from psycopg.errors import UniqueViolation

from shared.errors import PlatformError

TOKEN_PREFIX = "ofn"  # noqa: S105 - the public start of every token, not a secret
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""A token's last use is written at most this often, not on every request."""

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 1024
"""Longer than this is refused rather than hashed: hashing is the costly part."""

# Argon2id with the library's defaults, RFC 9106's second recommended profile
# (64 MiB, 3 passes); hashes record their parameters, so raising them later
# re-hashes each password at its next successful sign-in.
_HASHER = PasswordHasher()

_TOKEN_ID_BYTES = 6
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{{2 * _TOKEN_ID_BYTES}}})_[\w-]+$")


class Role(StrEnum):
    """A collaborator's role in a project; each includes those below it."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"
    OWNER = "owner"

    def includes(self, other: Role) -> bool:
        """Whether this role may do everything ``other`` may."""
        order = list(Role)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True)
class User:
    """Who is calling: a person or a machine with its own tokens."""

    id: UUID
    username: str
    is_admin: bool
    """A site admin sees and does everything, in every project."""


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``token`` is shown once and never stored."""

    id: str
    name: str
    token: str
    created_at: datetime


class UserExistsError(PlatformError):
    """A user of that name exists already."""


class InvalidUsernameError(PlatformError):
    """A username that breaks ``USERNAME_PATTERN``."""


class InvalidPasswordError(PlatformError):
    """A password too short or too long to be set."""


def new_token() -> tuple[str, str]:
    """A fresh random token and its public id: ``(id, token)``."""
    token_id = secrets.token_hex(_TOKEN_ID_BYTES)
    return token_id, f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"


def token_id_of(token: str) -> str | None:
    """The public id of a well-formed token; None for anything else."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def hash_token(token: str) -> bytes:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).digest()


def is_last_use_stale(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether a use at ``now`` should be written down."""
    return last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION


def create_user(conn: Connection[Any], username: str, *, is_admin: bool) -> User:
    """Add a user.

    Raises:
        InvalidUsernameError: ``username`` breaks ``USERNAME_PATTERN``.
        UserExistsError: the name is taken.
    """
    if not re.match(USERNAME_PATTERN, username):
        raise InvalidUsernameError(
            f"username {username!r} must be 1-63 lower-case letters, digits,"
            " '.', '_' or '-', starting with a letter or digit"
        )
    user = User(uuid.uuid4(), username, is_admin)
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO users (id, username, is_admin) VALUES (%s, %s, %s)",
                (user.id, username, is_admin),
            )
    except UniqueViolation as exc:
        raise UserExistsError(f"user {username!r} exists already") from exc
    return user


def find_user(conn: Connection[Any], username: str) -> User | None:
    """The user named ``username``, if any."""
    row = conn.execute(
        "SELECT id, username, is_admin FROM users WHERE username = %s", (username,)
    ).fetchone()
    return User(row["id"], row["username"], row["is_admin"]) if row else None


def create_token(conn: Connection[Any], user_id: UUID, name: str) -> IssuedToken:
    """Issue a token for a user; only its hash is stored."""
    token_id, token = new_token()
    row = conn.execute(
        "INSERT INTO api_tokens (id, user_id, name, token_hash)"
        " VALUES (%s, %s, %s, %s) RETURNING created_at",
        (token_id, user_id, name, hash_token(token)),
    ).fetchone()
    assert row is not None  # RETURNING always yields the row
    return IssuedToken(token_id, name, token, row["created_at"])


def authenticate(conn: Connection[Any], token: str, now: datetime) -> User | None:
    """The user a token belongs to; None for an unknown, revoked or forged one.

    Records the token's use when the last record is older than
    ``LAST_USED_RESOLUTION``.
    """
    token_id = token_id_of(token)
    if token_id is None:
        return None
    row = conn.execute(
        "SELECT t.token_hash, t.last_used_at, u.id, u.username, u.is_admin"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = %s",
        (token_id,),
    ).fetchone()
    if row is None or not hmac.compare_digest(row["token_hash"], hash_token(token)):
        return None
    if is_last_use_stale(row["last_used_at"], now):
        conn.execute(
            "UPDATE api_tokens SET last_used_at = %s WHERE id = %s", (now, token_id)
        )
    return User(row["id"], row["username"], row["is_admin"])


@cache
def _unused_hash() -> str:
    """Verified when the user is unknown, so a wrong username costs as long as
    a wrong password and the timing tells nobody which names exist."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def check_password_rules(password: str) -> None:
    """Refuse a password that is too short or too long.

    Raises:
        InvalidPasswordError: with a message that says what is wrong.
    """
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidPasswordError(
            f"a password needs at least {PASSWORD_MIN_LENGTH} characters"
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidPasswordError(
            f"a password has at most {PASSWORD_MAX_LENGTH} characters"
        )


def set_password(conn: Connection[Any], user_id: UUID, password: str) -> None:
    """Give a user a new password and end their console sessions.

    Raises:
        InvalidPasswordError: the password breaks ``check_password_rules``.
    """
    check_password_rules(password)
    with conn.transaction():
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s",
            (_HASHER.hash(password), user_id),
        )
        conn.execute("DELETE FROM console_sessions WHERE user_id = %s", (user_id,))


def authenticate_password(
    conn: Connection[Any], username: str, password: str
) -> User | None:
    """The user whose name and password these are; None otherwise.

    A user without a password never matches. The time taken does not tell
    whether the user exists.
    """
    row = conn.execute(
        "SELECT id, username, is_admin, password_hash FROM users WHERE username = %s",
        (username,),
    ).fetchone()
    stored = row["password_hash"] if row else None
    if len(password) > PASSWORD_MAX_LENGTH:
        return None
    try:
        _HASHER.verify(stored or _unused_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or stored is None:
        return None
    if _HASHER.check_needs_rehash(stored):
        # Only if unchanged since it was read: a password set meanwhile wins.
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s",
            (_HASHER.hash(password), row["id"], stored),
        )
    return User(row["id"], row["username"], row["is_admin"])
