"""A posted message runs its matching jobs and its job states read back from the API."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Inbox, eventually

pytestmark = pytest.mark.integration

REFERRAL = {"form": "referral", "patient": {"name": "Amina"}, "facility": "Kisumu"}


def job_states_when_settled(
    api: httpx.Client, message_id: str, jobs: int = 1
) -> list[dict[str, Any]]:
    def settled() -> list[dict[str, Any]] | None:
        response = api.get(f"/api/messages/{message_id}")
        if response.status_code != 200:
            return None
        states = response.json()["job_states"]
        finished = [s for s in states if s["state"] != "in progress"]
        return states if len(finished) >= jobs else None

    return eventually(settled)


def test_a_matching_message_runs_its_job_and_reads_success(
    inbox: Inbox, api: httpx.Client
) -> None:
    posted = inbox.post(json=REFERRAL)

    assert posted.status_code == 202
    message_id = posted.json()["message_id"]
    [state] = job_states_when_settled(api, message_id)
    assert (state["job_name"], state["state"]) == ("register-referral", "success")


def test_the_run_has_logs_and_a_final_state(inbox: Inbox, api: httpx.Client) -> None:
    message_id = inbox.post(json=REFERRAL).json()["message_id"]
    [state] = job_states_when_settled(api, message_id)

    run = api.get(f"/api/runs/{state['run_id']}").json()

    assert run["exit_code"] == 0
    assert run["final_state"]["referral"] == {"patient": "Amina", "facility": "Kisumu"}
    assert run["input_state"] == {"data": REFERRAL}
    assert any(
        "referral registered for Amina" in line["message"] for line in run["logs"]
    )


def test_a_message_matching_no_trigger_gets_no_job_state(
    inbox: Inbox, api: httpx.Client
) -> None:
    survey = inbox.post(json={"form": "survey"}).json()["message_id"]
    excluded = inbox.post(json={**REFERRAL, "test": True}).json()["message_id"]
    # Messages go through in order, so once a later one has run, these were matched.
    later = inbox.post(json=REFERRAL).json()["message_id"]
    job_states_when_settled(api, later)

    for message_id in (survey, excluded):
        receipt = eventually(partial(_receipt, api, message_id))
        assert receipt["job_states"] == []
        assert receipt["runs"] == []


def test_a_failing_job_reads_failure_with_its_error(
    inbox: Inbox, api: httpx.Client
) -> None:
    message_id = inbox.post(json={"form": "payment", "payments": "not a list"}).json()[
        "message_id"
    ]
    [state] = job_states_when_settled(api, message_id)

    run = api.get(f"/api/runs/{state['run_id']}").json()

    assert state["state"] == "failure"
    assert run["exit_code"] == 1
    assert "TypeError" in run["error"]


def test_xml_and_form_messages_are_stored_parsed(
    inbox: Inbox, api: httpx.Client
) -> None:
    xml = inbox.post(
        content=b'<visit form="survey"><child age="4">Baraka</child></visit>',
        headers={"content-type": "application/xml"},
    ).json()["message_id"]
    form = inbox.post(data={"form": "survey", "village": "Ahero"}).json()["message_id"]

    xml_receipt = eventually(lambda: _receipt(api, xml))
    form_receipt = eventually(lambda: _receipt(api, form))

    assert xml_receipt["body"] == {
        "visit": {"@form": "survey", "child": {"@age": "4", "#text": "Baraka"}}
    }
    assert xml_receipt["raw_body"].startswith("<visit")
    assert form_receipt["body"] == {"form": "survey", "village": "Ahero"}


def test_the_inbox_lists_messages_newest_first_with_their_job_states(
    inbox: Inbox, api: httpx.Client
) -> None:
    first = inbox.post(json=REFERRAL).json()["message_id"]
    second = inbox.post(json={"form": "payment", "payments": [{"amount": 5}]}).json()[
        "message_id"
    ]
    job_states_when_settled(api, second)
    job_states_when_settled(api, first)

    page = api.get("/api/projects/referrals/messages", params={"limit": 2}).json()

    assert [m["id"] for m in page["messages"]] == [second, first]
    assert page["messages"][0]["job_states"][0]["job_name"] == "record-payment"
    older = api.get(
        "/api/projects/referrals/messages",
        params={"limit": 2, "before": page["next_before"]},
    )
    assert first not in [m["id"] for m in older.json()["messages"]]


def test_the_receipt_and_run_of_an_unknown_id_are_not_found(api: httpx.Client) -> None:
    missing = "00000000-0000-7000-8000-000000000000"
    assert api.get(f"/api/messages/{missing}").json()["code"] == "message_not_found"
    assert api.get(f"/api/runs/{missing}").status_code == 404
    assert api.get("/api/projects/nope").status_code == 404


def test_an_openapi_document_is_served(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert {
        "/api/projects/{name}",
        "/api/messages/{message_id}",
        "/api/runs/{run_id}",
    } <= set(paths)


def _receipt(api: httpx.Client, message_id: str) -> dict[str, Any] | None:
    response = api.get(f"/api/messages/{message_id}")
    return response.json() if response.status_code == 200 else None
