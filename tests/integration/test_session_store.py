"""Console sessions and passwords, as PostgreSQL keeps them: a session row holds
only a hash of its cookie and ends on time; passwords are Argon2id hashes that
end the user's sessions when changed and are upgraded at sign-in."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from argon2 import PasswordHasher
from psycopg.rows import dict_row

from services.api.sessions import (
    SEEN_RESOLUTION,
    NewSession,
    Session,
    SessionPolicy,
    end_session,
    find_session,
    start_session,
)
from shared.auth import (
    PASSWORD_MAX_LENGTH,
    InvalidPasswordError,
    User,
    authenticate_password,
    create_user,
    set_password,
)
from shared.db import apply_migrations

pytestmark = pytest.mark.integration

# In the past, so that a sweep at NOW cannot touch sessions that other tests
# start on the same database at the real time.
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
POLICY = SessionPolicy(
    idle=timedelta(hours=12), lifetime=timedelta(days=7), secure_cookie=None
)
PASSWORD = "correct horse battery"
# Cheap parameters, so a sign-in has something to upgrade.
WEAK = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="module")
def conn(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    apply_migrations(postgres_url)
    with psycopg.connect(
        postgres_url, autocommit=True, row_factory=dict_row
    ) as connection:
        yield connection


def new_user(conn: psycopg.Connection[Any]) -> User:
    return create_user(conn, f"session-{uuid4().hex[:12]}", is_admin=False)


def sha256(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode()).digest()


def sessions_of(conn: psycopg.Connection[Any], user: User) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at"
        " FROM console_sessions WHERE user_id = %s ORDER BY created_at, id_hash",
        (user.id,),
    ).fetchall()


def session_row(conn: psycopg.Connection[Any], started: NewSession) -> Any:
    return conn.execute(
        "SELECT created_at, last_seen_at, expires_at FROM console_sessions"
        " WHERE id_hash = %s",
        (sha256(started.cookie),),
    ).fetchone()


def password_hash_of(conn: psycopg.Connection[Any], user: User) -> Any:
    row = conn.execute(
        "SELECT password_hash FROM users WHERE id = %s", (user.id,)
    ).fetchone()
    assert row is not None
    return row["password_hash"]


def store_password_hash(
    conn: psycopg.Connection[Any], user: User, password_hash: str
) -> None:
    conn.execute(
        "UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user.id)
    )


def test_a_session_row_keeps_only_the_sha256_of_its_cookie(
    conn: psycopg.Connection[Any],
) -> None:
    user = new_user(conn)

    started = start_session(conn, user, POLICY, NOW)

    [row] = sessions_of(conn, user)
    assert bytes(row["id_hash"]) == sha256(started.cookie)
    assert started.cookie.encode() not in bytes(row["id_hash"])
    assert all(started.cookie not in str(value) for value in row.values())
    assert row["user_id"] == user.id
    assert row["created_at"] == row["last_seen_at"] == NOW
    assert started.session == Session(user, row["csrf_token"])


def test_each_session_gets_its_own_random_cookie_and_csrf_token(
    conn: psycopg.Connection[Any],
) -> None:
    user = new_user(conn)

    first = start_session(conn, user, POLICY, NOW)
    second = start_session(conn, user, POLICY, NOW)

    tokens = {first.cookie, second.cookie}
    tokens |= {first.session.csrf_token, second.session.csrf_token}
    assert len(tokens) == 4
    assert all(len(token) >= 40 for token in tokens)
    stored = sessions_of(conn, user)
    assert {bytes(row["id_hash"]) for row in stored} == {
        sha256(first.cookie),
        sha256(second.cookie),
    }
    assert {row["csrf_token"] for row in stored} == {
        first.session.csrf_token,
        second.session.csrf_token,
    }


def test_a_new_session_expires_after_the_idle_time_or_the_lifetime_if_shorter(
    conn: psycopg.Connection[Any],
) -> None:
    short_life = SessionPolicy(timedelta(hours=12), timedelta(hours=1), None)
    user = new_user(conn)

    idle_bound = start_session(conn, user, POLICY, NOW)
    life_bound = start_session(conn, user, short_life, NOW)

    assert idle_bound.expires_at == NOW + timedelta(hours=12)
    assert life_bound.expires_at == NOW + timedelta(hours=1)
    assert session_row(conn, idle_bound)["expires_at"] == NOW + timedelta(hours=12)
    assert session_row(conn, life_bound)["expires_at"] == NOW + timedelta(hours=1)


def test_a_session_is_found_by_its_cookie_and_an_unknown_cookie_finds_nothing(
    conn: psycopg.Connection[Any],
) -> None:
    user = new_user(conn)
    started = start_session(conn, user, POLICY, NOW)

    assert find_session(conn, started.cookie, POLICY, NOW) == started.session
    assert find_session(conn, secrets.token_urlsafe(32), POLICY, NOW) is None
    assert find_session(conn, "", POLICY, NOW) is None


def test_a_session_finds_nothing_from_its_expiry_on_and_is_left_as_it_was(
    conn: psycopg.Connection[Any],
) -> None:
    user = new_user(conn)
    started = start_session(conn, user, POLICY, NOW)
    before = session_row(conn, started)

    at_expiry = find_session(conn, started.cookie, POLICY, started.expires_at)
    past_expiry = find_session(
        conn, started.cookie, POLICY, started.expires_at + timedelta(days=1)
    )

    assert at_expiry is None
    assert past_expiry is None
    assert session_row(conn, started) == before


def test_a_session_used_again_within_the_seen_resolution_writes_nothing(
    conn: psycopg.Connection[Any],
) -> None:
    user = new_user(conn)
    started = start_session(conn, user, POLICY, NOW)
    before = session_row(conn, started)

    soon = NOW + SEEN_RESOLUTION - timedelta(microseconds=1)
    found = find_session(conn, started.cookie, POLICY, soon)

    assert found == started.session
    assert session_row(conn, started) == before
    assert before["last_seen_at"] == NOW


def test_a_session_used_after_the_seen_resolution_moves_its_idle_expiry_on(
    conn: psycopg.Connection[Any],
) -> None:
    user = new_user(conn)
    started = start_session(conn, user, POLICY, NOW)

    later = NOW + SEEN_RESOLUTION
    found = find_session(conn, started.cookie, POLICY, later)

    assert found == started.session
    after = session_row(conn, started)
    assert after["last_seen_at"] == later
    assert after["expires_at"] == later + POLICY.idle
    assert after["created_at"] == NOW


def test_using_a_session_never_moves_its_expiry_past_its_lifetime(
    conn: psycopg.Connection[Any],
) -> None:
    policy = SessionPolicy(timedelta(hours=1), timedelta(hours=3), None)
    user = new_user(conn)
    started = start_session(conn, user, policy, NOW)
    end_of_life = NOW + policy.lifetime

    expiries = []
    for minutes in (50, 100, 150, 179):
        used_at = NOW + timedelta(minutes=minutes)
        assert find_session(conn, started.cookie, policy, used_at) == started.session
        expiries.append(session_row(conn, started)["expires_at"] - NOW)

    assert expiries == [
        timedelta(minutes=110),
        timedelta(minutes=160),
        policy.lifetime,
        policy.lifetime,
    ]
    assert find_session(conn, started.cookie, policy, end_of_life) is None


def test_starting_a_session_sweeps_the_expired_ones(
    conn: psycopg.Connection[Any],
) -> None:
    user, other = new_user(conn), new_user(conn)
    expired = start_session(conn, user, POLICY, NOW - timedelta(days=1))
    others_expired = start_session(conn, other, POLICY, NOW - timedelta(days=1))
    live = start_session(conn, other, POLICY, NOW - timedelta(hours=1))

    started = start_session(conn, user, POLICY, NOW)

    assert session_row(conn, expired) is None
    assert session_row(conn, others_expired) is None
    assert session_row(conn, live) is not None
    assert [bytes(row["id_hash"]) for row in sessions_of(conn, user)] == [
        sha256(started.cookie)
    ]


def test_signing_out_ends_only_that_session(conn: psycopg.Connection[Any]) -> None:
    user, other = new_user(conn), new_user(conn)
    leaving = start_session(conn, user, POLICY, NOW)
    staying = start_session(conn, user, POLICY, NOW)
    others = start_session(conn, other, POLICY, NOW)

    end_session(conn, leaving.cookie)

    assert session_row(conn, leaving) is None
    assert find_session(conn, leaving.cookie, POLICY, NOW) is None
    assert find_session(conn, staying.cookie, POLICY, NOW) == staying.session
    assert find_session(conn, others.cookie, POLICY, NOW) == others.session
    assert len(sessions_of(conn, user)) == 1


def test_a_new_password_is_stored_as_argon2id_and_ends_the_users_sessions(
    conn: psycopg.Connection[Any],
) -> None:
    user, other = new_user(conn), new_user(conn)
    start_session(conn, user, POLICY, NOW)
    start_session(conn, user, POLICY, NOW)
    others = start_session(conn, other, POLICY, NOW)

    set_password(conn, user.id, PASSWORD)

    stored = password_hash_of(conn, user)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)
    assert not PasswordHasher().check_needs_rehash(stored)
    assert sessions_of(conn, user) == []
    assert find_session(conn, others.cookie, POLICY, NOW) == others.session
    assert password_hash_of(conn, other) is None


def test_a_refused_password_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    user = new_user(conn)
    set_password(conn, user.id, PASSWORD)
    started = start_session(conn, user, POLICY, NOW)
    stored = password_hash_of(conn, user)

    for refused in ("short", "x" * (PASSWORD_MAX_LENGTH + 1)):
        with pytest.raises(InvalidPasswordError):
            set_password(conn, user.id, refused)

    assert password_hash_of(conn, user) == stored
    assert find_session(conn, started.cookie, POLICY, NOW) == started.session


def test_the_right_password_signs_in_and_a_wrong_one_does_not(
    conn: psycopg.Connection[Any],
) -> None:
    user = new_user(conn)
    set_password(conn, user.id, PASSWORD)

    assert authenticate_password(conn, user.username, PASSWORD) == user
    assert authenticate_password(conn, user.username, PASSWORD + "!") is None
    assert authenticate_password(conn, user.username, "") is None


def test_an_unknown_user_or_a_user_without_a_password_never_signs_in(
    conn: psycopg.Connection[Any],
) -> None:
    without_password = new_user(conn)
    unknown = f"nobody-{uuid4().hex[:12]}"

    for password in ("", PASSWORD, "x" * PASSWORD_MAX_LENGTH):
        assert authenticate_password(conn, without_password.username, password) is None
        assert authenticate_password(conn, unknown, password) is None
    assert password_hash_of(conn, without_password) is None


def test_a_password_longer_than_the_limit_is_refused_even_when_it_is_right(
    conn: psycopg.Connection[Any],
) -> None:
    user = new_user(conn)
    long_password = "y" * (PASSWORD_MAX_LENGTH + 1)
    weak = WEAK.hash(long_password)
    store_password_hash(conn, user, weak)

    assert authenticate_password(conn, user.username, long_password) is None
    assert password_hash_of(conn, user) == weak


def test_signing_in_rehashes_a_hash_made_with_weaker_parameters(
    conn: psycopg.Connection[Any],
) -> None:
    user = new_user(conn)
    weak = WEAK.hash(PASSWORD)
    store_password_hash(conn, user, weak)

    assert authenticate_password(conn, user.username, PASSWORD + "!") is None
    assert password_hash_of(conn, user) == weak
    assert authenticate_password(conn, user.username, PASSWORD) == user

    upgraded = password_hash_of(conn, user)
    assert upgraded != weak
    assert upgraded.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(upgraded)
    assert PasswordHasher().verify(upgraded, PASSWORD)
    assert authenticate_password(conn, user.username, PASSWORD) == user


def test_a_current_hash_is_not_rewritten_at_sign_in(
    conn: psycopg.Connection[Any],
) -> None:
    user = new_user(conn)
    set_password(conn, user.id, PASSWORD)
    stored = password_hash_of(conn, user)

    assert authenticate_password(conn, user.username, PASSWORD) == user
    assert password_hash_of(conn, user) == stored


GOOD_HASH = WEAK.hash(PASSWORD)


@pytest.mark.parametrize(
    "damaged",
    [
        "not-a-hash",
        GOOD_HASH[:-8],
        GOOD_HASH[: GOOD_HASH.rindex("$")],
        GOOD_HASH.replace("$argon2id$", "$argon2xx$"),
        "$argon2id$",
    ],
    ids=["not a hash", "cut short", "no digest", "unknown variant", "prefix only"],
)
def test_a_damaged_stored_hash_signs_nobody_in(
    conn: psycopg.Connection[Any], damaged: str
) -> None:
    user = new_user(conn)
    store_password_hash(conn, user, damaged)

    assert authenticate_password(conn, user.username, PASSWORD) is None
    assert password_hash_of(conn, user) == damaged
