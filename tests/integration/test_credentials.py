"""Credentials reach only their own project's runs and never leak anywhere."""

from __future__ import annotations

import base64
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer

from devstack.stack import LocalStack
from shared.topics import Topics
from tests.conftest import LOG_DIR, VaultServer
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

CANARY = "canary-7Hq2-secret-value"

PROJECT = f"""\
jobs:
  use-credential:
    trigger: any
    adaptor: common
    credential: openmrs
    expression: |
      fn(lambda state: {{**state, "user": state["configuration"]["username"]}})
      log("password is", source_value("$.configuration.password"))
      fn(lambda state: print("encoded", __import__("base64").b64encode(
          state["configuration"]["password"].encode()).decode()) or state)
triggers:
  any:
    criteria: '{{"kind": "visit"}}'
credentials:
  openmrs:
    base_url: https://openmrs.example.org
    username: clinic-admin
    password: {CANARY}
"""

BORROWER = """\
jobs:
  borrow:
    trigger: any
    adaptor: common
    credential: openmrs
    expression: |
      fn(lambda state: {**state, "stolen": state["configuration"]})
triggers:
  any:
    criteria: '{"kind": "visit"}'
"""


def deploy(
    platform: LocalStack, tmp_path: Path, name: str, text: str
) -> dict[str, Any]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return platform.deploy(path, name)


def finished_run(api: httpx.Client, message_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        receipt = api.get(f"/api/messages/{message_id}")
        if receipt.status_code != 200:
            return None
        runs = [r for r in receipt.json()["runs"] if r["finished_at"]]
        return api.get(f"/api/runs/{runs[0]['id']}").json() if runs else None

    return eventually(probe, timeout_s=60)


def test_a_run_gets_its_credential_and_the_secret_never_leaks(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    project = deploy(platform, tmp_path, "clinic", PROJECT)
    posted = httpx.post(project["inbox_url"], json={"kind": "visit"})

    run = finished_run(api, posted.json()["message_id"])

    assert run["exit_code"] == 0
    assert run["final_state"]["user"] == "clinic-admin"
    assert "configuration" not in run["final_state"]
    log_text = "\n".join(line["message"] for line in run["logs"])
    assert "password is ***" in log_text
    assert "encoded ***" in log_text
    for leak in _forms_of(CANARY):
        assert leak not in api.get(f"/api/runs/{run['id']}").text
        assert leak not in api.get(f"/api/messages/{run['message_id']}").text
        assert leak not in api.get("/api/projects/clinic").text
        assert leak not in _topic_text(platform)
        assert leak not in _service_logs()


def test_a_project_cannot_obtain_another_projects_credential(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    deploy(platform, tmp_path, "owner", PROJECT)
    refused = httpx.put(
        f"{platform.api_url}/api/projects/borrower",
        content=BORROWER.encode(),
        headers={"content-type": "application/yaml", **platform.auth_headers()},
    )
    assert refused.status_code == 422
    assert "no credential named 'openmrs'" in refused.json()["problems"][0]


def test_deploy_keeps_a_masked_secret_and_refuses_one_never_stored(
    platform: LocalStack, tmp_path: Path, api: httpx.Client, vault: VaultServer
) -> None:
    project = deploy(platform, tmp_path, "masked", PROJECT)
    deploy(platform, tmp_path, "masked", PROJECT.replace(CANARY, '"******"'))
    stored = vault.client().read_credential(project_id=_uuid(project), name="openmrs")
    never = PROJECT.replace(CANARY, '"******"').replace("openmrs", "dhis2")
    refused = httpx.put(
        f"{platform.api_url}/api/projects/masked-new",
        content=never.encode(),
        headers={"content-type": "application/yaml", **platform.auth_headers()},
    )

    assert stored["password"] == CANARY
    assert refused.status_code == 422
    assert (
        "password is ****** but no value is stored yet" in refused.json()["problems"][0]
    )


def test_runs_wait_while_vault_is_unreachable_instead_of_failing(
    platform: LocalStack, tmp_path: Path, api: httpx.Client, vault: VaultServer
) -> None:
    project = deploy(platform, tmp_path, "patient", PROJECT)
    assert vault.process.popen is not None
    os.kill(vault.process.popen.pid, signal.SIGSTOP)
    try:
        posted = httpx.post(project["inbox_url"], json={"kind": "visit"})
        time.sleep(8)
        receipt = api.get(f"/api/messages/{posted.json()['message_id']}").json()
        assert [r for r in receipt["runs"] if r["finished_at"]] == []
    finally:
        os.kill(vault.process.popen.pid, signal.SIGCONT)

    run = finished_run(api, posted.json()["message_id"])
    assert run["exit_code"] == 0


def _uuid(project: dict[str, Any]) -> Any:
    from uuid import UUID

    return UUID(project["id"])


def _forms_of(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    ]


def _topic_text(platform: LocalStack) -> str:
    """Everything on the run topics, read from the start by a new group."""
    assert platform.servers is not None
    topics = Topics.with_prefix(platform.topic_prefix)
    consumer = Consumer(
        {
            "bootstrap.servers": platform.servers.kafka_bootstrap,
            "group.id": f"leak-check-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "fetch.wait.max.ms": 20,
        }
    )
    consumer.subscribe([topics.run_requests, topics.run_events, topics.messages])
    chunks: list[str] = []
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < 3:
            record = consumer.poll(0.2)
            if record is None or record.error() is not None:
                continue
            idle_since = time.monotonic()
            chunks.append((record.value() or b"").decode(errors="replace"))
    finally:
        consumer.close()
    return "\n".join(chunks)


def _service_logs() -> str:
    folder = LOG_DIR / "platform"
    return "\n".join(p.read_text(errors="replace") for p in folder.glob("*.log"))
