"""Cron schedules: which ticks of a trigger are due, and which of them fire.

Pure functions of the expression, the project's time zone and the time. An
expression names local wall-clock times, and each of them fires once: a time
that falls in the hour the clocks skip fires at the first moment after the
gap, and a time in the hour that repeats fires on its first pass only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from shared.errors import ConfigurationError

_FIELDS = 5


class Missed(StrEnum):
    """What a trigger does with ticks that passed while no scheduler fired them."""

    SKIP = "skip"
    """Only a tick that is on time fires; late ones are dropped."""
    RUN_ONCE = "run_once"
    """One run stands for every tick missed, however late."""


class InvalidCronError(ConfigurationError):
    """A cron expression or time zone the scheduler cannot read."""


def check_cron(expression: str) -> str | None:
    """What is wrong with a cron expression, or None if it can be scheduled."""
    if len(expression.split()) != _FIELDS:
        return "cron needs five fields: minute hour day-of-month month day-of-week"
    if not croniter.is_valid(expression):
        return f"{expression!r} is not a valid cron expression"
    return None


def due_ticks(
    cron: str,
    tz: str,
    last_tick: datetime,
    now: datetime,
    limit: int | None = None,
) -> list[datetime]:
    """The ticks in ``(last_tick, now]``, oldest first, in UTC.

    With ``limit``, only the latest ``limit`` of them: a trigger that was not
    fired for a year does not make the scheduler walk every minute of it.

    Raises:
        InvalidCronError: The expression or the time zone cannot be read.
    """
    latest_first: list[datetime] = []
    for tick in _ticks_before(cron, _zone(tz), now):
        if tick <= last_tick or (limit is not None and len(latest_first) >= limit):
            break
        latest_first.append(tick)
    return latest_first[::-1]


def tick_to_fire(
    due: list[datetime], missed: Missed, now: datetime, on_time_s: float
) -> datetime | None:
    """Which of the due ticks (oldest first) fires: the latest or none.

    Every due tick is accounted for by one run at most, because a run starts
    from the job's last final state and so covers whatever the others would
    have. The latest tick fires if it is at most ``on_time_s`` late, or
    whatever its lateness under ``run_once``; otherwise it is skipped too.
    """
    if not due:
        return None
    latest = due[-1]
    if missed is Missed.RUN_ONCE or now - latest <= timedelta(seconds=on_time_s):
        return latest
    return None


def _ticks_before(cron: str, zone: ZoneInfo, now: datetime) -> Iterator[datetime]:
    """Ticks at or before ``now``, latest first, skipping repeated wall times."""
    # Ticks fall on whole minutes, and croniter leaves out a start time that
    # is itself a tick: starting one second past ``now`` keeps a tick at ``now``.
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    problem = check_cron(cron)
    if problem is not None:
        raise InvalidCronError(problem)
    ticks = croniter(cron, start.astimezone(zone))
    while True:
        try:
            tick = ticks.get_prev(datetime).astimezone(UTC)
        except CroniterError as exc:
            raise InvalidCronError(f"{cron!r} names no date that exists") from exc
        if not _is_repeat(tick, zone):
            yield tick


def _is_repeat(tick: datetime, zone: ZoneInfo) -> bool:
    """True for the second pass of a wall time in the hour the clocks turn back."""
    local = tick.astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidCronError(f"time zone {tz!r} is not known") from exc
