"""The activity history and the searchable inbox, through the API, on the platform.

A project is deployed through the API and its history written straight into
PostgreSQL, as the recorder would write it, so that times, statuses and logs
are exactly what each test expects.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from devstack.stack import LocalStack
from services.api import history_queries
from services.api.access import current_user
from services.api.history_queries import RunFilter
from services.api.history_routes import CSV_COLUMNS, history_routes
from services.api.settings import ApiSettings
from shared.auth import User
from shared.db import connect, open_pool

pytestmark = pytest.mark.integration

PROJECT = """\
jobs:
  register:
    trigger: referral
    adaptor: common
    expression: |
      fn(lambda state: state)
  pay:
    trigger: referral
    adaptor: common
    expression: |
      fn(lambda state: state)
  nightly:
    trigger: night
    adaptor: common
    expression: |
      fn(lambda state: state)
triggers:
  referral:
    criteria: '{"form": "referral"}'
  night:
    cron: "0 0 1 1 *"
"""
TIED_RUNS = 7
"""Runs created at the very same time, which only their ids put in order."""


@dataclass
class History:
    """The seeded project: its name, and its runs and messages by what they are."""

    name: str
    project_id: UUID
    runs: dict[str, UUID]
    messages: dict[str, UUID]

    def run_names(self, ids: list[str]) -> list[str]:
        by_id = {str(run_id): name for name, run_id in self.runs.items()}
        return [by_id[run_id] for run_id in ids]


@pytest.fixture(scope="module")
def history(platform: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> History:
    path = tmp_path_factory.mktemp("history") / "project.yaml"
    path.write_text(PROJECT)
    project = platform.deploy(path, "history")
    seeded = History("history", UUID(project["id"]), {}, {})
    assert platform.servers is not None
    with connect(platform.servers.database_url, autocommit=True) as conn:
        seed(conn, seeded, datetime.now(UTC))
    return seeded


def seed(conn: Any, history: History, now: datetime) -> None:
    """Three messages (one 40 days old) and runs of every kind."""
    messages = {
        "kerubo": (now - timedelta(hours=5), {"form": "referral", "name": "Kerubo"}),
        "nakuru": (now - timedelta(hours=4), {"form": "referral", "town": "Nakuru"}),
        "old": (now - timedelta(days=40), {"form": "referral", "name": "Wekesa"}),
    }
    for name, (received_at, body) in messages.items():
        history.messages[name] = uuid4()
        conn.execute(
            "INSERT INTO messages (id, project_id, received_at, content_type,"
            " headers, body) VALUES (%s, %s, %s, 'application/json', '{}', %s)",
            (history.messages[name], history.project_id, received_at, Jsonb(body)),
        )
    hour = timedelta(hours=1)
    tied_at = now - 3 * hour
    runs: list[tuple[str, str, str, str, str, str | None, datetime, list[str], str]] = [
        # name, job, trigger, origin, status, message, created, logs, error
        ("registered", "register", "message", "message", "succeeded", "kerubo",
         now - 5 * hour, ["patient registered"], ""),
        ("refused", "pay", "message", "message", "failed", "kerubo",
         now - 5 * hour + timedelta(seconds=1), ["the bank refused it"], "HTTP 402"),
        ("slow", "register", "message", "message", "timed_out", "nakuru",
         now - 4 * hour, ["waiting for openmrs"], ""),
        ("rerun", "register", "message", "rerun", "succeeded", "nakuru",
         now - 2 * hour, ["patient registered again"], ""),
        ("synced", "nightly", "cron", "cron", "succeeded", None,
         now - 1 * hour, ["synced 12 facilities"], ""),
        ("running", "nightly", "cron", "run_now", "started", None,
         now - timedelta(minutes=5), [], ""),
        ("ancient", "register", "message", "message", "succeeded", "old",
         now - timedelta(days=40), ["patient registered long ago"], ""),
    ]  # fmt: skip
    runs += [
        (f"tied-{i}", "pay", "message", "message", "lost", None, tied_at, [], "")
        for i in range(TIED_RUNS)
    ]
    for name, job, trigger, origin, status, message, created, logs, error in runs:
        history.runs[name] = uuid4()
        finished = created + timedelta(seconds=2) if status != "started" else None
        conn.execute(
            "INSERT INTO runs (id, project_id, job_id, job_name, trigger_kind,"
            " origin, message_id, status, exit_code, started_at, finished_at,"
            " logs, error, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                history.runs[name],
                history.project_id,
                uuid4(),
                job,
                trigger,
                origin,
                history.messages.get(message or ""),
                status,
                {"succeeded": 0, "failed": 1, "timed_out": 2}.get(status),
                created,
                finished,
                Jsonb([{"at": created.isoformat(), "message": line} for line in logs]),
                error or None,
                created,
            ),
        )
    for message, job, run, state in [
        ("kerubo", "register", "registered", "success"),
        ("kerubo", "pay", "refused", "failure"),
        ("nakuru", "register", "rerun", "success"),
    ]:
        conn.execute(
            "INSERT INTO job_states (message_id, job_id, project_id, job_name,"
            " run_id, status) VALUES (%s, %s, %s, %s, %s, %s)",
            (
                history.messages[message],
                uuid4(),
                history.project_id,
                job,
                history.runs[run],
                state,
            ),
        )


def listed(api: httpx.Client, history: History, **params: Any) -> list[str]:
    """The names of the runs the history lists with these filters, in order."""
    response = api.get(f"/api/projects/{history.name}/runs", params=params)
    assert response.status_code == 200, response.text
    return history.run_names([run["id"] for run in response.json()["runs"]])


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def test_the_history_lists_the_last_30_days_newest_first(
    api: httpx.Client, history: History
) -> None:
    tied = {f"tied-{i}" for i in range(TIED_RUNS)}

    names = listed(api, history)

    assert names[:3] == ["running", "synced", "rerun"]
    assert set(names[3 : 3 + TIED_RUNS]) == tied
    assert names[3 + TIED_RUNS :] == ["slow", "refused", "registered"]
    assert "ancient" in listed(api, history, since=ago(days=60))
    assert listed(api, history, since=ago(days=60), until=ago(days=30)) == ["ancient"]


def test_the_history_filters_by_job_status_trigger_and_origin(
    api: httpx.Client, history: History
) -> None:
    assert listed(api, history, job="register") == ["rerun", "slow", "registered"]
    assert listed(api, history, status="timed_out") == ["slow"]
    failures = listed(api, history, status="failure")
    assert set(failures) == {"slow", "refused"} | {
        f"tied-{i}" for i in range(TIED_RUNS)
    }
    assert listed(api, history, trigger="cron") == ["running", "synced"]
    assert listed(api, history, origin="rerun") == ["rerun"]
    assert listed(api, history, job="nightly", status="started") == ["running"]


def test_an_unknown_status_or_trigger_is_refused(
    api: httpx.Client, history: History
) -> None:
    for params in ({"status": "exploded"}, {"trigger": "webhook"}):
        response = api.get(f"/api/projects/{history.name}/runs", params=params)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_request"


def test_keyset_pages_return_every_run_once_in_order(
    api: httpx.Client, history: History
) -> None:
    everything = listed(api, history)
    pages: list[str] = []
    params: dict[str, Any] = {"limit": 2}

    while True:
        page = api.get(f"/api/projects/{history.name}/runs", params=params).json()
        pages += history.run_names([run["id"] for run in page["runs"]])
        if page["next_before"] is None:
            break
        params["before"] = page["next_before"]

    assert pages == everything


def test_search_finds_runs_by_their_logs_and_their_error(
    api: httpx.Client, history: History
) -> None:
    assert listed(api, history, q="refused") == ["refused"]
    assert listed(api, history, q="402") == ["refused"]
    assert listed(api, history, q="12 facilities") == ["synced"]
    assert listed(api, history, q='"patient registered" -again') == ["registered"]
    assert listed(api, history, q="nothing-like-this") == []


def test_search_finds_runs_by_their_message_body(
    api: httpx.Client, history: History
) -> None:
    assert listed(api, history, q="KERUBO") == ["refused", "registered"]
    assert listed(api, history, q="nakuru") == ["rerun", "slow"]
    assert listed(api, history, q="wekesa", since=ago(days=60)) == ["ancient"]
    assert listed(api, history, q="kerubo", job="pay") == ["refused"]


def test_body_search_finds_the_same_runs_whether_few_or_many_messages_match(
    platform: LocalStack, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert platform.servers is not None
    filters = RunFilter(
        datetime.now(UTC) - timedelta(days=60), datetime.now(UTC), search="referral"
    )

    with connect(platform.servers.database_url, autocommit=True) as conn:
        few = history_queries.run_page(conn, history.project_id, filters, 50)
        monkeypatch.setattr(history_queries, "FEW_MESSAGES", 1)
        many = history_queries.run_page(conn, history.project_id, filters, 50)

    assert history.run_names([str(run["id"]) for run in few]) == [
        "rerun",
        "slow",
        "refused",
        "registered",
        "ancient",
    ]
    assert many == few


def test_the_csv_export_lists_the_filtered_runs(
    api: httpx.Client, history: History
) -> None:
    response = api.get(
        f"/api/projects/{history.name}/runs.csv", params={"job": "register"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "history-runs.csv" in response.headers["content-disposition"]
    header, *lines = list(csv.reader(io.StringIO(response.text)))
    assert header == list(CSV_COLUMNS)
    assert history.run_names([line[0] for line in lines]) == [
        "rerun",
        "slow",
        "registered",
    ]
    slow = dict(zip(header, lines[1], strict=True))
    assert slow["job"] == "register"
    assert (slow["trigger"], slow["origin"]) == ("message", "message")
    assert (slow["status"], slow["exit_code"]) == ("timed_out", "2")
    assert slow["message_id"] == str(history.messages["nakuru"])
    assert datetime.fromisoformat(slow["finished_at"]) > datetime.fromisoformat(
        slow["started_at"]
    )


def test_the_csv_export_stops_at_its_row_limit_and_continues_from_before(
    platform: LocalStack, history: History
) -> None:
    assert platform.servers is not None
    app = FastAPI()
    pool = open_pool(platform.servers.database_url, 2, "history-test")
    app.include_router(history_routes(ApiSettings(history_csv_max_rows=3), pool))
    app.dependency_overrides[current_user] = lambda: User(uuid4(), "root", True)
    url = f"/api/projects/{history.name}/runs.csv"

    async def export(**params: str) -> list[list[str]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            response = await c.get(url, params=params)
        return list(csv.reader(io.StringIO(response.text)))[1:]

    with pool:
        first = asyncio.run(export())
        rest = asyncio.run(export(before=first[-1][0]))

    assert history.run_names([line[0] for line in first]) == [
        "running",
        "synced",
        "rerun",
    ]
    assert len(rest) == 3
    assert not {line[0] for line in rest} & {line[0] for line in first}


def test_the_inbox_filters_by_date_and_search_with_job_states(
    api: httpx.Client, history: History
) -> None:
    def inbox(**params: Any) -> list[dict[str, Any]]:
        response = api.get(f"/api/projects/{history.name}/inbox", params=params)
        assert response.status_code == 200, response.text
        return list(response.json()["messages"])

    ids = {str(message_id): name for name, message_id in history.messages.items()}

    assert [ids[m["id"]] for m in inbox()] == ["nakuru", "kerubo"]
    assert [ids[m["id"]] for m in inbox(since=ago(days=60))] == [
        "nakuru",
        "kerubo",
        "old",
    ]
    (kerubo,) = inbox(q="kerubo")
    assert ids[kerubo["id"]] == "kerubo"
    assert {(s["job_name"], s["state"]) for s in kerubo["job_states"]} == {
        ("register", "success"),
        ("pay", "failure"),
    }
    assert inbox(q="wekesa") == []
    assert [ids[m["id"]] for m in inbox(q="wekesa", since=ago(days=60))] == ["old"]
    first = api.get(f"/api/projects/{history.name}/inbox", params={"limit": 1}).json()
    after = inbox(limit=1, before=first["next_before"])
    assert [ids[m["id"]] for m in after] == ["kerubo"]


def test_an_unknown_project_or_cursor_is_not_found(
    api: httpx.Client, history: History
) -> None:
    for path in ("runs", "runs.csv", "inbox"):
        response = api.get(f"/api/projects/no-such-project/{path}")
        assert response.status_code == 404
        assert response.json()["code"] == "project_not_found"
    stranger = str(uuid4())
    runs = api.get(f"/api/projects/{history.name}/runs", params={"before": stranger})
    inbox = api.get(f"/api/projects/{history.name}/inbox", params={"before": stranger})
    assert (runs.status_code, runs.json()["code"]) == (404, "run_not_found")
    assert (inbox.status_code, inbox.json()["code"]) == (404, "message_not_found")


def test_the_history_needs_a_token_and_hides_the_project_from_outsiders(
    platform: LocalStack, api: httpx.Client, history: History
) -> None:
    assert api.post("/api/users", json={"username": "history-outsider"}).is_success
    issued = api.post(
        "/api/tokens", json={"name": "tests", "username": "history-outsider"}
    )
    outsider = platform.auth_headers(issued.json()["token"])

    for path in ("runs", "runs.csv", "inbox"):
        url = f"{platform.api_url}/api/projects/{history.name}/{path}"
        assert httpx.get(url).status_code == 401
        hidden = httpx.get(url, headers=outsider)
        assert (hidden.status_code, hidden.json()["code"]) == (404, "project_not_found")
