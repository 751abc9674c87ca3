"""Admins manage inbox credentials through the API; senders feel it at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.stack import LocalStack
from tests.integration.conftest import EXAMPLE, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def project(platform: LocalStack, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "project.yaml"
    path.write_text(EXAMPLE.read_text())
    return platform.deploy(path, f"guarded-{tmp_path.name[-6:]}")


def status_with_key(inbox_url: str, key: str | None) -> int:
    headers = {"x-api-key": key} if key else {}
    return httpx.post(inbox_url, json={"form": "survey"}, headers=headers).status_code


def test_an_api_key_created_through_the_api_guards_the_inbox_until_revoked(
    project: dict[str, Any], api: httpx.Client
) -> None:
    base = f"/api/projects/{project['name']}/inbox-credentials"
    created = api.post(base, json={"kind": "api_key", "name": "commcare"})
    assert created.status_code == 201
    key = created.json()["secret"]
    inbox = project["inbox_url"]

    assert eventually(lambda: True if status_with_key(inbox, None) == 401 else None)
    assert status_with_key(inbox, key) == 202
    assert status_with_key(inbox, key + "x") == 404
    listed = api.get(base).json()
    assert [(c["kind"], c["name"]) for c in listed] == [("api_key", "commcare")]
    assert key not in api.get(base).text

    assert api.delete(f"{base}/{created.json()['id']}").status_code == 204
    assert eventually(lambda: True if status_with_key(inbox, None) == 202 else None)
    assert api.delete(f"{base}/{created.json()['id']}").status_code == 404
