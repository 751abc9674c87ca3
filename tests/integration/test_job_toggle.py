"""`PATCH /api/projects/{name}/jobs/{job}` enables or disables one job by
deploying the project again; running services follow the new deployment."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml

from cli.main import main as openfn
from devstack.stack import LocalStack
from tests.conftest import VaultServer
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

SECRET = "toggle-canary-4Kp"

# Both jobs match every visit; `witness` stays enabled, so once it has run the
# dispatcher has matched the message against every job.
PROJECT = f"""\
jobs:
  tally:
    trigger: visit
    credential: store
    expression: |
      fn(lambda state: {{**state, "tallied": True}})
  witness:
    trigger: visit
    expression: |
      fn(lambda state: state)
triggers:
  visit:
    criteria: '{{"kind": "visit"}}'
credentials:
  store:
    token: {SECRET}
"""


@dataclass(frozen=True)
class Team:
    """Tokens of an editor, a viewer and an outsider of each test's project."""

    editor: str
    viewer: str
    outsider: str


@dataclass(frozen=True)
class Project:
    name: str
    id: str
    inbox_url: str


def headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def add_user(api: httpx.Client, username: str) -> str:
    """A new user's token, issued by the site admin."""
    assert api.post("/api/users", json={"username": username}).status_code == 201
    issued = api.post("/api/tokens", json={"name": "tests", "username": username})
    assert issued.status_code == 201
    return str(issued.json()["token"])


@pytest.fixture(scope="module")
def team(platform: LocalStack) -> Team:
    with httpx.Client(
        base_url=platform.api_url, headers=platform.auth_headers(), timeout=10
    ) as api:
        return Team(
            editor=add_user(api, "jt-editor"),
            viewer=add_user(api, "jt-viewer"),
            outsider=add_user(api, "jt-outsider"),
        )


@pytest.fixture
def project(
    platform: LocalStack, api: httpx.Client, team: Team, tmp_path: Path
) -> Iterator[Project]:
    """A project of this test's own, deployed by the site admin, with the
    team's editor and viewer seated."""
    name = f"toggle-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT)
    deployed = platform.deploy(path, name)
    for role in ("editor", "viewer"):
        seated = api.put(
            f"/api/projects/{name}/collaborators/jt-{role}", json={"role": role}
        )
        assert seated.status_code == 200
    yield Project(name, deployed["id"], deployed["inbox_url"])
    assert api.delete(f"/api/projects/{name}").status_code == 204


def toggle(
    platform: LocalStack, token: str, project: str, job: str, body: Any
) -> httpx.Response:
    return httpx.patch(
        f"{platform.api_url}/api/projects/{project}/jobs/{job}",
        json=body,
        headers=headers(token),
        timeout=30,
    )


def jobs_run(api: httpx.Client, inbox_url: str) -> dict[str, str]:
    """Post a visit; once `witness` has finished, each job that ran and its
    run's status."""
    posted = httpx.post(inbox_url, json={"kind": "visit"}, timeout=30)
    assert posted.status_code == 202
    message_id = posted.json()["message_id"]

    def settled() -> dict[str, str] | None:
        receipt = api.get(f"/api/messages/{message_id}")
        if receipt.status_code != 200:
            return None
        runs = {run["job_name"]: run for run in receipt.json()["runs"]}
        if any(run["finished_at"] is None for run in runs.values()):
            return None
        return {job: run["status"] for job, run in runs.items()} or None

    return eventually(settled, timeout_s=60)


def job_named(api: httpx.Client, project: str, job: str) -> dict[str, Any]:
    jobs = api.get(f"/api/projects/{project}").json()["jobs"]
    return next(j for j in jobs if j["name"] == job)


def test_disabling_a_job_stops_new_messages_from_running_it_and_the_export_shows_it(
    platform: LocalStack,
    api: httpx.Client,
    team: Team,
    project: Project,
    tmp_path: Path,
    vault: VaultServer,
) -> None:
    before = api.get(f"/api/projects/{project.name}").json()

    disabled = toggle(platform, team.editor, project.name, "tally", {"enabled": False})
    ran = jobs_run(api, project.inbox_url)
    exported = tmp_path / "exported.yaml"
    code = openfn(
        [
            "export",
            "--project",
            project.name,
            "--output",
            str(exported),
            "--api",
            platform.api_url,
            "--token",
            team.editor,
        ]
    )
    after = api.get(f"/api/projects/{project.name}").json()
    audit = api.get(f"/api/projects/{project.name}/audit").json()["events"]

    assert disabled.status_code == 200
    assert disabled.json() == job_named(api, project.name, "tally")
    assert disabled.json()["enabled"] is False
    assert disabled.json()["name"] == "tally"
    assert ran == {"witness": "succeeded"}
    assert code == 0
    document = yaml.safe_load(exported.read_text())
    assert document["jobs"]["tally"]["enabled"] is False
    assert "enabled" not in document["jobs"]["witness"]
    assert document["credentials"] == {"store": {"token": "******"}}
    assert after["revision"] == before["revision"] + 1
    assert [j["version"] for j in after["jobs"]] == [
        j["version"] for j in before["jobs"]
    ]
    assert (audit[0]["action"], audit[0]["actor"]) == (
        "project.deployed",
        "jt-editor",
    )
    assert audit[0]["details"]["credentials_set"] == []
    stored = vault.client().read_credential(UUID(project.id), "store")
    assert stored == {"token": SECRET}


def test_enabling_a_job_again_makes_new_messages_run_it(
    platform: LocalStack, api: httpx.Client, team: Team, project: Project
) -> None:
    off = toggle(platform, team.editor, project.name, "tally", {"enabled": False})
    assert off.status_code == 200
    assert jobs_run(api, project.inbox_url) == {"witness": "succeeded"}

    on = toggle(platform, team.editor, project.name, "tally", {"enabled": True})
    ran = jobs_run(api, project.inbox_url)

    assert on.status_code == 200
    assert on.json()["enabled"] is True
    assert ran == {"tally": "succeeded", "witness": "succeeded"}
    exported = api.get(f"/api/projects/{project.name}/project.yaml").text
    assert "enabled" not in yaml.safe_load(exported)["jobs"]["tally"]


def test_asking_for_the_state_a_job_is_already_in_deploys_nothing(
    platform: LocalStack, api: httpx.Client, team: Team, project: Project
) -> None:
    before = api.get(f"/api/projects/{project.name}").json()

    same = toggle(platform, team.editor, project.name, "tally", {"enabled": True})
    after = api.get(f"/api/projects/{project.name}").json()

    assert same.status_code == 200
    assert same.json() == job_named(api, project.name, "tally")
    assert same.json()["enabled"] is True
    assert after["revision"] == before["revision"]


def test_a_viewer_is_forbidden_and_an_outsider_is_told_there_is_no_such_project(
    platform: LocalStack, api: httpx.Client, team: Team, project: Project
) -> None:
    off = {"enabled": False}

    viewer = toggle(platform, team.viewer, project.name, "tally", off)
    outsider = toggle(platform, team.outsider, project.name, "tally", off)
    missing = toggle(platform, team.outsider, "no-such-project", "tally", off)

    assert viewer.status_code == 403
    assert viewer.json()["code"] == "forbidden"
    assert viewer.json()["required_role"] == "editor"
    assert outsider.status_code == missing.status_code == 404
    assert outsider.json() == {
        "code": "project_not_found",
        "message": f"no project {project.name}",
    }
    assert missing.json()["code"] == "project_not_found"
    assert job_named(api, project.name, "tally")["enabled"] is True


def test_an_unknown_job_is_not_found(
    platform: LocalStack, api: httpx.Client, team: Team, project: Project
) -> None:
    before = api.get(f"/api/projects/{project.name}").json()

    response = toggle(platform, team.editor, project.name, "nope", {"enabled": False})

    assert response.status_code == 404
    assert response.json() == {"code": "job_not_found", "message": "no job nope"}
    assert api.get(f"/api/projects/{project.name}").json() == before


@pytest.mark.parametrize(
    "body",
    [
        {"enabled": "false"},
        {"enabled": 0},
        {"enabled": None},
        {},
        {"enabled": False, "job": "witness"},
        [False],
    ],
)
def test_a_body_without_a_boolean_enabled_alone_is_refused(
    platform: LocalStack, api: httpx.Client, team: Team, project: Project, body: Any
) -> None:
    response = toggle(platform, team.editor, project.name, "tally", body)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert job_named(api, project.name, "tally")["enabled"] is True
