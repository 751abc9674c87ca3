"""A project exports as project.yaml with secrets masked, and deploys back unchanged."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import httpx
import pytest
import yaml

from cli.main import main as openfn
from devstack.stack import LocalStack
from tests.conftest import VaultServer

pytestmark = pytest.mark.integration

SECRET = "export-canary-9Zq"

PROJECT = f"""\
timezone: Africa/Nairobi
jobs:
  sync:
    trigger: nightly
    adaptor: http
    credential: dhis2
    retries: 2
    expression: |
      get("/api/me")
      log("synced")
  notify:
    trigger: synced
    expression: |
      fn(lambda state: state)
  intake:
    trigger: form
    enabled: false
    expression: |
      fn(lambda state: state)
triggers:
  nightly:
    cron: "0 2 * * *"
    missed: run_once
  synced:
    success: sync
  form:
    criteria: '{{"form": "intake"}}'
    exclusion: '{{"test": true}}'
credentials:
  dhis2:
    base_url: https://dhis2.example.org
    username: sync
    password: {SECRET}
"""


def test_the_export_masks_secrets_and_deploys_back_without_change(
    platform: LocalStack,
    tmp_path: Path,
    vault: VaultServer,
) -> None:
    assert platform.admin_token is not None
    source = tmp_path / "project.yaml"
    source.write_text(PROJECT)
    first = platform.deploy(source, "exported")
    exported = tmp_path / "exported.yaml"

    code = openfn(
        [
            "export",
            "--project",
            "exported",
            "--output",
            str(exported),
            "--api",
            platform.api_url,
            "--token",
            platform.admin_token,
        ]
    )

    assert code == 0
    text = exported.read_text()
    assert SECRET not in text
    document = yaml.safe_load(text)
    assert document["credentials"]["dhis2"] == {
        "base_url": "******",
        "password": "******",
        "username": "******",
    }
    assert document["jobs"]["sync"]["retries"] == 2
    assert document["jobs"]["intake"]["enabled"] is False
    assert document["triggers"]["nightly"] == {
        "cron": "0 2 * * *",
        "missed": "run_once",
    }
    assert document["triggers"]["synced"] == {"success": "sync"}
    assert document["timezone"] == "Africa/Nairobi"

    again = platform.deploy(exported, "exported")
    stored = vault.client().read_credential(UUID(first["id"]), "dhis2")
    assert stored["password"] == SECRET
    assert [j["version"] for j in again["jobs"]] == [
        j["version"] for j in first["jobs"]
    ]
    reexported = httpx.get(
        f"{platform.api_url}/api/projects/exported/project.yaml",
        headers=platform.auth_headers(),
    )
    assert reexported.text == text
