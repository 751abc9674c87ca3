"""Console sessions check their CSRF token and cookie policy; passwords follow
their length rules. What touches the database is in
tests/integration/test_session_store.py."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from starlette.requests import Request

from services.api.console import session_policy
from services.api.console.signin import is_secure
from services.api.sessions import Session, SessionPolicy, csrf_matches
from services.api.settings import ApiSettings
from shared.auth import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    InvalidPasswordError,
    User,
    check_password_rules,
)

USER = User(UUID("00000000-0000-4000-8000-00000000000a"), "amina", is_admin=False)
POLICY = SessionPolicy(
    idle=timedelta(hours=12), lifetime=timedelta(days=7), secure_cookie=None
)


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
