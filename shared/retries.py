"""Which failed runs are tried again, after how long, and which go to the dead letters.

A run that failed for a platform reason (it could not start, or its runner was
lost) is retried up to a platform-wide number of attempts. A job may also opt
in to retries of its own failures with ``retries: N`` in project.yaml. Waits
grow exponentially up to a cap. A run that should have been retried but has
used up its attempts goes to the dead letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid5

from shared.model import ExitCode

PLATFORM_FAILURES = frozenset({ExitCode.FAILED_TO_START, ExitCode.UNRESPONSIVE})
"""Exit codes that say nothing about the job: it never ran to an end."""

JOB_FAILURES = frozenset(
    {
        ExitCode.JOB_ERROR,
        ExitCode.TIMEOUT,
        ExitCode.UNCAUGHT_ERROR,
        ExitCode.OUT_OF_MEMORY,
    }
)
"""The job's own failures that ``retries: N`` applies to; a job that cannot be
built (10) or a state over its limit (5) would fail the same way again."""

_RETRY_IDS = UUID("8e3c2a71-4d5b-4f0e-9b6a-2c7d1e9f3a58")


@dataclass(frozen=True)
class RetryPolicy:
    """Platform-wide retry settings."""

    platform_attempts: int = 5
    base_delay_s: float = 10.0
    max_delay_s: float = 600.0


@dataclass(frozen=True)
class RetryDecision:
    """What to do after a failed run."""

    retry: bool
    delay_s: float = 0.0
    dead_letter: bool = False


def decide_retry(
    exit_code: int, attempt: int, job_retries: int, policy: RetryPolicy
) -> RetryDecision:
    """Whether a run that ended with ``exit_code`` on ``attempt`` is tried again."""
    if exit_code in PLATFORM_FAILURES:
        allowed = max(policy.platform_attempts, job_retries + 1)
    elif exit_code in JOB_FAILURES and job_retries > 0:
        allowed = job_retries + 1
    else:
        return RetryDecision(retry=False)
    if attempt >= allowed:
        return RetryDecision(retry=False, dead_letter=True)
    return RetryDecision(retry=True, delay_s=backoff_s(attempt, policy))


def backoff_s(attempt: int, policy: RetryPolicy) -> float:
    """The wait before the attempt after ``attempt``: doubling, capped."""
    return float(min(policy.base_delay_s * 2 ** (attempt - 1), policy.max_delay_s))


def retry_run_id(run_id: UUID) -> UUID:
    """The id of the retry of a run: the same however often the decision is made."""
    return uuid5(_RETRY_IDS, f"retry/{run_id}")
