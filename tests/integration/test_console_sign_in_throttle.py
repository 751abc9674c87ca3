"""Guessing passwords in the console slows down after a few wrong ones, for
the address guessing; the username's owner elsewhere is not locked out."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
import pytest

from devstack.stack import LocalStack
from services.api.console.signin import FREE_FAILURES, FREE_FAILURES_PER_USERNAME

pytestmark = pytest.mark.integration

PASSWORD = "the right password"
# The API listens on 127.0.0.1; a connection from another loopback address is
# another client.
ELSEWHERE = "127.0.0.2"


def sign_in(
    platform: LocalStack,
    username: str,
    password: str,
    *,
    source: str = "127.0.0.1",
    forwarded_for: str | None = None,
) -> httpx.Response:
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    with httpx.Client(
        base_url=platform.api_url,
        timeout=10,
        headers=headers,
        transport=httpx.HTTPTransport(local_address=source),
    ) as browser:
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
def new_user(platform: LocalStack) -> Callable[[], str]:
    """Makes a user with ``PASSWORD``; returns its name."""

    def make() -> str:
        username = f"guarded-{uuid.uuid4().hex[:8]}"
        with httpx.Client(
            base_url=platform.api_url, headers=platform.auth_headers(), timeout=10
        ) as api:
            assert api.post("/api/users", json={"username": username}).is_success
            answer = api.put(
                f"/api/users/{username}/password", json={"new_password": PASSWORD}
            )
            assert answer.status_code == 204
        return username

    return make


def test_after_a_few_wrong_passwords_even_the_right_one_waits(
    platform: LocalStack, new_user: Callable[[], str]
) -> None:
    guarded, bystander = new_user(), new_user()
    for _ in range(FREE_FAILURES):
        assert sign_in(platform, guarded, "a wrong guess").status_code == 401

    locked = sign_in(platform, guarded, PASSWORD)

    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= 30
    assert "Too many wrong passwords" in locked.text
    assert "ofn_session" not in locked.cookies
    # Other people sign in as usual.
    assert sign_in(platform, bystander, PASSWORD).status_code == 303


def test_guessing_from_one_address_does_not_lock_the_owner_out_elsewhere(
    platform: LocalStack, new_user: Callable[[], str]
) -> None:
    guarded = new_user()
    for _ in range(FREE_FAILURES):
        assert sign_in(platform, guarded, "a wrong guess").status_code == 401
    assert sign_in(platform, guarded, PASSWORD).status_code == 429

    assert sign_in(platform, guarded, PASSWORD, source=ELSEWHERE).status_code == 303


def test_a_forwarded_address_counts_only_from_a_trusted_proxy(
    platform: LocalStack, new_user: Callable[[], str]
) -> None:
    guarded = new_user()
    # 127.0.0.1 is a trusted proxy: each forwarded address is its own client.
    for attempt in range(FREE_FAILURES):
        for address in ("203.0.113.7", "203.0.113.8"):
            answer = sign_in(
                platform, guarded, f"guess {attempt}", forwarded_for=address
            )
            assert answer.status_code == 401
    proxied = sign_in(platform, guarded, PASSWORD, forwarded_for="203.0.113.7")
    # ELSEWHERE is not: what it forwards is ignored, and its own count is fresh.
    spoofed = sign_in(
        platform, guarded, PASSWORD, source=ELSEWHERE, forwarded_for="203.0.113.7"
    )
    # Signing in clears only the count of the address that signed in.
    still = sign_in(platform, guarded, PASSWORD, forwarded_for="203.0.113.8")

    assert proxied.status_code == 429
    assert spoofed.status_code == 303
    assert still.status_code == 429


def test_many_addresses_together_lock_the_username_for_everyone(
    platform: LocalStack, new_user: Callable[[], str]
) -> None:
    guarded = new_user()
    for n in range(FREE_FAILURES_PER_USERNAME):
        address = f"198.51.100.{n + 1}"
        answer = sign_in(platform, guarded, "a guess", forwarded_for=address)
        assert answer.status_code == 401

    assert sign_in(platform, guarded, PASSWORD, source=ELSEWHERE).status_code == 429


def test_unknown_usernames_are_slowed_down_alike(platform: LocalStack) -> None:
    for _ in range(FREE_FAILURES):
        assert sign_in(platform, "nobody-here", "a guess").status_code == 401

    assert sign_in(platform, "nobody-here", "a guess").status_code == 429
