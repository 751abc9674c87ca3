"""`openfn deploy` creates and updates projects; running services follow at once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import uuid_utils

from cli.main import main as openfn
from devstack.stack import LocalStack
from shared.events import Message
from shared.kafka import EventProducer, Record
from shared.topics import Topics
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

PROJECT = """\
jobs:
  tally:
    trigger: tally-form
    adaptor: common
    expression: |
      fn(lambda state: {{**state, "count": len(state["data"]["items"])}})
triggers:
  tally-form:
    criteria: '{{"form": "{form}"}}'
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "project.yaml"
    path.write_text(text)
    return path


def settled_states(api: httpx.Client, message_id: str) -> list[dict[str, Any]] | None:
    response = api.get(f"/api/messages/{message_id}")
    if response.status_code != 200:
        return None
    states = response.json()["job_states"]
    return states if states and states[0]["state"] != "in progress" else None


def test_deploy_prints_the_inbox_and_jobs(
    platform: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, PROJECT.format(form="tally"))

    code = openfn(
        [
            "deploy",
            str(path),
            "--project",
            "cli-demo",
            "--api",
            platform.api_url,
            "--token",
            str(platform.admin_token),
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "project cli-demo created" in out
    assert "inbox: http://127.0.0.1" in out
    assert "job tally: trigger tally-form, adaptor common, enabled" in out


def test_deploy_refuses_a_syntax_error_naming_file_job_and_line(
    platform: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = PROJECT.format(form="x").replace('len(state["data"]["items"])})', "len(")
    path = write(tmp_path, broken)

    code = openfn(
        [
            "deploy",
            str(path),
            "--project",
            "broken",
            "--api",
            platform.api_url,
            "--token",
            str(platform.admin_token),
        ]
    )

    err = capsys.readouterr().err
    assert code == 1
    assert "project.yaml:6: job 'tally'" in err
    missing = httpx.get(
        f"{platform.api_url}/api/projects/broken", headers=platform.auth_headers()
    )
    assert missing.status_code == 404


def test_deploy_refuses_invalid_yaml_and_unknown_adaptors(platform: LocalStack) -> None:
    def put(text: str) -> httpx.Response:
        return httpx.put(
            f"{platform.api_url}/api/projects/refused",
            content=text.encode(),
            headers={"content-type": "application/yaml", **platform.auth_headers()},
        )

    invalid = put("jobs: [")
    unknown = put(PROJECT.format(form="x").replace("adaptor: common", "adaptor: sap"))

    assert invalid.status_code == 422
    assert invalid.json()["problems"][0].startswith("project.yaml:1: invalid YAML")
    assert unknown.status_code == 422
    assert "sap" in unknown.json()["problems"][0]


def test_a_redeployed_trigger_applies_to_the_next_message_without_restarts(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    first = platform.deploy(write(tmp_path, PROJECT.format(form="old")), "moving")
    inbox_url = first["inbox_url"]
    old = httpx.post(inbox_url, json={"form": "old", "items": [1]}).json()
    eventually(lambda: settled_states(api, old["message_id"]))

    second = platform.deploy(write(tmp_path, PROJECT.format(form="new")), "moving")
    stale = httpx.post(inbox_url, json={"form": "old", "items": [1]}).json()
    new = httpx.post(inbox_url, json={"form": "new", "items": [1, 2]}).json()

    [state] = eventually(lambda: settled_states(api, new["message_id"]))
    assert state["state"] == "success"
    assert second["revision"] == first["revision"] + 1
    assert second["inbox_url"] == inbox_url
    assert api.get(f"/api/messages/{stale['message_id']}").json()["runs"] == []


def test_a_redelivered_message_yields_one_run(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    project = platform.deploy(write(tmp_path, PROJECT.format(form="dup")), "redelivery")
    assert platform.servers is not None
    message = Message(
        id=UUID(bytes=uuid_utils.uuid7().bytes),
        project_id=UUID(project["id"]),
        received_at=datetime.now(UTC),
        content_type="application/json",
        headers={},
        body=b'{"form": "dup", "items": [1, 2, 3]}',
        revision=10**9,
    )
    record = Record(
        topic=Topics.with_prefix(platform.topic_prefix).messages,
        key=message.project_id.bytes,
        value=message.body,
        headers=message.to_kafka_headers(),
    )
    producer = EventProducer({"bootstrap.servers": platform.servers.kafka_bootstrap})
    producer.produce_all([record, record, record])

    [state] = eventually(lambda: settled_states(api, str(message.id)))
    # A later message through the same partition has passed every copy.
    later = httpx.post(project["inbox_url"], json={"form": "dup", "items": []})
    eventually(lambda: settled_states(api, later.json()["message_id"]))
    receipt = api.get(f"/api/messages/{message.id}").json()

    assert state["state"] == "success"
    assert len(receipt["runs"]) == 1
    run = api.get(f"/api/runs/{state['run_id']}").json()
    assert run["final_state"]["count"] == 3
