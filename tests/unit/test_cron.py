"""Cron schedules: due ticks, time zones and clock changes, missed ticks, run ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from services.scheduler.cron import (
    InvalidCronError,
    Missed,
    check_cron,
    due_ticks,
    tick_to_fire,
)
from services.scheduler.firing import cron_run_id, cron_run_request
from shared.errors import ConfigurationError
from shared.model import Job, Project, RunOrigin, Trigger, TriggerKind

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def day_of_ticks(cron: str, tz: str, day: datetime) -> list[datetime]:
    """Every tick of one local calendar day."""
    zone = ZoneInfo(tz)
    start = day.replace(tzinfo=zone)
    end = (day + timedelta(days=1)).replace(tzinfo=zone) - timedelta(seconds=1)
    return due_ticks(cron, tz, start - timedelta(seconds=1), end)


def test_due_ticks_are_those_after_the_last_fired_up_to_now_inclusive() -> None:
    ticks = due_ticks("* * * * *", "UTC", T0, T0 + 3 * MINUTE)
    assert ticks == [T0 + MINUTE, T0 + 2 * MINUTE, T0 + 3 * MINUTE]


def test_no_tick_is_due_before_the_next_one_comes() -> None:
    assert due_ticks("* * * * *", "UTC", T0, T0 + timedelta(seconds=59.9)) == []
    assert due_ticks("0 * * * *", "UTC", T0, T0 + 59 * MINUTE) == []


def test_a_tick_is_due_from_its_first_microsecond_on() -> None:
    assert due_ticks("* * * * *", "UTC", T0, T0 + MINUTE) == [T0 + MINUTE]
    late = T0 + MINUTE + timedelta(microseconds=1)
    assert due_ticks("* * * * *", "UTC", T0, late) == [T0 + MINUTE]


def test_a_limit_keeps_the_latest_ticks_without_walking_them_all() -> None:
    year_ago = T0 - timedelta(days=365)
    assert due_ticks("* * * * *", "UTC", year_ago, T0, limit=2) == [T0 - MINUTE, T0]


def test_ticks_are_read_in_the_projects_time_zone() -> None:
    ticks = due_ticks("0 9 * * *", "Africa/Nairobi", T0 - timedelta(days=1), T0)
    assert ticks == [utc(2026, 1, 5, 6, 0)]


def test_a_time_the_clocks_skip_fires_once_just_after_the_gap() -> None:
    # London, 31 March 2024: 01:00 GMT became 02:00 BST.
    day = datetime(2024, 3, 31)
    assert day_of_ticks("30 1 * * *", "Europe/London", day) == [utc(2024, 3, 31, 1)]
    assert len(day_of_ticks("0 * * * *", "Europe/London", day)) == 23


def test_a_time_in_the_hour_that_repeats_fires_on_its_first_pass_only() -> None:
    # London, 27 October 2024: 02:00 BST became 01:00 GMT.
    day = datetime(2024, 10, 27)
    assert day_of_ticks("30 1 * * *", "Europe/London", day) == [
        utc(2024, 10, 27, 0, 30)
    ]
    hourly = day_of_ticks("0 * * * *", "Europe/London", day)
    assert len(hourly) == 24
    assert hourly == sorted(set(hourly))


def test_cairos_clock_changes_neither_lose_nor_double_a_daily_tick() -> None:
    # Cairo, 26 April 2024: midnight became 01:00; 31 October 2024: midnight
    # became 23:00 again.
    spring = day_of_ticks("30 0 * * *", "Africa/Cairo", datetime(2024, 4, 26))
    autumn = day_of_ticks("30 23 * * *", "Africa/Cairo", datetime(2024, 10, 31))
    assert spring == [utc(2024, 4, 25, 22)]
    assert autumn == [utc(2024, 10, 31, 20, 30)]


def test_every_tick_across_a_clock_change_is_counted_once_from_any_start() -> None:
    last = utc(2024, 10, 26, 20)
    now = utc(2024, 10, 27, 6)
    every = due_ticks("*/15 * * * *", "Europe/London", last, now)
    halves = due_ticks("*/15 * * * *", "Europe/London", last, utc(2024, 10, 27, 1))
    rest = due_ticks("*/15 * * * *", "Europe/London", utc(2024, 10, 27, 1), now)
    assert every == halves + rest
    assert len(every) == len(set(every)) == 10 * 4 - 4


@pytest.mark.parametrize(
    ("cron", "tz"),
    [
        ("* * * * * *", "UTC"),
        ("@hourly", "UTC"),
        ("61 * * * *", "UTC"),
        ("0 0 30 2 *", "UTC"),
        ("* * * * *", "Mars/Olympus_Mons"),
    ],
)
def test_an_expression_or_zone_that_cannot_be_scheduled_is_refused(
    cron: str, tz: str
) -> None:
    with pytest.raises(InvalidCronError):
        due_ticks(cron, tz, T0, T0 + MINUTE)


def test_only_five_field_expressions_pass_the_check() -> None:
    assert check_cron("0 23 * * 5") is None
    assert check_cron("*/5 * * * 1-5") is None
    assert "five fields" in (check_cron("0 0 23 * * 5") or "")
    assert "not a valid" in (check_cron("0 25 * * *") or "")


def test_a_tick_on_time_fires() -> None:
    due = [T0]
    assert tick_to_fire(due, Missed.SKIP, T0 + timedelta(seconds=5), 120) == T0
    assert tick_to_fire(due, Missed.RUN_ONCE, T0 + timedelta(seconds=5), 120) == T0


def test_under_skip_only_the_latest_tick_fires_and_only_if_on_time() -> None:
    missed = [T0 - 2 * MINUTE, T0 - MINUTE, T0]
    assert tick_to_fire(missed, Missed.SKIP, T0 + timedelta(seconds=30), 120) == T0
    nightly = [T0 - timedelta(hours=10)]
    assert tick_to_fire(nightly, Missed.SKIP, T0, 120) is None


def test_under_run_once_all_missed_ticks_make_one_run() -> None:
    nightly = [T0 - timedelta(days=2), T0 - timedelta(days=1)]
    assert tick_to_fire(nightly, Missed.RUN_ONCE, T0, 120) == nightly[-1]


def test_nothing_fires_when_nothing_is_due() -> None:
    assert tick_to_fire([], Missed.RUN_ONCE, T0, 120) is None


def test_a_ticks_run_id_is_the_same_whoever_fires_it_and_in_any_zone() -> None:
    trigger, job = uuid4(), uuid4()
    in_cairo = T0.astimezone(ZoneInfo("Africa/Cairo"))
    assert cron_run_id(trigger, job, T0) == cron_run_id(trigger, job, in_cairo)
    assert cron_run_id(trigger, job, T0) != cron_run_id(trigger, job, T0 + MINUTE)
    assert cron_run_id(trigger, job, T0) != cron_run_id(trigger, uuid4(), T0)


def project_with(trigger: Trigger) -> tuple[Project, Job]:
    job = Job(
        id=uuid4(),
        name="sync",
        trigger=trigger.name,
        adaptor="common",
        expression="fn(lambda state: state)",
        version="1",
    )
    project = Project(
        id=uuid4(),
        name="p",
        inbox_id=uuid4(),
        revision=1,
        jobs=(job,),
        triggers=(trigger,),
    )
    return project, job


def test_a_cron_run_starts_from_the_cursor_without_a_message() -> None:
    trigger = Trigger(
        id=uuid4(), name="nightly", kind=TriggerKind.CRON, cron="0 1 * * *"
    )
    project, job = project_with(trigger)
    run_id = uuid4()
    request = cron_run_request(project, job, {"n": 1}, run_id, RunOrigin.CRON, T0)
    assert (request.run_id, request.job.id, request.input_state) == (
        run_id,
        job.id,
        {"n": 1},
    )
    assert request.message_id is None
    assert request.origin is RunOrigin.CRON
    assert (request.trigger.id, request.trigger.kind) == (trigger.id, TriggerKind.CRON)


def test_only_a_job_with_a_cron_trigger_makes_a_cron_run() -> None:
    trigger = Trigger(id=uuid4(), name="forms", kind=TriggerKind.MESSAGE, criteria={})
    project, job = project_with(trigger)
    with pytest.raises(ConfigurationError, match="no cron trigger"):
        cron_run_request(project, job, {}, uuid4(), RunOrigin.RUN_NOW, T0)
