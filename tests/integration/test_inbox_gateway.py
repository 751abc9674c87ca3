"""The gateway answers 202 only for durable messages and says why it refused others."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.kafka import start_broker
from devstack.processes import ManagedProcess, free_port
from devstack.stack import LocalStack
from services.api.deploy import deploy_project
from shared.db import apply_migrations, connect
from shared.kafka import ensure_topics
from shared.topics import Topics
from tests.conftest import LOG_DIR, VaultServer
from tests.integration.conftest import EXAMPLE, Inbox, eventually

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def test_malformed_json_is_refused_with_400(inbox: Inbox) -> None:
    response = inbox.post(
        content=b'{"form": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_body"


def test_malformed_xml_is_refused_with_400(inbox: Inbox) -> None:
    response = inbox.post(
        content=b"<form><a></form>", headers={"content-type": "text/xml"}
    )
    assert response.status_code == 400


def test_an_unsupported_content_type_is_refused_with_415(inbox: Inbox) -> None:
    response = inbox.post(content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "application/json" in response.json()["message"]


def test_an_unknown_inbox_is_404(platform: LocalStack) -> None:
    for inbox_id in ("0b7e9f52-5a0c-4a51-9d6f-3c2e8e1f4b6a", "not-a-uuid"):
        response = httpx.post(f"{platform.inbox_url}/inbox/{inbox_id}", json={"a": 1})
        assert response.status_code == 404
        assert response.json()["code"] == "inbox_not_found"


def test_a_body_over_the_limit_is_refused_with_413(inbox: Inbox) -> None:
    big = b'{"pad": "' + b"x" * (8 * MiB) + b'"}'
    response = inbox.post(content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_a_body_just_under_the_limit_is_accepted(inbox: Inbox) -> None:
    body = b'{"pad": "' + b"x" * (8 * MiB - 64) + b'"}'
    response = inbox.post(content=body, headers={"content-type": "application/json"})
    assert response.status_code == 202


def test_credentials_in_headers_are_not_kept(inbox: Inbox, api: httpx.Client) -> None:
    message_id = inbox.post(
        json={"form": "survey"},
        headers={
            "authorization": "Bearer s3cret",
            "x-api-key": "k",
            "x-source": "commcare",
        },
    ).json()["message_id"]
    receipt = eventually(lambda: _ok_json(api.get(f"/api/messages/{message_id}")))
    assert receipt["headers"]["x-source"] == "commcare"
    assert "authorization" not in receipt["headers"]
    assert "x-api-key" not in receipt["headers"]


def test_health_and_readiness_answer(platform: LocalStack) -> None:
    assert httpx.get(f"{platform.inbox_url}/healthz").status_code == 200
    assert httpx.get(f"{platform.inbox_url}/readyz").status_code == 200


def test_a_project_deployed_while_running_gets_an_inbox_at_once(
    platform: LocalStack, tmp_path: Path
) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(EXAMPLE.read_text())
    project = platform.deploy(path, "late-comer")
    response = httpx.post(project["inbox_url"], json={"form": "survey"})
    assert response.status_code == 202


@pytest.fixture
def lonely_gateway(
    postgres_url: str, vault: VaultServer
) -> Iterator[tuple[ManagedProcess, str, str]]:
    """A gateway on a broker of its own, so that the broker can be stopped."""
    log_dir = LOG_DIR / "lonely"
    broker, bootstrap = start_broker(log_dir)
    topics = Topics.with_prefix("openfn.")
    ensure_topics(
        {"bootstrap.servers": bootstrap},
        topics.max_message_bytes(8 * MiB, 10 * MiB),
        1,
        1,
    )
    apply_migrations(postgres_url)
    with connect(postgres_url, autocommit=True) as conn:
        deploy_project(
            conn,
            vault.client(),
            "lonely",
            EXAMPLE.read_text(),
            "project.yaml",
            authorize=lambda *_: None,
            actor="tests",
        )
        inbox_id = conn.execute(
            "SELECT inbox_id FROM projects WHERE name = 'lonely'"
        ).fetchone()["inbox_id"]  # type: ignore[index]
    port = free_port()
    gateway = ManagedProcess(
        name="gateway",
        argv=[sys.executable, "-m", "services.inbox_gateway"],
        log_path=log_dir / "gateway.log",
        env={
            **os.environ,
            "OPENFN_PORT": str(port),
            "OPENFN_HOST": "127.0.0.1",
            "OPENFN_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "OPENFN_DATABASE_URL": postgres_url,
            "OPENFN_INBOX_ACK_TIMEOUT_S": "2",
            "OPENFN_OPS_PORT": str(free_port()),
        },
    ).start()
    gateway.wait_for_port(port)
    try:
        yield (
            broker,
            f"http://127.0.0.1:{port}/inbox/{inbox_id}",
            f"http://127.0.0.1:{port}",
        )
    finally:
        gateway.stop()
        broker.stop()


def test_the_gateway_never_answers_202_while_the_broker_is_stopped(
    lonely_gateway: tuple[ManagedProcess, str, str],
) -> None:
    broker, inbox_url, base = lonely_gateway
    assert eventually(lambda: _ok_json(httpx.get(f"{base}/readyz")))
    assert (
        httpx.post(inbox_url, json={"form": "referral"}, timeout=10).status_code == 202
    )

    broker.stop()
    answers = [
        httpx.post(inbox_url, json={"form": "referral", "n": n}, timeout=10)
        for n in range(3)
    ]

    assert [a.status_code for a in answers] == [503, 503, 503]
    assert all(a.headers["retry-after"].isdigit() for a in answers)
    assert httpx.get(f"{base}/readyz", timeout=10).status_code == 503


def _ok_json(response: httpx.Response) -> Any:
    return response.json() if response.status_code == 200 else None
