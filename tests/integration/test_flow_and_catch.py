"""Flow jobs start from their upstream's final state, catch jobs from its failure."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devstack.stack import LocalStack
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

PROJECT = """\
jobs:
  register:
    trigger: visit
    expression: |
      fn(lambda state: {**state, "registered": state["data"]["name"]})
      fn(lambda state: 1 / 0 if state["data"].get("broken") else state)
  notify:
    trigger: registered
    expression: |
      fn(lambda state: {**state, "notified": state["registered"]})
  alert:
    trigger: registration-failed
    expression: |
      fn(lambda state: {**state, "alerted": state["error"]["job"]})
triggers:
  visit:
    criteria: '{"form": "visit"}'
  registered:
    success: register
  registration-failed:
    failure: register
"""


def settled_runs(api: httpx.Client, message_id: str, count: int) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        response = api.get(f"/api/messages/{message_id}")
        if response.status_code != 200:
            return None
        runs = response.json()["runs"]
        finished = [r for r in runs if r["finished_at"]]
        if len(finished) < count:
            return None
        return {r["job_name"]: api.get(f"/api/runs/{r['id']}").json() for r in runs}

    return eventually(probe, timeout_s=60)


@pytest.fixture(scope="module")
def project(
    platform: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("flow") / "project.yaml"
    path.write_text(PROJECT)
    return platform.deploy(path, "flow-and-catch")


def test_a_flow_job_starts_from_the_upstream_final_state(
    project: dict[str, Any], api: httpx.Client
) -> None:
    posted = httpx.post(project["inbox_url"], json={"form": "visit", "name": "Wanjiru"})

    runs = settled_runs(api, posted.json()["message_id"], count=2)

    assert set(runs) == {"register", "notify"}
    assert runs["notify"]["input_state"] == runs["register"]["final_state"]
    assert runs["notify"]["final_state"]["notified"] == "Wanjiru"
    assert runs["notify"]["trigger_kind"] == "success"
    states = api.get(f"/api/messages/{posted.json()['message_id']}").json()[
        "job_states"
    ]
    assert {s["job_name"]: s["state"] for s in states} == {
        "register": "success",
        "notify": "success",
    }


def test_a_catch_job_starts_from_the_state_at_failure_with_the_error(
    project: dict[str, Any], api: httpx.Client
) -> None:
    posted = httpx.post(
        project["inbox_url"], json={"form": "visit", "name": "Otieno", "broken": True}
    )

    runs = settled_runs(api, posted.json()["message_id"], count=2)

    assert set(runs) == {"register", "alert"}
    caught = runs["alert"]["input_state"]
    assert caught["registered"] == "Otieno"
    assert caught["error"]["job"] == "register"
    assert caught["error"]["exit_code"] == 1
    assert "ZeroDivisionError" in caught["error"]["message"]
    assert runs["alert"]["final_state"]["alerted"] == "register"


def test_a_loop_of_flow_triggers_is_refused_at_deploy(platform: LocalStack) -> None:
    looping = PROJECT.replace("success: register", "success: notify").replace(
        "trigger: registered", "trigger: registered"
    )
    response = httpx.put(
        f"{platform.api_url}/api/projects/loop",
        content=looping.encode(),
        headers={"content-type": "application/yaml", **platform.auth_headers()},
    )
    assert response.status_code == 422
    assert "notify -> notify form a loop" in response.json()["problems"][0]
