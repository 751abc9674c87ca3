"""Run requests are processed at least once, but a finished run is never run again."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from devstack.stack import LocalStack
from shared.db import connect
from shared.events import JobSpec, RunRequest, TriggerRef
from shared.kafka import EventProducer, Record
from shared.model import TriggerKind
from shared.topics import Topics
from tests.conftest import LOG_DIR
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

PROJECT = """\
jobs:
  slow-count:
    trigger: count
    adaptor: common
    expression: |
      fn(lambda state: __import__("time").sleep(0.3) or {**state, "seen": True})
triggers:
  count:
    criteria: '{"form": "count"}'
"""


def request_for(project: dict[str, Any]) -> RunRequest:
    job = project["jobs"][0]
    return RunRequest(
        run_id=uuid4(),
        project_id=project["id"],
        job=JobSpec(
            id=job["id"],
            name=job["name"],
            version=job["version"],
            adaptor="common",
            expression='fn(lambda state: {**state, "n": state.get("n", 0) + 1})',
        ),
        trigger=TriggerRef(id=None, name="manual", kind=TriggerKind.MESSAGE),
        message_id=None,
        input_state={"n": 0},
        requested_at=datetime.now(UTC),
    )


def send(platform: LocalStack, request: RunRequest) -> None:
    assert platform.servers is not None
    producer = EventProducer({"bootstrap.servers": platform.servers.kafka_bootstrap})
    producer.produce_all(
        [
            Record(
                topic=Topics.with_prefix(platform.topic_prefix).run_requests,
                key=request.run_id.bytes,
                value=request.model_dump_json().encode(),
            )
        ]
    )


def finished(api: httpx.Client, run_id: object) -> dict[str, Any] | None:
    response = api.get(f"/api/runs/{run_id}")
    if response.status_code != 200 or response.json()["finished_at"] is None:
        return None
    return response.json()  # type: ignore[no-any-return]


def test_a_redelivered_request_of_a_finished_run_is_not_run_again(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT)
    project = platform.deploy(path, "delivery")
    request = request_for(project)
    send(platform, request)
    first = eventually(lambda: finished(api, request.run_id))

    send(platform, request)
    sentinel = request_for(project)
    send(platform, sentinel)
    eventually(lambda: finished(api, sentinel.run_id))
    # The duplicate went to the same partition as the original, ahead of
    # nothing else; give it the time a run takes before looking again.
    time.sleep(1)
    again = finished(api, request.run_id)

    assert again is not None
    assert again["finished_at"] == first["finished_at"]
    assert again["final_state"] == {"n": 1}
    # Any runner of the platform may have been the one to skip it.
    runner_logs = [
        line
        for path in (LOG_DIR / "platform").glob("runner*.log")
        for line in path.read_text().splitlines()
    ]
    skipped = [line for line in runner_logs if "run.already_finished" in line]
    assert any(str(request.run_id) in line for line in skipped)


def test_two_runners_share_the_work(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT)
    project = platform.deploy(path, "shared-work")
    second = platform.start_service("runner", name="runner-2")
    try:
        time.sleep(8)  # the group rebalances onto both runners
        posted = [
            httpx.post(project["inbox_url"], json={"form": "count", "n": n}).json()
            for n in range(12)
        ]
        runs = [
            eventually(partial(_finished_run, api, p["message_id"]), timeout_s=60)
            for p in posted
        ]
    finally:
        second.stop()

    assert all(run["exit_code"] == 0 for run in runs)
    assert len({run["runner"] for run in runs}) == 2
    assert os.path.exists(LOG_DIR / "platform" / "runner-2.log")


def _finished_run(api: httpx.Client, message_id: str) -> dict[str, Any] | None:
    receipt = api.get(f"/api/messages/{message_id}")
    if receipt.status_code != 200:
        return None
    runs = [r for r in receipt.json()["runs"] if r["finished_at"]]
    return finished(api, runs[0]["id"]) if runs else None


def claim_of(platform: LocalStack, run_id: object) -> dict[str, Any] | None:
    assert platform.servers is not None
    with connect(platform.servers.database_url) as conn:
        return conn.execute(
            "SELECT runner, claimed_at, heartbeat_at, finished_at FROM run_claims"
            " WHERE run_id = %s",
            (run_id,),
        ).fetchone()


def hold_claim(platform: LocalStack, run_id: object, age_s: float) -> None:
    """A claim by a runner named ``gone``, last renewed ``age_s`` ago."""
    assert platform.servers is not None
    with connect(platform.servers.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO run_claims (run_id, runner, claimed_at, heartbeat_at)"
            " VALUES (%s, 'gone', now() - make_interval(secs => %s),"
            " now() - make_interval(secs => %s))"
            " ON CONFLICT (run_id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at",
            (run_id, age_s, age_s),
        )


def test_a_claim_left_by_a_runner_that_died_before_its_run_started_is_taken_over(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT)
    project = platform.deploy(path, "taken-over")
    request = request_for(project)
    hold_claim(platform, request.run_id, age_s=3600)

    send(platform, request)
    run = eventually(lambda: finished(api, request.run_id), timeout_s=60)

    assert run["status"] == "succeeded"
    assert run["final_state"] == {"n": 1}
    assert run["runner"] != "gone"
    claim = claim_of(platform, request.run_id)
    assert claim is not None
    assert claim["runner"] == run["runner"]
    assert claim["finished_at"] is not None


def test_a_claim_still_renewed_is_left_to_its_runner_until_it_goes_quiet(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT)
    project = platform.deploy(path, "still-held")
    request = request_for(project)
    hold_claim(platform, request.run_id, age_s=0)
    send(platform, request)

    # Renewed every half second for longer than a claim takes to go stale
    # (4 s here): the run is left alone.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        hold_claim(platform, request.run_id, age_s=0)
        time.sleep(0.5)
    assert finished(api, request.run_id) is None
    assert api.get(f"/api/runs/{request.run_id}").status_code == 404

    # Its runner went quiet: the run is taken over and runs once.
    run = eventually(lambda: finished(api, request.run_id), timeout_s=60)
    assert run["status"] == "succeeded"
    assert run["runner"] != "gone"


def test_a_runner_renews_the_claim_of_a_run_under_way(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT)
    project = platform.deploy(path, "renewed")
    request = request_for(project)
    slow = request.job.model_copy(
        update={
            "expression": 'fn(lambda state: __import__("time").sleep(3.5) or state)'
        }
    )
    request = request.model_copy(update={"job": slow})
    send(platform, request)

    claim = eventually(lambda: claim_of(platform, request.run_id))
    renewed = eventually(
        lambda: (
            c
            if (c := claim_of(platform, request.run_id))
            and c["heartbeat_at"] - c["claimed_at"] >= timedelta(seconds=1.5)
            else None
        ),
        timeout_s=20,
    )
    assert renewed["finished_at"] is None
    assert renewed["runner"] == claim["runner"]
    eventually(lambda: finished(api, request.run_id))
