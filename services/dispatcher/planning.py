"""Which runs a message asks for: a pure function of the project and the message."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from shared.events import JobSpec, RunRequest, TriggerRef
from shared.matching import matches_filter
from shared.model import Job, Project, TriggerKind

_RUN_IDS = UUID("5d7c1f0e-2b8a-4c39-8f6e-3a1d9b0c4e27")


def message_run_id(message_id: UUID, job_id: UUID) -> UUID:
    """The id of the run a message starts for a job: the same on every redelivery."""
    return uuid5(_RUN_IDS, f"message/{message_id}/job/{job_id}")


def job_spec(job: Job) -> JobSpec:
    """What a runner needs of a deployed job."""
    return JobSpec(
        id=job.id,
        name=job.name,
        version=job.version,
        adaptor=job.adaptor,
        expression=job.expression,
        credential=job.credential,
    )


def plan_message_runs(
    project: Project, message_id: UUID, body: Any, requested_at: datetime
) -> list[RunRequest]:
    """One run request per enabled job whose message-filter trigger matches the body."""
    requests: list[RunRequest] = []
    for job in project.jobs:
        trigger = project.trigger_named(job.trigger)
        if (
            not job.enabled
            or trigger is None
            or trigger.kind is not TriggerKind.MESSAGE
        ):
            continue
        if not matches_filter(body, trigger.criteria, trigger.exclusion):
            continue
        requests.append(
            RunRequest(
                run_id=message_run_id(message_id, job.id),
                project_id=project.id,
                job=job_spec(job),
                trigger=TriggerRef(id=trigger.id, name=trigger.name, kind=trigger.kind),
                message_id=message_id,
                input_state={"data": body},
                requested_at=requested_at,
            )
        )
    return requests
