"""The console's filters, where sign-in may send a browser, and its date filters."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.api.console.pages import day_window
from services.api.console.render import SECURITY_HEADERS, moment, status_badge
from services.api.console.signin import HOME_PATH, safe_next
from shared.model import JobState, RunStatus

NAIROBI = ZoneInfo("Africa/Nairobi")
NOW = datetime(2025, 3, 10, 8, 30, tzinfo=UTC)
BADGE = re.compile(
    r'^<span class="status status-(?P<kind>[a-z]+)" data-status="(?P<value>[^"]*)">'
    r'<span aria-hidden="true">(?P<sign>[^<]+)</span> (?P<words>[^<]+)</span>$'
)


def badge(value: str | None) -> dict[str, str]:
    match = BADGE.match(str(status_badge(value)))
    assert match is not None, str(status_badge(value))
    return match.groupdict()


def test_a_moment_is_written_in_utc_with_a_machine_readable_datetime() -> None:
    at = datetime(2025, 3, 1, 12, 30, 5, 987654, tzinfo=NAIROBI)

    assert str(moment(at)) == (
        '<time datetime="2025-03-01T09:30:05.987654+00:00"'
        ' title="2025-03-01 09:30:05 UTC">2025-03-01 09:30:05 UTC</time>'
    )


def test_a_precise_moment_keeps_milliseconds_and_says_so() -> None:
    at = datetime(2025, 3, 1, 9, 30, 5, 7000, tzinfo=UTC)

    shown = str(moment(at, precise=True))

    assert ">2025-03-01 09:30:05.007 UTC</time>" in shown
    assert 'title="2025-03-01 09:30:05.007 UTC"' in shown
    assert " data-precise>" in shown
    assert "data-precise" not in str(moment(at))


def test_milliseconds_are_cut_not_rounded_up_into_the_next_second() -> None:
    at = datetime(2025, 3, 1, 9, 30, 5, 999999, tzinfo=UTC)

    assert ">2025-03-01 09:30:05.999 UTC<" in str(moment(at, precise=True))


def test_a_moment_without_a_zone_is_taken_as_utc() -> None:
    aware = datetime(2025, 3, 1, 9, 30, 5, tzinfo=UTC)

    assert moment(aware.replace(tzinfo=None)) == moment(aware)
    assert moment("2025-03-01T09:30:05") == moment(aware)


def test_a_moment_given_as_iso_text_reads_the_same_as_the_datetime() -> None:
    at = datetime(2025, 3, 1, 9, 30, 5, 123000, tzinfo=UTC)

    assert moment("2025-03-01T12:30:05.123+03:00") == moment(at)
    assert moment("2025-03-01T09:30:05.123Z", precise=True) == moment(at, precise=True)


def test_a_missing_moment_is_a_dash_not_a_time() -> None:
    shown = str(moment(None))

    assert "<time" not in shown
    assert "—" in shown


@pytest.mark.parametrize(
    "values",
    [[status.value for status in RunStatus], [state.value for state in JobState]],
    ids=["run statuses", "job states"],
)
def test_each_status_has_its_own_sign_and_words_not_only_a_colour(
    values: list[str],
) -> None:
    badges = [badge(value) for value in values]

    assert [b["value"] for b in badges] == values
    assert len({b["sign"] for b in badges}) == len(values)
    assert len({b["words"] for b in badges}) == len(values)
    assert all(b["words"].strip() and b["sign"].strip() for b in badges)
    assert all(b["kind"] in ("ok", "bad", "busy") for b in badges)


def test_badges_say_in_words_what_the_colour_means() -> None:
    assert (badge("succeeded")["kind"], badge("succeeded")["words"]) == (
        "ok",
        "succeeded",
    )
    assert (badge("timed_out")["kind"], badge("timed_out")["words"]) == (
        "bad",
        "timed out",
    )
    assert (badge("started")["kind"], badge("started")["words"]) == ("busy", "running")
    assert (badge("in progress")["kind"], badge("in progress")["words"]) == (
        "busy",
        "in progress",
    )


def test_a_status_the_console_does_not_know_is_shown_escaped_as_it_is() -> None:
    shown = badge('<img src=x onerror="alert(1)">')

    assert shown["kind"] == "none"
    assert shown["words"] == "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"


def test_no_status_is_a_hollow_sign_with_the_word_none() -> None:
    assert badge(None) == {
        "kind": "none",
        "value": "none",
        "sign": "○",
        "words": "none",
    }


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/console/projects",
        "http://evil.example/",
        "//evil.example/console/x",
        "///evil.example/console/x",
        "/\\evil.example/console/x",
        "\\\\evil.example\\console",
        "/console/\\\\evil.example",
        "/\t/evil.example/console/x",
        "javascript:alert(1)",
        "mailto:someone@example.org",
        "/api/me",
        "/consolex/projects",
        "/console",
        "console/projects",
        "",
        None,
    ],
)
def test_sign_in_never_sends_a_browser_off_the_console(target: str | None) -> None:
    assert safe_next(target) == HOME_PATH == "/console/projects"


@pytest.mark.parametrize(
    "target",
    [
        "/console/runs/x?y=1",
        "/console/projects/clinic/history?status=failed&q=a+b#top",
        "/console/account",
    ],
)
def test_sign_in_keeps_a_console_page_of_this_site(target: str) -> None:
    assert safe_next(target) == target


def test_two_days_cover_both_whole_days_in_the_viewers_zone() -> None:
    start, end = day_window(date(2025, 3, 1), date(2025, 3, 2), NAIROBI, NOW)

    assert start == datetime(2025, 2, 28, 21, 0, tzinfo=UTC)
    assert end == datetime(2025, 3, 2, 21, 0, tzinfo=UTC)
    assert end - start == timedelta(days=2)


def test_one_day_is_that_day_from_midnight_to_midnight_in_the_zone() -> None:
    start, end = day_window(date(2025, 3, 1), date(2025, 3, 1), NAIROBI, NOW)

    assert start.astimezone(NAIROBI) == datetime(2025, 3, 1, tzinfo=NAIROBI)
    assert end.astimezone(NAIROBI) == datetime(2025, 3, 2, tzinfo=NAIROBI)


def test_a_day_that_skips_an_hour_is_still_covered_from_start_to_end() -> None:
    new_york = ZoneInfo("America/New_York")

    start, end = day_window(date(2025, 3, 9), date(2025, 3, 9), new_york, NOW)

    assert start == datetime(2025, 3, 9, 5, 0, tzinfo=UTC)
    assert end == datetime(2025, 3, 10, 4, 0, tzinfo=UTC)


def test_without_days_the_window_is_the_last_30_days() -> None:
    assert day_window(None, None, NAIROBI, NOW) == (NOW - timedelta(days=30), NOW)


def test_a_start_day_alone_runs_until_now_and_an_end_day_alone_30_days_back() -> None:
    since_only = day_window(date(2025, 3, 1), None, NAIROBI, NOW)
    until_only = day_window(None, date(2025, 3, 1), NAIROBI, NOW)

    assert since_only == (datetime(2025, 2, 28, 21, 0, tzinfo=UTC), NOW)
    assert until_only[1] == datetime(2025, 3, 1, 21, 0, tzinfo=UTC)
    assert until_only[0] == until_only[1] - timedelta(days=30)


def test_pages_forbid_inline_scripts_and_framing() -> None:
    policy = SECURITY_HEADERS["content-security-policy"]

    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
    assert SECURITY_HEADERS["x-content-type-options"] == "nosniff"
