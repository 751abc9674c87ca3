"""How long a username waits after wrong passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.api.console.signin import (
    FIRST_LOCK,
    FREE_FAILURES,
    LONGEST_LOCK,
    lock_remaining,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_the_first_failures_cost_no_wait() -> None:
    for failures in range(FREE_FAILURES):
        assert lock_remaining(failures, NOW, NOW) == timedelta(0)


def test_the_wait_doubles_with_each_further_failure_up_to_the_cap() -> None:
    waits = [lock_remaining(FREE_FAILURES + n, NOW, NOW) for n in range(10)]

    assert waits[:3] == [FIRST_LOCK, 2 * FIRST_LOCK, 4 * FIRST_LOCK]
    assert max(waits) == LONGEST_LOCK
    assert waits == sorted(waits)


def test_the_wait_counts_from_the_last_failure() -> None:
    last = NOW - FIRST_LOCK / 3

    assert lock_remaining(FREE_FAILURES, last, NOW) == FIRST_LOCK * 2 / 3
    assert lock_remaining(FREE_FAILURES, NOW - FIRST_LOCK, NOW) == timedelta(0)


def test_a_huge_count_does_not_overflow() -> None:
    assert lock_remaining(10**9, NOW, NOW) == LONGEST_LOCK


def test_a_larger_allowance_delays_the_first_wait() -> None:
    assert lock_remaining(FREE_FAILURES, NOW, NOW, free=50) == timedelta(0)
    assert lock_remaining(50, NOW, NOW, free=50) == FIRST_LOCK
