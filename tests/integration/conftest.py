"""The whole platform, its services as real processes, on the session's servers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from devstack.stack import LocalStack, Servers
from tests.conftest import LOG_DIR, VaultServer

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "examples" / "referrals" / "project.yaml"
)

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout_s: float = 30.0) -> T:
    """Poll until ``probe`` returns something other than None."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout_s} s")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def platform(
    postgres_url: str, kafka_bootstrap: str, vault: VaultServer
) -> Iterator[LocalStack]:
    stack = LocalStack(
        log_dir=LOG_DIR / "platform",
        servers=Servers(kafka_bootstrap, postgres_url, vault.address, vault.token),
        # Short enough that lost runs and retries happen within a test.
        extra_env={
            "OPENFN_RUN_TIMEOUT_S": "8",
            "OPENFN_LOST_RUN_GRACE_S": "2",
            "OPENFN_RETRY_BASE_DELAY_S": "1",
            "OPENFN_CLAIM_HEARTBEAT_S": "1",
            "OPENFN_CLAIM_STALE_S": "4",
            "OPENFN_ABORT_GRACE_S": "3",
        },
    )
    stack.prepare()
    try:
        stack.start_services()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def referrals(platform: LocalStack) -> dict[str, Any]:
    """The example project, deployed."""
    return platform.deploy(EXAMPLE, "referrals")


@pytest.fixture
def api(platform: LocalStack) -> Iterator[httpx.Client]:
    """The API, as the local stack's site admin."""
    with httpx.Client(
        base_url=platform.api_url, headers=platform.auth_headers(), timeout=10
    ) as client:
        yield client


class Inbox:
    """Posts to one inbox URL."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url

    def post(self, **kwargs: Any) -> httpx.Response:
        return self.client.post(self.url, **kwargs)


@pytest.fixture
def inbox(referrals: dict[str, Any]) -> Iterator[Inbox]:
    """Posts to the example project's inbox."""
    with httpx.Client(timeout=30) as client:
        yield Inbox(client, referrals["inbox_url"])
