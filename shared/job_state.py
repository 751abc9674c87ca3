"""Which run decides a message/job pair's job state.

The last run by finish time, then start time, then id. A run that has not
finished counts as later than any finished one, as ``ORDER BY finished_at DESC``
puts NULLs first in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared.model import JobState, RunStatus, job_state_for


@dataclass(frozen=True)
class RunTimes:
    """What ordering needs of a run."""

    id: UUID
    status: RunStatus
    started_at: datetime | None
    finished_at: datetime | None


def _order_key(run: RunTimes) -> tuple[object, ...]:
    # Each missing time sets the flag before it, so the stand-in is never
    # compared with a real time.
    return (
        run.finished_at is None,
        run.finished_at or datetime.min,
        run.started_at is None,
        run.started_at or datetime.min,
        run.id,
    )


def last_run(runs: Iterable[RunTimes]) -> RunTimes | None:
    """The run whose result is the pair's job state, or None without runs."""
    return max(runs, key=_order_key, default=None)


def job_state(runs: Iterable[RunTimes]) -> JobState | None:
    """The job state of a message/job pair from all of its runs."""
    run = last_run(runs)
    return job_state_for(run.status) if run is not None else None
