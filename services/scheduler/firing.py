"""What a cron job's run asks for: its id, its request and its cursor.

The scheduler fires ticks with these, and the API's "run now" can reuse them;
nothing here writes to Kafka.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from psycopg import Connection
from structlog.stdlib import BoundLogger

from services.dispatcher.planning import job_spec
from shared.errors import ConfigurationError
from shared.events import RunRequest, TriggerRef
from shared.model import Job, JsonObject, Project, RunOrigin, TriggerKind

CURSOR_WARN_BYTES = 10_000
"""A cursor larger than this still carries over, with a warning, as in v1."""

_CRON_RUN_IDS = UUID("3f6b9d2e-8a41-4c7f-b5e0-71d2c9a4e816")


def cron_run_id(trigger_id: UUID, job_id: UUID, tick: datetime) -> UUID:
    """The id of the run a tick starts for a job: the same whoever fires the tick."""
    return uuid5(
        _CRON_RUN_IDS,
        f"cron/{trigger_id}/job/{job_id}/tick/{tick.astimezone(UTC).isoformat()}",
    )


def cron_run_request(
    project: Project,
    job: Job,
    input_state: JsonObject,
    run_id: UUID,
    origin: RunOrigin,
    requested_at: datetime,
) -> RunRequest:
    """A run of a cron job: a tick of its trigger (``CRON``) or on demand (``RUN_NOW``).

    Raises:
        ConfigurationError: The job's trigger is not a cron trigger of the project.
    """
    trigger = project.trigger_named(job.trigger)
    if trigger is None or trigger.kind is not TriggerKind.CRON:
        raise ConfigurationError(
            f"job {job.name!r} of project {project.name!r} has no cron trigger"
            f" (its trigger is {job.trigger!r})"
        )
    return RunRequest(
        run_id=run_id,
        project_id=project.id,
        job=job_spec(job),
        trigger=TriggerRef(id=trigger.id, name=trigger.name, kind=TriggerKind.CRON),
        message_id=None,
        input_state=input_state,
        requested_at=requested_at,
        origin=origin,
    )


def load_cursor(
    conn: Connection[Any], job_id: UUID, max_bytes: int, log: BoundLogger
) -> JsonObject:
    """The input state of a cron job's next run: its last succeeded final state.

    ``{}`` when the job has not succeeded yet, or when that state is over
    ``max_bytes`` as compact JSON (logged as ``cron.cursor_too_large``).
    """
    row = conn.execute(
        "SELECT id, final_state FROM runs WHERE job_id = %s AND status = 'succeeded'"
        " ORDER BY finished_at DESC LIMIT 1",
        (job_id,),
    ).fetchone()
    if row is None or not isinstance(row["final_state"], dict):
        return {}
    state: JsonObject = row["final_state"]
    size_bytes = len(json.dumps(state, separators=(",", ":")).encode())
    fields = {"job_id": str(job_id), "run_id": str(row["id"]), "bytes": size_bytes}
    if size_bytes > max_bytes:
        log.warning("cron.cursor_too_large", limit_bytes=max_bytes, **fields)
        return {}
    if size_bytes > CURSOR_WARN_BYTES:
        log.warning("cron.cursor_large", warn_bytes=CURSOR_WARN_BYTES, **fields)
    return state
