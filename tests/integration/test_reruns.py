"""Re-runs, reprocessing and run now, through the API and the CLI, on the platform."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID, uuid4

import httpx
import pytest
from psycopg.types.json import Jsonb

from cli.main import main as openfn
from devstack.stack import LocalStack
from shared.db.connection import connect
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

REFERRAL_AND_PAYMENT = """\
jobs:
  register-referral:
    trigger: referral-received
    adaptor: common
    expression: |
      fn(lambda state: {{**state, "referred": state["data"]["patient"]}})
  make-payment:
    trigger: referral-received
    adaptor: http
    credential: bank
    expression: |
      post("/payments", json=lambda state: {{"ref": state["data"]["ref"]}})
triggers:
  referral-received:
    criteria: '{{"form": "referral"}}'
credentials:
  bank:
    base_url: {bank_url}
    token: bank-token
"""

ALWAYS_FAILS = """\
jobs:
  fail-always:
    trigger: visit
    adaptor: common
    expression: |
      fn(lambda state: 1 / 0)
  tally:
    trigger: visit
    adaptor: common
    expression: |
      fn(lambda state: {**state, "tallied": True})
triggers:
  visit:
    criteria: '{"kind": "visit"}'
"""

LATE_JOBS = """\
jobs:
  survey-count:
    trigger: survey
    adaptor: common
    expression: |
      fn(lambda state: {**state, "counted": True})
  survey-archive:
    trigger: survey
    adaptor: common
    enabled: false
    expression: |
      fn(lambda state: state)
triggers:
  survey:
    criteria: '{"form": "survey"}'
"""

NO_JOBS = """\
jobs:
  referral-only:
    trigger: referral
    adaptor: common
    expression: |
      fn(lambda state: state)
triggers:
  referral:
    criteria: '{"form": "referral"}'
"""

CRON_JOB = """\
jobs:
  nightly-sync:
    trigger: nightly
    adaptor: common
    expression: |
      fn(lambda state: {**state, "syncs": state.get("syncs", 0) + 1})
  on-message:
    trigger: any-message
    adaptor: common
    expression: |
      fn(lambda state: state)
triggers:
  nightly:
    cron: "0 23 * * 5"
  any-message:
    criteria: '{"kind": "ping"}'
"""


CLI_PROJECT = """\
jobs:
  fail-always:
    trigger: visit
    adaptor: common
    expression: |
      fn(lambda state: 1 / 0)
  tally:
    trigger: visit
    adaptor: common
    expression: |
      fn(lambda state: {**state, "tallied": True})
  nightly-sync:
    trigger: nightly
    adaptor: common
    expression: |
      fn(lambda state: {**state, "syncs": state.get("syncs", 0) + 1})
triggers:
  visit:
    criteria: '{"kind": "visit"}'
  nightly:
    cron: "0 23 * * 5"
"""


class FlakyBank(BaseHTTPRequestHandler):
    """Answers 500 to the first payment of each reference, 200 afterwards."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[set[str]] = set()
    lock = threading.Lock()

    def do_POST(self) -> None:
        payment = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with self.lock:
            first = payment["ref"] not in self.seen
            self.seen.add(payment["ref"])
        answer = b'{"paid": false}' if first else b'{"paid": true}'
        self.send_response(500 if first else 200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the runs, not the server's access log."""


@pytest.fixture(scope="module")
def bank_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyBank)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def deploy(platform: LocalStack, tmp_path: Path, name: str, text: str) -> Any:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return platform.deploy(path, name)


def settled_receipt(
    api: httpx.Client, message_id: str, runs: int, timeout_s: float = 60
) -> dict[str, Any]:
    """The receipt once it shows ``runs`` runs, every one of them finished."""

    def probe() -> dict[str, Any] | None:
        response = api.get(f"/api/messages/{message_id}")
        if response.status_code != 200:
            return None
        receipt = response.json()
        finished = [r for r in receipt["runs"] if r["finished_at"]]
        in_progress = [s for s in receipt["job_states"] if s["state"] == "in progress"]
        if len(finished) == runs and not in_progress:
            return dict(receipt)
        return None

    return eventually(probe, timeout_s)


def finished_run(api: httpx.Client, run_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        response = api.get(f"/api/runs/{run_id}")
        if response.status_code == 200 and response.json()["finished_at"]:
            return dict(response.json())
        return None

    return eventually(probe, timeout_s=60)


def rerun_when_allowed(api: httpx.Client, run_id: str) -> httpx.Response:
    """Ask for a re-run, waiting out the 10-second rule as it says to."""
    for _ in range(3):
        response = api.post(f"/api/runs/{run_id}/rerun")
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers["retry-after"]))
    raise AssertionError("the gate never let the re-run through")


def states_by_job(receipt: dict[str, Any]) -> dict[str, str]:
    return {state["job_name"]: state["state"] for state in receipt["job_states"]}


def test_rerunning_the_failed_payment_leaves_two_successful_job_states_and_three_runs(
    platform: LocalStack, tmp_path: Path, api: httpx.Client, bank_url: str
) -> None:
    project = deploy(
        platform,
        tmp_path,
        "referral-payments",
        REFERRAL_AND_PAYMENT.format(bank_url=bank_url),
    )
    posted = httpx.post(
        project["inbox_url"],
        json={"form": "referral", "patient": "Amina", "ref": str(uuid4())},
    ).json()
    first = settled_receipt(api, posted["message_id"], runs=2)
    [failed] = [r for r in first["runs"] if r["job_name"] == "make-payment"]

    response = rerun_when_allowed(api, failed["id"])

    assert response.status_code == 202
    rerun_id = response.json()["run_id"]
    after = settled_receipt(api, posted["message_id"], runs=3)
    assert states_by_job(first) == {
        "register-referral": "success",
        "make-payment": "failure",
    }
    assert states_by_job(after) == {
        "register-referral": "success",
        "make-payment": "success",
    }
    [payment_state] = [
        s for s in after["job_states"] if s["job_name"] == "make-payment"
    ]
    assert payment_state["run_id"] == rerun_id
    rerun = api.get(f"/api/runs/{rerun_id}").json()
    assert rerun["origin"] == "rerun"
    assert rerun["message_id"] == posted["message_id"]
    assert (
        rerun["input_state"]
        == api.get(f"/api/runs/{failed['id']}").json()["input_state"]
    )


def test_a_rerun_inside_10_seconds_is_refused_with_429_and_accepted_after_the_wait(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    project = deploy(platform, tmp_path, "gated", ALWAYS_FAILS)
    posted = httpx.post(project["inbox_url"], json={"kind": "visit"}).json()
    receipt = settled_receipt(api, posted["message_id"], runs=2)
    [run] = [r for r in receipt["runs"] if r["job_name"] == "fail-always"]

    refused = api.post(f"/api/runs/{run['id']}/rerun")
    time.sleep(float(refused.headers["retry-after"]))
    accepted = api.post(f"/api/runs/{run['id']}/rerun")
    again = api.post(f"/api/runs/{run['id']}/rerun")

    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_runs"
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert accepted.status_code == 202
    assert again.status_code == 429
    finished_run(api, accepted.json()["run_id"])


def test_a_rerun_of_an_unknown_run_is_404_and_one_without_input_state_is_409(
    platform: LocalStack, api: httpx.Client
) -> None:
    run_id = insert_run(platform, uuid4(), uuid4(), "message", input_state=None)

    unknown = api.post(f"/api/runs/{uuid4()}/rerun")
    no_input = api.post(f"/api/runs/{run_id}/rerun")

    assert unknown.status_code == 404
    assert no_input.status_code == 409
    assert no_input.json()["code"] == "no_input_state"


def insert_run(
    platform: LocalStack,
    project_id: UUID,
    job_id: UUID,
    origin: str,
    message_id: UUID | None = None,
    input_state: Any = None,
) -> UUID:
    """A failed run written straight to the history, as if a runner had."""
    assert platform.servers is not None
    run_id = uuid4()
    with connect(platform.servers.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO runs (id, project_id, job_id, job_name, trigger_kind,"
            " message_id, origin, status, exit_code, started_at, finished_at,"
            " input_state)"
            " VALUES (%s, %s, %s, 'fail-always', 'success', %s, %s, 'failed', 1,"
            " now(), now(), %s)",
            (
                run_id,
                project_id,
                job_id,
                message_id,
                origin,
                Jsonb(input_state) if input_state is not None else None,
            ),
        )
    return run_id


def test_a_bulk_rerun_of_failed_runs_reruns_them_and_skips_runs_flow_or_catch_started(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    project = deploy(platform, tmp_path, "bulk", ALWAYS_FAILS)
    [fail_job] = [j for j in project["jobs"] if j["name"] == "fail-always"]
    posted = [
        httpx.post(project["inbox_url"], json={"kind": "visit", "n": n}).json()
        for n in range(2)
    ]
    failed = {
        run["id"]
        for message in posted
        for run in settled_receipt(api, message["message_id"], runs=2)["runs"]
        if run["status"] == "failed"
    }
    chained = insert_run(
        platform, UUID(project["id"]), UUID(fail_job["id"]), "flow", input_state={}
    )
    ask = {"job": "fail-always", "status": "failed"}

    early = api.post("/api/projects/bulk/runs/rerun", json=ask).json()
    time.sleep(max(r["retry_after_s"] for r in early["refused"]))
    later = api.post("/api/projects/bulk/runs/rerun", json=ask).json()

    assert {r["run_id"] for r in early["refused"]} == failed
    assert (early["requested"], early["skipped_chained"]) == ([], 1)
    assert len(later["requested"]) == 2
    assert (later["refused"], later["skipped_chained"]) == ([], 1)
    reruns = [finished_run(api, run_id) for run_id in later["requested"]]
    assert {run["origin"] for run in reruns} == {"rerun"}
    assert {run["job_name"] for run in reruns} == {"fail-always"}
    assert str(chained) not in later["requested"]


def test_reprocessing_runs_jobs_deployed_since_and_respects_disabled_ones(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    project = deploy(platform, tmp_path, "late", NO_JOBS)
    posted = httpx.post(project["inbox_url"], json={"form": "survey"}).json()
    receipt_url = f"/api/messages/{posted['message_id']}"
    eventually(lambda: api.get(receipt_url).status_code == 200 or None)
    deploy(platform, tmp_path, "late", LATE_JOBS)

    response = api.post(
        "/api/projects/late/messages/reprocess", json={"ids": [posted["message_id"]]}
    )

    assert response.status_code == 202
    assert response.json()["reprocessed"] == [posted["message_id"]]
    receipt = settled_receipt(api, posted["message_id"], runs=1)
    assert states_by_job(receipt) == {"survey-count": "success"}
    assert receipt["runs"][0]["origin"] == "reprocess"


def test_reprocessing_a_message_of_another_project_is_404(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    deploy(platform, tmp_path, "elsewhere", NO_JOBS)

    response = api.post(
        "/api/projects/elsewhere/messages/reprocess", json={"ids": [str(uuid4())]}
    )

    assert response.status_code == 404
    assert response.json()["code"] == "message_not_found"


def test_run_now_runs_a_cron_job_from_its_cursor(
    platform: LocalStack, tmp_path: Path, api: httpx.Client
) -> None:
    deploy(platform, tmp_path, "scheduled", CRON_JOB)

    first = api.post("/api/projects/scheduled/jobs/nightly-sync/run")
    first_run = finished_run(api, first.json()["run_id"])
    second = api.post("/api/projects/scheduled/jobs/nightly-sync/run")
    second_run = finished_run(api, second.json()["run_id"])
    not_cron = api.post("/api/projects/scheduled/jobs/on-message/run")

    assert first.status_code == second.status_code == 202
    assert (first_run["status"], first_run["final_state"]) == (
        "succeeded",
        {"syncs": 1},
    )
    assert first_run["origin"] == "run_now"
    assert second_run["final_state"] == {"syncs": 2}
    assert not_cron.status_code == 422
    assert not_cron.json()["code"] == "not_a_cron_job"


def test_the_cli_reruns_reprocesses_and_runs_now(
    platform: LocalStack,
    tmp_path: Path,
    api: httpx.Client,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = deploy(platform, tmp_path, "cli-runs", CLI_PROJECT)
    posted = httpx.post(project["inbox_url"], json={"kind": "visit"}).json()
    receipt = settled_receipt(api, posted["message_id"], runs=2)
    failed = next(r for r in receipt["runs"] if r["status"] == "failed")
    cli = ["--api", platform.api_url, "--token", str(platform.admin_token)]

    refused = openfn(["rerun", failed["id"], *cli])
    refused_err = capsys.readouterr().err
    bulk = openfn(["rerun", "--project", "cli-runs", "--job", "tally", *cli])
    bulk_out = capsys.readouterr().out
    replayed = openfn(
        ["reprocess", "--project", "cli-runs", "--message", posted["message_id"], *cli]
    )
    replayed_out = capsys.readouterr().out
    now = openfn(["run-now", "--project", "cli-runs", "--job", "nightly-sync", *cli])
    now_out = capsys.readouterr().out

    assert refused == 4
    assert "retry after" in refused_err
    assert bulk == 4
    assert "requested 0 re-run(s)" in bulk_out
    assert replayed == 0
    assert f"message {posted['message_id']}" in replayed_out
    assert now == 0
    assert "requested for job nightly-sync" in now_out
    finished_run(api, now_out.split()[1])


def test_the_cli_says_what_it_needs_and_when_the_api_is_unreachable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    neither = openfn(["rerun", "--api", "http://127.0.0.1:9"])
    unreachable = openfn(["rerun", str(uuid4()), "--api", "http://127.0.0.1:9"])

    err = capsys.readouterr().err
    assert (neither, unreachable) == (2, 3)
    assert "give either a RUN_ID or --project" in err
    assert "not reachable" in err
