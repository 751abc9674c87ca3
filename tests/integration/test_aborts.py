"""An admin aborts a run in progress: it stops, ends with exit code 6, and
nothing follows it, whether its runner stops it or its runner is gone."""

from __future__ import annotations

import os
import signal
import time
from typing import Any
from uuid import UUID

import httpx
import pytest

from cli.main import main as openfn
from devstack.stack import LocalStack
from services.dispatcher.planning import chained_run_id
from shared.model import project_scoped_id
from shared.retries import retry_run_id
from tests.integration.conftest import eventually
from tests.integration.test_access import add_user, headers
from tests.integration.test_console_access import signed_in

pytestmark = pytest.mark.integration

# The slow job sleeps for less than the test stack's run timeout (8 s), so
# only an abort can end it early, and opts in to retries, which an abort skips.
PROJECT = """\
jobs:
  slow:
    trigger: nightly
    retries: 2
    expression: |
      import time
      def work(state):
          print("working", flush=True)
          time.sleep(7)
          return state
      fn(work)
  tidy-up:
    trigger: slow-failed
    expression: |
      fn(lambda state: {**state, "tidied": True})
triggers:
  nightly:
    cron: "0 4 * * *"
  slow-failed:
    failure: slow
"""

# Long enough for a retry (base delay 1 s) or a catch run to be recorded.
QUIET_S = 6.0


@pytest.fixture(scope="module")
def project(
    platform: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("aborts") / "project.yaml"
    path.write_text(PROJECT)
    return platform.deploy(path, "aborting")


def started_run(api: httpx.Client) -> dict[str, Any]:
    response = api.post("/api/projects/aborting/jobs/slow/run")
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    return eventually(lambda: found(api, run_id))


def found(api: httpx.Client, run_id: str | UUID) -> dict[str, Any] | None:
    response = api.get(f"/api/runs/{run_id}")
    return response.json() if response.status_code == 200 else None


def finished(api: httpx.Client, run_id: str | UUID) -> dict[str, Any] | None:
    run = found(api, run_id)
    return run if run is not None and run["finished_at"] is not None else None


def assert_nothing_followed(
    api: httpx.Client, project: dict[str, Any], run_id: str
) -> None:
    time.sleep(QUIET_S)
    tidy_up = project_scoped_id(UUID(project["id"]), "job", "tidy-up")
    assert found(api, retry_run_id(UUID(run_id))) is None
    assert found(api, chained_run_id(UUID(run_id), tidy_up)) is None


def test_an_admin_aborts_a_run_in_progress_and_nothing_follows_it(
    project: dict[str, Any], platform: LocalStack, api: httpx.Client
) -> None:
    run = started_run(api)

    asked = api.post(f"/api/runs/{run['id']}/abort")
    ended = eventually(lambda: finished(api, run["id"]))

    assert asked.status_code == 202, asked.text
    assert asked.json()["requested_by"] == "admin"
    assert (ended["status"], ended["exit_code"]) == ("aborted", 6)
    assert ended["error"].startswith("the run was aborted by admin")
    assert ended["abort"]["requested_by"] == "admin"
    assert ended["final_state"] is None
    assert [line["message"] for line in ended["logs"]] == ["working"]
    assert_nothing_followed(api, project, run["id"])
    events = api.get("/api/projects/aborting/audit").json()["events"]
    assert [(e["action"], e["subject"]) for e in events[:1]] == [
        ("run.abort_requested", run["id"])
    ]


def test_aborting_needs_the_admin_role_and_a_run_in_progress(
    project: dict[str, Any],
    platform: LocalStack,
    api: httpx.Client,
    capsys: pytest.CaptureFixture[str],
) -> None:
    editor = add_user(api, "abort-editor")
    outsider = add_user(api, "abort-outsider")
    seated = api.put(
        "/api/projects/aborting/collaborators/abort-editor", json={"role": "editor"}
    )
    assert seated.status_code == 200
    run = started_run(api)
    url = f"{platform.api_url}/api/runs/{run['id']}/abort"
    button = f'data-url="/api/runs/{run["id"]}/abort"'
    page = f"/console/runs/{run['id']}"
    with signed_in(platform, token=editor) as (console, _cookie):
        editor_page = console.get(page)
    with signed_in(platform, token=str(platform.admin_token)) as (console, _cookie):
        admin_page = console.get(page)

    as_editor = httpx.post(url, headers=headers(editor))
    as_outsider = httpx.post(url, headers=headers(outsider))
    first = api.post(f"/api/runs/{run['id']}/abort")
    cli = ["--api", platform.api_url, "--token", str(platform.admin_token)]
    exit_code = openfn(["abort", run["id"], *cli])
    again = api.post(f"/api/runs/{run['id']}/abort")
    with signed_in(platform, token=str(platform.admin_token)) as (console, _cookie):
        asked_page = console.get(page)
    eventually(lambda: finished(api, run["id"]))
    after = api.post(f"/api/runs/{run['id']}/abort")

    assert (as_editor.status_code, as_editor.json()["required_role"]) == (
        403,
        "admin",
    )
    assert (as_outsider.status_code, as_outsider.json()["code"]) == (
        404,
        "run_not_found",
    )
    assert button in admin_page.text
    assert ">Abort run<" in admin_page.text
    assert button not in editor_page.text
    assert ">Re-run<" in editor_page.text
    assert button not in asked_page.text
    assert "<dt>Abort</dt><dd>asked by admin" in asked_page.text
    assert exit_code == 0
    assert f"abort of run {run['id']} requested by admin" in capsys.readouterr().out
    assert again.status_code == 202
    assert again.json() == first.json()
    assert (after.status_code, after.json()["code"]) == (409, "run_finished")


def test_a_run_whose_runner_is_gone_is_reported_aborted_not_lost(
    project: dict[str, Any], platform: LocalStack, api: httpx.Client
) -> None:
    run = started_run(api)
    pid = int(run["runner"].rsplit("-", 1)[1])
    runner = platform.process_with_pid(pid)
    os.kill(pid, signal.SIGKILL)
    try:
        asked = api.post(f"/api/runs/{run['id']}/abort")
        ended = eventually(lambda: finished(api, run["id"]), timeout_s=60)
    finally:
        # The tests that follow expect every runner of the stack to be up.
        runner.restart()
        platform.wait_ready(60)

    assert asked.status_code == 202
    assert (ended["status"], ended["exit_code"]) == ("aborted", 6)
    assert ended["error"] == ("the run was aborted by admin; its runner did not answer")
    assert_nothing_followed(api, project, run["id"])
