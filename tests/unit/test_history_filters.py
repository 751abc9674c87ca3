"""The activity history's filters, search terms, statements and CSV lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from services.api.history_queries import RunFilter, run_page_query, search_terms
from services.api.history_routes import CSV_COLUMNS, csv_row, run_filter
from shared.model import RunOrigin, TriggerKind

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PROJECT = UUID("00000000-0000-4000-8000-000000000001")


def statement(filters: RunFilter, after: tuple[datetime, UUID] | None = None) -> str:
    query, _params = run_page_query(PROJECT, filters, 51, after)
    return query.as_string(None)


def test_the_history_covers_the_last_30_days_unless_told_otherwise() -> None:
    filters = run_filter(None, None, None, None, None, None, None, NOW)

    assert (filters.since, filters.until) == (NOW - timedelta(days=30), NOW)


def test_a_period_given_without_a_time_zone_is_taken_as_utc() -> None:
    filters = run_filter(
        datetime(2025, 1, 1), datetime(2025, 2, 1), None, None, None, None, None, NOW
    )

    assert filters.since == datetime(2025, 1, 1, tzinfo=UTC)
    assert filters.until == datetime(2025, 2, 1, tzinfo=UTC)


def test_the_failure_status_selects_every_run_that_did_not_succeed() -> None:
    filters = run_filter(None, None, None, "failure", None, None, None, NOW)

    assert filters.statuses == ["failed", "timed_out", "lost", "aborted"]


def test_trigger_and_origin_filters_keep_their_values() -> None:
    filters = run_filter(
        None, None, "pay", "lost", TriggerKind.CRON, RunOrigin.RERUN, None, NOW
    )

    assert (filters.job, filters.statuses) == ("pay", ["lost"])
    assert (filters.trigger, filters.origin) == ("cron", "rerun")


def test_a_blank_search_is_no_search() -> None:
    assert search_terms(None) is None
    assert search_terms("   ") is None
    assert search_terms("  amina  kisumu ") == "amina  kisumu"


def test_a_word_repeated_in_a_plain_search_is_searched_once() -> None:
    assert search_terms("amina Kisumu amina") == "amina Kisumu"
    assert search_terms("Amina amina") == "Amina"
    assert search_terms('"amina amina" amina') == '"amina amina" amina'
    assert search_terms("amina or amina") == "amina or amina"
    assert search_terms("amina -kisumu amina") == "amina -kisumu amina"


def test_only_the_filters_given_become_conditions() -> None:
    text = statement(RunFilter(NOW - timedelta(days=30), NOW))

    assert "job_name =" not in text
    assert "status" not in text.split("WHERE", 1)[1]
    assert "search_document" not in text
    assert "UNION" not in text


def test_one_status_is_compared_for_equality_and_several_with_any() -> None:
    one = statement(RunFilter(NOW, NOW, statuses=["lost"]))
    several = statement(RunFilter(NOW, NOW, statuses=["failed", "lost"]))

    assert "r.status = %(status)s" in one
    assert "r.status = ANY(%(statuses)s)" in several


def test_a_search_reads_runs_by_their_logs_and_by_their_message_body() -> None:
    text = statement(RunFilter(NOW, NOW, search="amina"))

    assert "UNION" in text
    assert "r.search_document @@" in text
    assert "JOIN messages m ON m.id = r.message_id" in text
    assert "m.search_document @@" in text


def test_a_later_page_starts_strictly_after_the_last_sort_key() -> None:
    text = statement(RunFilter(NOW, NOW), after=(NOW, uuid4()))

    assert "(r.created_at, r.id) < (%(after_at)s, %(after_id)s)" in text


def test_a_csv_line_leaves_what_is_missing_empty() -> None:
    run_id = uuid4()
    line = csv_row(
        {
            "id": run_id,
            "job_name": "nightly-sync",
            "trigger_kind": "cron",
            "origin": "cron",
            "status": "started",
            "exit_code": None,
            "started_at": NOW,
            "finished_at": None,
            "message_id": None,
        }
    )

    assert len(line) == len(CSV_COLUMNS)
    assert line == [
        str(run_id),
        "nightly-sync",
        "cron",
        "cron",
        "started",
        "",
        "2025-03-01T12:00:00+00:00",
        "",
        "",
    ]


def test_a_search_matching_few_messages_reads_their_runs_by_message_id() -> None:
    query, params = run_page_query(
        PROJECT, RunFilter(NOW, NOW, search="amina"), 51, None, [uuid4()]
    )
    text = query.as_string(None)

    assert "r.message_id = ANY(%(matching)s)" in text
    assert "JOIN messages" not in text
    assert len(params["matching"]) == 1
