"""Retries follow the policy, and the 10-second rule judges by the pair's last run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from shared.model import ExitCode
from shared.retries import RetryPolicy, backoff_s, decide_retry, retry_run_id
from shared.run_gate import judge

POLICY = RetryPolicy(platform_attempts=3, base_delay_s=10, max_delay_s=60)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_run_that_could_not_start_is_retried_with_growing_waits() -> None:
    first = decide_retry(
        ExitCode.FAILED_TO_START, attempt=1, job_retries=0, policy=POLICY
    )
    second = decide_retry(
        ExitCode.FAILED_TO_START, attempt=2, job_retries=0, policy=POLICY
    )
    assert (first.retry, first.delay_s) == (True, 10)
    assert (second.retry, second.delay_s) == (True, 20)


def test_a_lost_run_that_used_its_attempts_goes_to_the_dead_letters() -> None:
    decision = decide_retry(
        ExitCode.UNRESPONSIVE, attempt=3, job_retries=0, policy=POLICY
    )
    assert (decision.retry, decision.dead_letter) == (False, True)


def test_a_jobs_own_failure_is_not_retried_unless_it_opted_in() -> None:
    assert decide_retry(ExitCode.JOB_ERROR, 1, 0, POLICY).retry is False
    assert decide_retry(ExitCode.JOB_ERROR, 1, 0, POLICY).dead_letter is False
    assert decide_retry(ExitCode.JOB_ERROR, 1, 2, POLICY).retry is True
    assert decide_retry(ExitCode.JOB_ERROR, 3, 2, POLICY).dead_letter is True


def test_failures_that_would_repeat_are_never_retried() -> None:
    for code in (ExitCode.CORE_ERROR, ExitCode.PLATFORM_ERROR, ExitCode.SUCCESS):
        assert decide_retry(code, 1, 5, POLICY) == decide_retry(code, 1, 0, POLICY)
        assert decide_retry(code, 1, 5, POLICY).retry is False


def test_waits_stop_growing_at_the_cap() -> None:
    assert [backoff_s(n, POLICY) for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_a_retry_has_one_id_however_often_it_is_decided() -> None:
    run_id = uuid4()
    assert retry_run_id(run_id) == retry_run_id(run_id) != run_id


def test_the_first_run_of_a_pair_passes_the_gate() -> None:
    assert judge(None, None, uuid4(), NOW, 10).allowed


def test_a_second_run_inside_the_window_is_refused_with_the_wait_left() -> None:
    verdict = judge(uuid4(), NOW - timedelta(seconds=4), uuid4(), NOW, 10)
    assert (verdict.allowed, verdict.retry_after_s) == (False, 6)


def test_a_run_after_the_window_passes() -> None:
    assert judge(uuid4(), NOW - timedelta(seconds=10), uuid4(), NOW, 10).allowed


def test_the_same_run_asked_for_again_always_passes() -> None:
    run_id = uuid4()
    assert judge(run_id, NOW, run_id, NOW, 10).allowed
