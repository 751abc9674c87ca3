"""Failed runs are retried by the rules, then dead-lettered; lost runs recover."""

from __future__ import annotations

import os
import signal
from typing import Any
from uuid import UUID

import httpx
import pytest

from cli.main import main as openfn
from devstack.stack import LocalStack
from shared.retries import retry_run_id
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

PROJECT = """\
jobs:
  always-fails:
    trigger: nightly-fail
    retries: 1
    expression: |
      fn(lambda state: 1 / 0)
  slow:
    trigger: nightly-slow
    expression: |
      fn(lambda state: __import__("time").sleep(4) or {**state, "slept": True})
triggers:
  nightly-fail:
    cron: "0 3 * * *"
  nightly-slow:
    cron: "0 4 * * *"
"""


@pytest.fixture(scope="module")
def project(platform: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("retries") / "project.yaml"
    path.write_text(PROJECT)
    platform.deploy(path, "retrying")
    return "retrying"


def run_now(api: httpx.Client, project: str, job: str) -> str:
    response = api.post(f"/api/projects/{project}/jobs/{job}/run")
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


def recorded(api: httpx.Client, run_id: str | UUID) -> dict[str, Any] | None:
    response = api.get(f"/api/runs/{run_id}")
    return response.json() if response.status_code == 200 else None


def finished(api: httpx.Client, run_id: str | UUID) -> dict[str, Any] | None:
    response = api.get(f"/api/runs/{run_id}")
    if response.status_code != 200 or response.json()["finished_at"] is None:
        return None
    return response.json()  # type: ignore[no-any-return]


def test_a_job_that_opted_in_is_retried_then_dead_lettered_and_can_be_redriven(
    project: str,
    platform: LocalStack,
    api: httpx.Client,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first_id = run_now(api, project, "always-fails")

    first = eventually(lambda: finished(api, first_id))
    retry = eventually(lambda: finished(api, retry_run_id(UUID(first_id))))
    letters = eventually(
        lambda: api.get("/api/dead-letters", params={"project": project}).json() or None
    )

    assert (first["exit_code"], first["attempt"]) == (1, 1)
    assert (retry["origin"], retry["attempt"], retry["exit_code"]) == ("retry", 2, 1)
    assert [(d["run_id"], d["attempts"]) for d in letters] == [(retry["id"], 2)]

    cli = ["--api", platform.api_url, "--token", str(platform.admin_token)]
    assert openfn(["dead-letters", "--project", project, *cli]) == 0
    assert retry["id"] in capsys.readouterr().out
    assert openfn(["redrive", retry["id"], *cli]) == 0
    redriven_id = capsys.readouterr().out.split()[1]
    assert eventually(lambda: finished(api, redriven_id))["origin"] == "rerun"
    assert api.get("/api/dead-letters", params={"project": project}).json() == []


def test_a_runner_killed_mid_run_leads_to_a_lost_run_then_a_retried_finished_one(
    project: str, platform: LocalStack, api: httpx.Client
) -> None:
    platform.start_service("runner", name="runner-spare")
    run_id = run_now(api, project, "slow")

    started = eventually(lambda: recorded(api, run_id))
    os.kill(int(started["runner"].rsplit("-", 1)[1]), signal.SIGKILL)

    lost = eventually(lambda: finished(api, run_id), timeout_s=60)
    retried = eventually(
        lambda: finished(api, retry_run_id(UUID(run_id))), timeout_s=60
    )

    assert (lost["status"], lost["exit_code"]) == ("lost", 4)
    assert (retried["status"], retried["origin"], retried["attempt"]) == (
        "succeeded",
        "retry",
        2,
    )
    assert retried["final_state"]["slept"] is True
    assert retried["runner"] != started["runner"]
