"""Console sessions keep only a hash of their cookie and end on time; passwords
follow their rules and are kept as Argon2id hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import pytest
from argon2 import PasswordHasher
from starlette.requests import Request

from services.api.console import session_policy
from services.api.console.signin import is_secure
from services.api.sessions import (
    Session,
    SessionPolicy,
    csrf_matches,
    end_session,
    find_session,
    start_session,
)
from services.api.settings import ApiSettings
from shared.auth import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    InvalidPasswordError,
    User,
    authenticate_password,
    check_password_rules,
    set_password,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USER = User(UUID("00000000-0000-4000-8000-00000000000a"), "amina", is_admin=False)
POLICY = SessionPolicy(
    idle=timedelta(hours=12), lifetime=timedelta(days=7), secure_cookie=None
)
PASSWORD = "correct horse battery"
# Cheap parameters, so the tests are quick and a sign-in has something to upgrade.
WEAK = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Answer:
    def __init__(self, row: dict[str, Any] | None) -> None:
        self.row = row

    def fetchone(self) -> dict[str, Any] | None:
        return self.row


@dataclass
class FakeConnection:
    """Records statements; each SELECT answers the next of ``rows``."""

    rows: list[dict[str, Any] | None] = field(default_factory=list)
    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    transactions: int = 0

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> Answer:
        self.statements.append((" ".join(query.split()), tuple(params)))
        selecting = query.lstrip().upper().startswith("SELECT")
        return Answer(self.rows.pop(0) if selecting else None)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.transactions += 1
        yield

    def changes(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [s for s in self.statements if not s[0].startswith("SELECT")]


def conn(fake: FakeConnection) -> Any:
    return cast(Any, fake)


def session_row(created: datetime, seen: datetime, expires: datetime) -> dict[str, Any]:
    return {
        "csrf_token": "the-csrf-token",
        "created_at": created,
        "last_seen_at": seen,
        "expires_at": expires,
        "id": USER.id,
        "username": USER.username,
        "is_admin": USER.is_admin,
    }


def request(scheme: str) -> Request:
    return Request(
        {
            "type": "http",
            "scheme": scheme,
            "method": "GET",
            "path": "/console/sign-in",
            "server": ("console.example", 443 if scheme == "https" else 80),
            "headers": [(b"host", b"console.example")],
        }
    )


def test_a_session_keeps_only_the_hash_of_its_cookie() -> None:
    fake = FakeConnection()

    started = start_session(conn(fake), USER, POLICY, NOW)

    inserted = next(p for q, p in fake.statements if q.startswith("INSERT"))
    assert inserted[0] == hashlib.sha256(started.cookie.encode()).digest()
    assert started.cookie not in repr(fake.statements)
    assert started.cookie.encode() not in inserted
    assert inserted[1] == USER.id
    assert started.session == Session(USER, inserted[2])


def test_each_session_has_its_own_random_cookie_and_csrf_token() -> None:
    first = start_session(conn(FakeConnection()), USER, POLICY, NOW)
    second = start_session(conn(FakeConnection()), USER, POLICY, NOW)

    tokens = {first.cookie, second.cookie}
    tokens |= {first.session.csrf_token, second.session.csrf_token}
    assert len(tokens) == 4
    assert all(len(token) >= 40 for token in tokens)


def test_a_new_session_ends_after_the_idle_time_or_its_lifetime_if_shorter() -> None:
    short_life = SessionPolicy(timedelta(hours=12), timedelta(hours=1), None)

    assert start_session(conn(FakeConnection()), USER, POLICY, NOW).expires_at == (
        NOW + timedelta(hours=12)
    )
    assert start_session(
        conn(FakeConnection()), USER, short_life, NOW
    ).expires_at == NOW + timedelta(hours=1)


def test_starting_a_session_sweeps_the_expired_ones_in_one_transaction() -> None:
    fake = FakeConnection()

    start_session(conn(fake), USER, POLICY, NOW)

    assert fake.transactions == 1
    assert fake.statements[0] == (
        "DELETE FROM console_sessions WHERE expires_at < %s",
        (NOW,),
    )


def test_an_unknown_or_expired_cookie_names_no_session() -> None:
    expired = session_row(NOW - timedelta(hours=13), NOW - timedelta(hours=12), NOW)

    assert find_session(conn(FakeConnection([None])), "nope", POLICY, NOW) is None
    assert find_session(conn(FakeConnection([expired])), "old", POLICY, NOW) is None


def test_a_session_looks_itself_up_by_the_hash_of_the_cookie() -> None:
    fake = FakeConnection([None])

    find_session(conn(fake), "the-cookie", POLICY, NOW)

    assert fake.statements[0][1] == (hashlib.sha256(b"the-cookie").digest(),)


def test_a_session_used_again_within_a_minute_is_not_written() -> None:
    row = session_row(
        NOW - timedelta(hours=1), NOW - timedelta(seconds=59), NOW + timedelta(hours=1)
    )
    fake = FakeConnection([row])

    found = find_session(conn(fake), "c", POLICY, NOW)

    assert found == Session(USER, "the-csrf-token")
    assert fake.changes() == []


def test_using_a_session_moves_its_idle_expiry_on_but_never_past_its_lifetime() -> None:
    young = session_row(
        NOW - timedelta(hours=1), NOW - timedelta(minutes=5), NOW + timedelta(hours=1)
    )
    old = session_row(
        NOW - timedelta(days=7) + timedelta(hours=2),
        NOW - timedelta(minutes=5),
        NOW + timedelta(hours=1),
    )
    young_fake, old_fake = FakeConnection([young]), FakeConnection([old])

    find_session(conn(young_fake), "c", POLICY, NOW)
    find_session(conn(old_fake), "c", POLICY, NOW)

    [(_, young_update)] = young_fake.changes()
    [(_, old_update)] = old_fake.changes()
    assert young_update[:2] == (NOW, NOW + timedelta(hours=12))
    assert old_update[:2] == (NOW, NOW + timedelta(hours=2))


def test_signing_out_deletes_the_session_by_its_hash() -> None:
    fake = FakeConnection()

    end_session(conn(fake), "the-cookie")

    assert fake.statements == [
        (
            "DELETE FROM console_sessions WHERE id_hash = %s",
            (hashlib.sha256(b"the-cookie").digest(),),
        )
    ]


def test_only_the_sessions_own_csrf_token_matches() -> None:
    session = Session(USER, "the-csrf-token")

    assert csrf_matches(session, "the-csrf-token")
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, "")
    assert not csrf_matches(session, "the-csrf-token ")
    assert not csrf_matches(session, "THE-CSRF-TOKEN")
    assert not csrf_matches(session, "other")


def test_cookies_are_secure_over_https_unless_the_policy_decides() -> None:
    def policy(secure: bool | None) -> SessionPolicy:
        return SessionPolicy(POLICY.idle, POLICY.lifetime, secure)

    assert is_secure(request("https"), policy(None)) is True
    assert is_secure(request("http"), policy(None)) is False
    assert is_secure(request("http"), policy(True)) is True
    assert is_secure(request("https"), policy(False)) is False


def test_the_session_policy_comes_from_the_api_settings() -> None:
    settings = ApiSettings(
        console_session_idle_s=600,
        console_session_lifetime_s=3600,
        console_secure_cookies=True,
    )

    assert session_policy(settings) == SessionPolicy(
        timedelta(minutes=10), timedelta(hours=1), True
    )
    assert session_policy(ApiSettings()) == SessionPolicy(
        timedelta(hours=12), timedelta(days=7), None
    )


@pytest.mark.parametrize(
    "password",
    ["", "x" * (PASSWORD_MIN_LENGTH - 1), "x" * (PASSWORD_MAX_LENGTH + 1)],
    ids=["empty", "one too short", "one too long"],
)
def test_a_password_too_short_or_too_long_is_refused_with_a_reason(
    password: str,
) -> None:
    with pytest.raises(InvalidPasswordError, match="characters"):
        check_password_rules(password)


def test_the_rules_count_characters_not_bytes() -> None:
    check_password_rules("x" * PASSWORD_MIN_LENGTH)
    check_password_rules("x" * PASSWORD_MAX_LENGTH)
    check_password_rules("é" * PASSWORD_MIN_LENGTH)
    with pytest.raises(InvalidPasswordError, match=str(PASSWORD_MIN_LENGTH)):
        check_password_rules("é" * (PASSWORD_MIN_LENGTH - 1))
    with pytest.raises(InvalidPasswordError, match=str(PASSWORD_MAX_LENGTH)):
        check_password_rules("x" * (PASSWORD_MAX_LENGTH + 1))


def test_a_refused_password_changes_nothing() -> None:
    fake = FakeConnection()

    with pytest.raises(InvalidPasswordError):
        set_password(conn(fake), USER.id, "short")

    assert fake.statements == []


def test_a_new_password_is_stored_as_argon2id_and_ends_the_users_sessions() -> None:
    fake = FakeConnection()

    set_password(conn(fake), USER.id, PASSWORD)

    (update, (stored, user_id)), (delete, deleted_for) = fake.statements
    assert update.startswith("UPDATE users SET password_hash")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)
    assert user_id == USER.id
    assert delete == "DELETE FROM console_sessions WHERE user_id = %s"
    assert deleted_for == (USER.id,)
    assert fake.transactions == 1


def user_row(password_hash: str | None) -> dict[str, Any]:
    return {
        "id": USER.id,
        "username": USER.username,
        "is_admin": USER.is_admin,
        "password_hash": password_hash,
    }


def test_the_right_password_signs_in_and_a_wrong_one_does_not() -> None:
    stored = PasswordHasher().hash(PASSWORD)

    right = authenticate_password(
        conn(FakeConnection([user_row(stored)])), "amina", PASSWORD
    )
    wrong = authenticate_password(
        conn(FakeConnection([user_row(stored)])), "amina", PASSWORD + "!"
    )

    assert right == USER
    assert wrong is None


def test_a_user_without_a_password_or_an_unknown_user_never_matches() -> None:
    for password in ("", PASSWORD, "x" * PASSWORD_MAX_LENGTH):
        no_password = FakeConnection([user_row(None)])
        assert authenticate_password(conn(no_password), "amina", password) is None
        assert (
            authenticate_password(conn(FakeConnection([None])), "x", password) is None
        )


def test_a_password_longer_than_the_limit_is_refused_even_when_it_is_right() -> None:
    long_password = "y" * (PASSWORD_MAX_LENGTH + 1)
    stored = WEAK.hash(long_password)

    found = authenticate_password(
        conn(FakeConnection([user_row(stored)])), "amina", long_password
    )

    assert found is None


def test_signing_in_upgrades_a_hash_made_with_weaker_parameters() -> None:
    weak = WEAK.hash(PASSWORD)
    fake = FakeConnection([user_row(weak)])

    found = authenticate_password(conn(fake), "amina", PASSWORD)

    [(update, (stored, user_id))] = fake.changes()
    assert found == USER
    assert update == "UPDATE users SET password_hash = %s WHERE id = %s"
    assert user_id == USER.id
    assert not PasswordHasher().check_needs_rehash(stored)
    assert PasswordHasher().verify(stored, PASSWORD)


def test_a_current_hash_is_not_rewritten_at_sign_in() -> None:
    fake = FakeConnection([user_row(PasswordHasher().hash(PASSWORD))])

    authenticate_password(conn(fake), "amina", PASSWORD)

    assert fake.changes() == []


def test_a_damaged_stored_hash_signs_nobody_in() -> None:
    fake = FakeConnection([user_row("not-a-hash")])

    assert authenticate_password(conn(fake), "amina", PASSWORD) is None
