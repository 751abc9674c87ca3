"""What happens after a run finishes: a retry, a dead letter, flow and catch runs.

Each step is safe to repeat for a redelivered event: retries and dead letters
are keyed by the run they come from, and chained runs have deterministic ids.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from services.dispatcher.planning import job_spec
from shared.db.connection import notify_activity
from shared.events import DeadLetter, RunFinished, RunRequest
from shared.logging import get_logger
from shared.model import Project, RunOrigin
from shared.retries import RetryDecision, RetryPolicy, decide_retry, retry_run_id

log = get_logger(__name__)


def decide(
    finished: RunFinished, project: Project, policy: RetryPolicy
) -> RetryDecision:
    """The retry decision for a finished run of a job still deployed."""
    job = project.job_by_id(finished.job_id)
    retries = job.retries if job is not None else 0
    return decide_retry(finished.exit_code, finished.attempt, retries, policy)


def schedule_retry(
    conn: Connection[Any],
    finished: RunFinished,
    project: Project,
    delay_s: float,
) -> RunRequest | None:
    """Queue the next attempt of a failed run; None if its job is gone."""
    job = project.job_by_id(finished.job_id)
    if job is None or finished.input_state is None:
        log.warning(
            "retry.impossible", run_id=str(finished.run_id), job=finished.job_name
        )
        return None
    now = datetime.now(UTC)
    request = RunRequest(
        run_id=retry_run_id(finished.run_id),
        project_id=finished.project_id,
        job=job_spec(job),
        trigger=finished.trigger,
        message_id=finished.message_id,
        input_state=finished.input_state,
        requested_at=now,
        origin=RunOrigin.RETRY,
        attempt=finished.attempt + 1,
        chain_depth=finished.chain_depth,
        retry_of=finished.run_id,
    )
    conn.execute(
        "INSERT INTO scheduled_runs (run_id, due_at, request) VALUES (%s, %s, %s)"
        " ON CONFLICT (run_id) DO NOTHING",
        (
            request.run_id,
            now + timedelta(seconds=delay_s),
            Jsonb(request.model_dump(mode="json")),
        ),
    )
    log.warning(
        "run.retry_scheduled",
        run_id=str(finished.run_id),
        retry_id=str(request.run_id),
        attempt=request.attempt,
        delay_s=delay_s,
    )
    return request


def dead_letter(conn: Connection[Any], finished: RunFinished) -> DeadLetter:
    """Keep a run that used up its retries for an operator."""
    letter = DeadLetter(
        run_id=finished.run_id,
        project_id=finished.project_id,
        job_id=finished.job_id,
        job_name=finished.job_name,
        message_id=finished.message_id,
        trigger=finished.trigger,
        input_state=finished.input_state or {},
        exit_code=finished.exit_code,
        error=finished.error,
        attempts=finished.attempt,
        dead_at=datetime.now(UTC),
    )
    conn.execute(
        "INSERT INTO dead_letters (run_id, project_id, job_id, job_name, message_id,"
        " trigger, input_state, exit_code, error, attempts)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (run_id) DO NOTHING",
        (
            letter.run_id,
            letter.project_id,
            letter.job_id,
            letter.job_name,
            letter.message_id,
            Jsonb(letter.trigger.model_dump(mode="json")),
            Jsonb(letter.input_state),
            letter.exit_code,
            letter.error,
            letter.attempts,
        ),
    )
    notify_activity(conn, [letter.project_id])
    log.error(
        "run.dead_lettered",
        run_id=str(finished.run_id),
        job=finished.job_name,
        attempts=finished.attempt,
        exit_code=finished.exit_code,
    )
    return letter
