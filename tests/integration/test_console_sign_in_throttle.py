"""Guessing passwords in the console slows down after a few wrong ones."""

from __future__ import annotations

import re

import httpx
import pytest

from devstack.stack import LocalStack
from services.api.console.signin import FREE_FAILURES

pytestmark = pytest.mark.integration

PASSWORD = "the right password"


def sign_in(platform: LocalStack, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=platform.api_url, timeout=10) as browser:
        form = browser.get("/console/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        return browser.post(
            "/console/sign-in",
            data={
                "csrf_token": token.group(1),
                "username": username,
                "password": password,
            },
        )


@pytest.fixture(scope="module")
def guarded(platform: LocalStack) -> str:
    with httpx.Client(
        base_url=platform.api_url, headers=platform.auth_headers(), timeout=10
    ) as api:
        for username in ("guarded", "bystander"):
            assert api.post("/api/users", json={"username": username}).is_success
            answer = api.put(
                f"/api/users/{username}/password", json={"new_password": PASSWORD}
            )
            assert answer.status_code == 204
    return "guarded"


def test_after_a_few_wrong_passwords_even_the_right_one_waits(
    platform: LocalStack, guarded: str
) -> None:
    for _ in range(FREE_FAILURES):
        assert sign_in(platform, guarded, "a wrong guess").status_code == 401

    locked = sign_in(platform, guarded, PASSWORD)

    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= 30
    assert "Too many wrong passwords" in locked.text
    assert "ofn_session" not in locked.cookies
    # Other people sign in as usual.
    assert sign_in(platform, "bystander", PASSWORD).status_code == 303


def test_unknown_usernames_are_slowed_down_alike(platform: LocalStack) -> None:
    for _ in range(FREE_FAILURES):
        assert sign_in(platform, "nobody-here", "a guess").status_code == 401

    assert sign_in(platform, "nobody-here", "a guess").status_code == 429
