"""The job state of a message/job pair comes from its last run."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from uuid import UUID

from shared.job_state import RunTimes, job_state, last_run
from shared.model import JobState, RunStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(
    n: int, status: RunStatus, started: int | None, finished: int | None
) -> RunTimes:
    return RunTimes(
        id=UUID(int=n),
        status=status,
        started_at=T0 + timedelta(seconds=started) if started is not None else None,
        finished_at=T0 + timedelta(seconds=finished) if finished is not None else None,
    )


def test_a_pair_without_runs_has_no_job_state() -> None:
    assert job_state([]) is None


def test_the_run_that_finished_last_decides_even_if_it_started_first() -> None:
    long_run = run(1, RunStatus.SUCCEEDED, started=0, finished=30)
    short_run = run(2, RunStatus.FAILED, started=5, finished=10)
    assert last_run([long_run, short_run]) == long_run
    assert job_state([short_run, long_run]) is JobState.SUCCESS


def test_runs_finishing_together_are_ordered_by_start_time() -> None:
    early = run(9, RunStatus.FAILED, started=0, finished=10)
    late = run(1, RunStatus.SUCCEEDED, started=5, finished=10)
    assert last_run([early, late]) == late


def test_runs_with_the_same_times_are_ordered_by_id() -> None:
    a = run(1, RunStatus.FAILED, started=0, finished=10)
    b = run(2, RunStatus.SUCCEEDED, started=0, finished=10)
    assert last_run([b, a]) == b


def test_a_run_still_in_progress_is_the_last_run() -> None:
    finished = run(1, RunStatus.FAILED, started=0, finished=10)
    rerun = run(2, RunStatus.STARTED, started=20, finished=None)
    assert job_state([finished, rerun]) is JobState.IN_PROGRESS


def test_the_seed_example_reads_success_after_the_failed_payment_is_rerun() -> None:
    payment = run(2, RunStatus.FAILED, started=0, finished=2)
    rerun = run(3, RunStatus.SUCCEEDED, started=30, finished=31)
    assert job_state([payment]) is JobState.FAILURE
    assert job_state([payment, rerun]) is JobState.SUCCESS


def test_the_order_runs_are_seen_in_does_not_matter() -> None:
    runs = [
        run(1, RunStatus.SUCCEEDED, 0, 5),
        run(2, RunStatus.FAILED, 1, 5),
        run(3, RunStatus.TIMED_OUT, 1, 5),
        run(4, RunStatus.STARTED, 2, None),
    ]
    winners = {last_run(order) for order in itertools.permutations(runs)}
    assert winners == {runs[3]}
