"""Re-runs, run now and reprocessing build the runs and messages they should."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.api.reprocessing import (
    UnreplayableMessageError,
    raw_body,
    reprocessed_message,
)
from services.api.reruns import (
    RunNotPossibleError,
    history_window,
    is_first_wave,
    rerun_request,
    run_now_request,
    statuses_for,
    whole_seconds,
)
from shared.bodies import BodyKind, body_kind, parse_body
from shared.events import Message
from shared.model import RunOrigin, TriggerKind

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def job_row(**changes: Any) -> dict[str, Any]:
    return {
        "id": uuid4(),
        "project_id": uuid4(),
        "name": "record-payment",
        "version": "v2",
        "adaptor": "http",
        "expression": "get('/pay')",
        "credential": "bank",
        "enabled": True,
        "trigger_id": uuid4(),
        "trigger_name": "payment-received",
        "trigger_kind": "message",
        **changes,
    }


def run_row(job: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "id": uuid4(),
        "project_id": job["project_id"],
        "job_id": job["id"],
        "message_id": uuid4(),
        "origin": "message",
        "chain_depth": 0,
        "input_state": {"data": {"amount": 5}},
        "trigger_id": job["trigger_id"],
        "trigger_name": job["trigger_name"],
        "trigger_kind": job["trigger_kind"],
        **changes,
    }


def test_a_rerun_starts_the_current_job_from_the_same_input_for_the_same_message() -> (
    None
):
    job = job_row()
    run = run_row(job)
    new_id = uuid4()

    request = rerun_request(run, job, new_id, NOW)

    assert request.run_id == new_id != run["id"]
    assert request.input_state == run["input_state"]
    assert request.message_id == run["message_id"]
    assert (request.job.id, request.job.version) == (job["id"], "v2")
    assert request.trigger.name == "payment-received"
    assert (request.origin, request.attempt) == (RunOrigin.RERUN, 1)


def test_a_rerun_of_a_chained_run_keeps_its_depth_in_the_chain() -> None:
    job = job_row(trigger_kind="success")
    request = rerun_request(run_row(job, chain_depth=3), job, uuid4(), NOW)
    assert request.chain_depth == 3


def test_a_rerun_whose_trigger_was_removed_uses_the_jobs_trigger_now() -> None:
    job = job_row()
    run = run_row(job, trigger_id=uuid4(), trigger_name=None)

    request = rerun_request(run, job, uuid4(), NOW)

    assert (request.trigger.id, request.trigger.name) == (
        job["trigger_id"],
        "payment-received",
    )


def test_a_run_without_a_recorded_input_or_without_its_job_cannot_be_rerun() -> None:
    job = job_row()
    with pytest.raises(RunNotPossibleError) as no_input:
        rerun_request(run_row(job, input_state=None), job, uuid4(), NOW)
    with pytest.raises(RunNotPossibleError) as removed:
        rerun_request(run_row(job), None, uuid4(), NOW)
    assert no_input.value.code == "no_input_state"
    assert removed.value.code == "job_removed"


def test_run_now_starts_a_cron_job_from_its_cursor_without_a_message() -> None:
    job = job_row(trigger_name="nightly", trigger_kind="cron")

    request = run_now_request(job, {"cursor": "2026-02-28"}, uuid4(), NOW)

    assert request.input_state == {"cursor": "2026-02-28"}
    assert request.message_id is None
    assert request.origin is RunOrigin.RUN_NOW
    assert request.trigger.kind is TriggerKind.CRON


def test_run_now_refuses_a_job_without_a_cron_trigger() -> None:
    with pytest.raises(RunNotPossibleError, match="only jobs with a cron trigger"):
        run_now_request(job_row(), {}, uuid4(), NOW)


def test_the_failure_filter_selects_every_finished_run_that_did_not_succeed() -> None:
    assert statuses_for("failure") == ["failed", "timed_out", "lost", "aborted"]
    assert statuses_for("failed") == ["failed"]
    assert statuses_for(None) is None


def test_the_history_period_defaults_to_the_last_30_days_and_naive_times_are_utc() -> (
    None
):
    assert history_window(None, None, NOW) == (NOW - timedelta(days=30), NOW)
    since, until = history_window(datetime(2026, 1, 1), None, NOW)
    assert since == datetime(2026, 1, 1, tzinfo=UTC)
    assert until == NOW


def test_runs_only_a_flow_or_catch_trigger_started_are_not_in_the_first_wave() -> None:
    assert not is_first_wave("flow")
    assert not is_first_wave("catch")
    assert all(is_first_wave(o) for o in ("message", "rerun", "reprocess", "cron"))


def test_a_wait_is_announced_in_whole_seconds_rounded_up() -> None:
    assert [whole_seconds(s) for s in (0.0, 0.2, 3.0, 9.01)] == [1, 1, 3, 10]


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json", b'{"form": "referral", "tags": ["a", "b"], "n": 1.5}'),
        ("application/x-www-form-urlencoded", b"form=referral&tag=a&tag=b&empty="),
        ("application/xml", b'<form name="referral"><patient>Amina</patient></form>'),
    ],
)
def test_a_reprocessed_body_parses_to_what_was_stored(
    content_type: str, raw: bytes
) -> None:
    kind = body_kind(content_type)
    stored = parse_body(kind, raw)
    stored_raw = raw.decode() if kind is BodyKind.XML else None

    body, sent_type = raw_body(content_type, stored, stored_raw)

    assert parse_body(body_kind(sent_type), body) == stored


def test_json_is_sent_again_as_utf8_application_json() -> None:
    body, content_type = raw_body(
        "application/json; charset=utf-16", {"name": "Amína"}, None
    )
    assert content_type == "application/json"
    assert body == '{"name":"Amína"}'.encode()


def test_an_xml_message_without_its_raw_text_cannot_be_reprocessed() -> None:
    with pytest.raises(UnreplayableMessageError):
        raw_body("text/xml", {"form": None}, None)


def test_a_reprocessed_message_keeps_its_identity_and_carries_a_reprocess_id() -> None:
    row = {
        "id": uuid4(),
        "project_id": uuid4(),
        "received_at": NOW,
        "content_type": "application/json",
        "headers": {"user-agent": "commcare"},
        "body": {"form": "referral"},
        "raw_body": None,
    }
    reprocess_id = uuid4()

    message = reprocessed_message(row, revision=7, reprocess_id=reprocess_id)
    again = Message.from_kafka(message.to_kafka_headers(), message.body)

    assert (again.id, again.project_id, again.received_at) == (
        row["id"],
        row["project_id"],
        NOW,
    )
    assert again.headers == {"user-agent": "commcare"}
    assert (again.revision, again.reprocess_id) == (7, reprocess_id)
