"""Re-runs and "run now": new runs of a deployed job, asked for by an operator.

A re-run starts the job of an earlier run again, at its current deployed
version, from that run's recorded input state, for the same trigger and
message. A bulk re-run does so for a filtered activity-history list, except
for runs that only a flow or catch trigger started: those fire again
downstream of the re-run first wave. "Run now" starts a cron job from its
cursor. Every run of a message passes the 10-second gate first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from psycopg import Connection

from services.api import queries
from services.scheduler.firing import load_cursor
from shared.errors import PlatformError
from shared.events import JobSpec, RunRequest, TriggerRef
from shared.logging import get_logger
from shared.model import JsonObject, RunOrigin, RunStatus, TriggerKind
from shared.run_gate import pass_gate

log = get_logger(__name__)

HISTORY_DEFAULT_DAYS = 30
CHAINED_ORIGINS = frozenset({RunOrigin.FLOW, RunOrigin.CATCH})
FAILURE = "failure"
"""A status filter meaning every finished run that did not succeed."""
_FAILED = [
    RunStatus.FAILED.value,
    RunStatus.TIMED_OUT.value,
    RunStatus.LOST.value,
    RunStatus.ABORTED.value,
]


class RunNotPossibleError(PlatformError):
    """A run that cannot be started as asked; ``code`` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class GateClosedError(PlatformError):
    """The 10-second rule refuses a run of a message/job pair for now."""

    def __init__(self, message_id: UUID, job_id: UUID, retry_after_s: float) -> None:
        super().__init__(
            f"message {message_id} ran job {job_id} less than the window ago;"
            f" ask again in {retry_after_s:.1f} s"
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Refusal:
    """A run the gate refused in a bulk re-run, and when to ask again."""

    run_id: UUID
    retry_after_s: float


@dataclass
class BulkRerun:
    """What a bulk re-run asks for, and what it leaves out and why."""

    requests: list[RunRequest] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    not_possible: list[tuple[UUID, RunNotPossibleError]] = field(default_factory=list)
    skipped_chained: int = 0


def whole_seconds(seconds: float) -> int:
    """A wait as a Retry-After value: whole seconds, rounded up, at least one."""
    return max(1, math.ceil(seconds))


def statuses_for(status: str | None) -> list[str] | None:
    """The run statuses a status filter selects; None selects every run."""
    if status is None:
        return None
    if status == FAILURE:
        return list(_FAILED)
    return [RunStatus(status).value]


def as_utc(moment: datetime | None) -> datetime | None:
    """A filter's time; one given without a time zone is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def history_window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The period a filter covers: the last 30 days unless it says otherwise."""
    end = as_utc(until) or now
    return as_utc(since) or end - timedelta(days=HISTORY_DEFAULT_DAYS), end


def is_first_wave(origin: str) -> bool:
    """False for runs only a flow or catch trigger started."""
    return RunOrigin(origin) not in CHAINED_ORIGINS


def rerun_request(
    run: queries.Row, job: queries.Row | None, run_id: UUID, now: datetime
) -> RunRequest:
    """A new run of ``run``'s job from ``run``'s input state.

    Args:
        run: The earlier run, as ``queries.run_to_rerun`` reads it.
        job: The run's job as deployed now; None when it was removed.
        run_id: The new run's id.
        now: When the new run is asked for.

    Raises:
        RunNotPossibleError: The run has no recorded input state yet, or its
            job is no longer deployed.
    """
    if run["input_state"] is None:
        raise RunNotPossibleError(
            "no_input_state",
            f"run {run['id']} has no recorded input state yet; re-run it once"
            " it has started",
        )
    if job is None:
        raise RunNotPossibleError(
            "job_removed", f"the job of run {run['id']} is no longer deployed"
        )
    trigger = (
        TriggerRef(
            id=run["trigger_id"],
            name=run["trigger_name"],
            kind=TriggerKind(run["trigger_kind"]),
        )
        if run["trigger_name"] is not None
        else current_trigger(job)
    )
    return RunRequest(
        run_id=run_id,
        project_id=run["project_id"],
        job=job_spec(job),
        trigger=trigger,
        message_id=run["message_id"],
        input_state=run["input_state"],
        requested_at=now,
        origin=RunOrigin.RERUN,
        # Kept so that re-running a chained run cannot restart the chain limit.
        chain_depth=run["chain_depth"],
    )


def run_now_request(
    job: queries.Row, cursor: JsonObject, run_id: UUID, now: datetime
) -> RunRequest:
    """A run of a cron job now, from its cursor, outside its schedule.

    Raises:
        RunNotPossibleError: The job's trigger is not a cron trigger.
    """
    if job["trigger_kind"] != TriggerKind.CRON:
        raise RunNotPossibleError(
            "not_a_cron_job",
            f"job {job['name']!r} has a {job['trigger_kind']} trigger; only jobs"
            " with a cron trigger can be run now",
        )
    return RunRequest(
        run_id=run_id,
        project_id=job["project_id"],
        job=job_spec(job),
        trigger=current_trigger(job),
        message_id=None,
        input_state=cursor,
        requested_at=now,
        origin=RunOrigin.RUN_NOW,
    )


def job_spec(job: queries.Row) -> JobSpec:
    """What a runner needs of a deployed job row."""
    return JobSpec(
        id=job["id"],
        name=job["name"],
        version=job["version"],
        adaptor=job["adaptor"],
        expression=job["expression"],
        credential=job["credential"],
    )


def current_trigger(job: queries.Row) -> TriggerRef:
    """The trigger a deployed job row names."""
    return TriggerRef(
        id=job["trigger_id"],
        name=job["trigger_name"],
        kind=TriggerKind(job["trigger_kind"]),
    )


def plan_rerun(
    conn: Connection[Any], run: queries.Row, window_s: float, now: datetime
) -> RunRequest:
    """A re-run of ``run`` that has passed the gate.

    Raises:
        RunNotPossibleError: As ``rerun_request`` does.
        GateClosedError: The run's message/job pair ran less than the window ago.
    """
    request = rerun_request(run, queries.job_to_run(conn, run["job_id"]), uuid4(), now)
    if request.message_id is not None:
        verdict = pass_gate(
            conn, request.message_id, request.job.id, request.run_id, window_s
        )
        if not verdict.allowed:
            raise GateClosedError(
                request.message_id, request.job.id, verdict.retry_after_s
            )
    return request


def plan_bulk_rerun(
    conn: Connection[Any], runs: list[queries.Row], window_s: float, now: datetime
) -> BulkRerun:
    """Re-runs of the first-wave runs of a list, each through the gate."""
    plan = BulkRerun()
    for run in runs:
        if not is_first_wave(run["origin"]):
            plan.skipped_chained += 1
            continue
        try:
            plan.requests.append(plan_rerun(conn, run, window_s, now))
        except GateClosedError as exc:
            plan.refused.append(Refusal(run["id"], exc.retry_after_s))
        except RunNotPossibleError as exc:
            plan.not_possible.append((run["id"], exc))
    return plan


def plan_run_now(
    conn: Connection[Any], job: queries.Row, cursor_max_bytes: int, now: datetime
) -> RunRequest:
    """A run of cron job ``job`` from its cursor, as the scheduler would start it.

    Raises:
        RunNotPossibleError: The job's trigger is not a cron trigger.
    """
    cursor = load_cursor(conn, job["id"], cursor_max_bytes, log)
    return run_now_request(job, cursor, uuid4(), now)
