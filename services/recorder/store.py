"""Idempotent writes of messages, runs and job states.

Every write can be repeated, and run events can arrive in any order: a run
row keeps its first start and its latest finish, and a pair's job state is
recomputed from all of the pair's runs each time one of them changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from shared.bodies import BodyKind, body_kind, parse_body
from shared.events import Message, RunFinished, RunStarted
from shared.job_state import RunTimes, last_run
from shared.model import RunStatus, job_state_for

_INSERT_MESSAGE = """
INSERT INTO messages
    (id, project_id, received_at, content_type, headers, body, raw_body)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING
"""

_UPSERT_STARTED = """
INSERT INTO runs
    (id, project_id, job_id, job_name, trigger_id, trigger_kind, message_id,
     origin, attempt, chain_depth, status, started_at, input_state, runner)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'started', %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET
    started_at = coalesce(runs.started_at, EXCLUDED.started_at),
    input_state = coalesce(runs.input_state, EXCLUDED.input_state)
"""

# A finish replaces an earlier one only when it is later, so any order of
# duplicate finishes ends in the same row; a run's real finish beats its being
# declared lost, which only a recorder far behind would see in that order.
_UPSERT_FINISHED = """
INSERT INTO runs
    (id, project_id, job_id, job_name, trigger_id, trigger_kind, message_id,
     origin, attempt, chain_depth,
     status, exit_code, started_at, finished_at, final_state, logs, error, runner,
     adaptor, adaptor_version, input_state)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
        %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET
    input_state = coalesce(runs.input_state, EXCLUDED.input_state),
    status = EXCLUDED.status,
    exit_code = EXCLUDED.exit_code,
    started_at = EXCLUDED.started_at,
    finished_at = EXCLUDED.finished_at,
    final_state = EXCLUDED.final_state,
    logs = EXCLUDED.logs,
    error = EXCLUDED.error,
    runner = EXCLUDED.runner,
    adaptor = EXCLUDED.adaptor,
    adaptor_version = EXCLUDED.adaptor_version
WHERE runs.finished_at IS NULL
   OR (EXCLUDED.status <> 'lost', EXCLUDED.finished_at, EXCLUDED.started_at,
       EXCLUDED.exit_code)
      > (runs.status <> 'lost', runs.finished_at, runs.started_at, runs.exit_code)
"""

_UPSERT_JOB_STATE = """
INSERT INTO job_states
    (message_id, job_id, project_id, job_name, run_id, status, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, now())
ON CONFLICT (message_id, job_id) DO UPDATE SET
    run_id = EXCLUDED.run_id, status = EXCLUDED.status, job_name = EXCLUDED.job_name,
    updated_at = now()
WHERE (job_states.run_id, job_states.status)
      IS DISTINCT FROM (EXCLUDED.run_id, EXCLUDED.status)
"""


def message_row(message: Message) -> tuple[Any, ...]:
    """The row a message is stored as: its body parsed, and raw too when XML."""
    kind = body_kind(message.content_type)
    raw = (
        message.body.decode("utf-8", errors="replace") if kind is BodyKind.XML else None
    )
    return (
        message.id,
        message.project_id,
        message.received_at,
        message.content_type,
        Jsonb(message.headers),
        Jsonb(parse_body(kind, message.body)),
        raw,
    )


def store_messages(conn: Connection[Any], rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert messages; one already stored is left as it is."""
    if rows:
        with conn.cursor() as cursor:
            cursor.executemany(_INSERT_MESSAGE, rows)


def apply_run_events(
    conn: Connection[Any], events: Sequence[RunStarted | RunFinished]
) -> None:
    """Apply run events, then bring the job state of every touched pair up to date."""
    with conn.cursor() as cursor:
        for event in events:
            if isinstance(event, RunStarted):
                cursor.execute(_UPSERT_STARTED, _started_row(event))
            else:
                cursor.execute(_UPSERT_FINISHED, _finished_row(event))
    pairs = {
        (event.message_id, event.job_id): event
        for event in events
        if event.message_id is not None
    }
    for (message_id, job_id), event in sorted(
        pairs.items(), key=lambda item: str(item[0])
    ):
        refresh_job_state(conn, message_id, job_id, event.project_id, event.job_name)


def refresh_job_state(
    conn: Connection[Any],
    message_id: UUID,
    job_id: UUID,
    project_id: UUID,
    job_name: str,
) -> None:
    """Recompute one pair's job state from all its runs, under a lock on the pair."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"{message_id}/{job_id}",),
    )
    rows = conn.execute(
        "SELECT id, status, started_at, finished_at FROM runs"
        " WHERE message_id = %s AND job_id = %s",
        (message_id, job_id),
    ).fetchall()
    run = last_run(_run_times(rows))
    if run is None:
        return
    conn.execute(
        _UPSERT_JOB_STATE,
        (
            message_id,
            job_id,
            project_id,
            job_name,
            run.id,
            job_state_for(run.status).value,
        ),
    )


def _run_times(rows: Iterable[dict[str, Any]]) -> list[RunTimes]:
    return [
        RunTimes(
            row["id"], RunStatus(row["status"]), row["started_at"], row["finished_at"]
        )
        for row in rows
    ]


def _identity(event: RunStarted | RunFinished) -> tuple[Any, ...]:
    return (
        event.run_id,
        event.project_id,
        event.job_id,
        event.job_name,
        event.trigger.id,
        event.trigger.kind.value,
        event.message_id,
        event.origin.value,
        event.attempt,
        event.chain_depth,
    )


def _started_row(event: RunStarted) -> tuple[Any, ...]:
    return (*_identity(event), event.started_at, Jsonb(event.input_state), event.runner)


def _finished_row(event: RunFinished) -> tuple[Any, ...]:
    return (
        *_identity(event),
        event.status.value,
        event.exit_code,
        event.started_at,
        event.finished_at,
        Jsonb(event.final_state) if event.final_state is not None else None,
        Jsonb([line.model_dump(mode="json") for line in event.logs]),
        event.error,
        event.runner,
        event.adaptor,
        event.adaptor_version,
        Jsonb(event.input_state) if event.input_state is not None else None,
    )
