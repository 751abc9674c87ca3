"""Which runs a message or a finished run asks for: pure functions of the project."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from shared.events import JobSpec, RunFinished, RunRequest, TriggerRef
from shared.matching import matches_filter
from shared.model import (
    Job,
    JsonObject,
    Project,
    RunOrigin,
    RunStatus,
    Trigger,
    TriggerKind,
)

_RUN_IDS = UUID("5d7c1f0e-2b8a-4c39-8f6e-3a1d9b0c4e27")


def message_run_id(
    message_id: UUID, job_id: UUID, reprocess_id: UUID | None = None
) -> UUID:
    """The id of the run a message starts for a job: the same on every redelivery.

    Reprocessing a message gives new ids, one set per reprocessing.
    """
    if reprocess_id is None:
        return uuid5(_RUN_IDS, f"message/{message_id}/job/{job_id}")
    return uuid5(
        _RUN_IDS, f"reprocess/{reprocess_id}/message/{message_id}/job/{job_id}"
    )


def chained_run_id(upstream_run_id: UUID, job_id: UUID) -> UUID:
    """The id of the run a finished run starts through a flow or catch trigger."""
    return uuid5(_RUN_IDS, f"after/{upstream_run_id}/job/{job_id}")


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


def _triggered(project: Project, kind: TriggerKind) -> Iterator[tuple[Job, Trigger]]:
    for job in project.jobs:
        trigger = project.trigger_named(job.trigger)
        if job.enabled and trigger is not None and trigger.kind is kind:
            yield job, trigger


def plan_message_runs(
    project: Project,
    message_id: UUID,
    body: Any,
    requested_at: datetime,
    reprocess_id: UUID | None = None,
) -> list[RunRequest]:
    """One run request per enabled job whose message-filter trigger matches the body."""
    return [
        RunRequest(
            run_id=message_run_id(message_id, job.id, reprocess_id),
            project_id=project.id,
            job=job_spec(job),
            trigger=TriggerRef(id=trigger.id, name=trigger.name, kind=trigger.kind),
            message_id=message_id,
            input_state={"data": body},
            requested_at=requested_at,
            origin=RunOrigin.MESSAGE if reprocess_id is None else RunOrigin.REPROCESS,
        )
        for job, trigger in _triggered(project, TriggerKind.MESSAGE)
        if matches_filter(body, trigger.criteria, trigger.exclusion)
    ]


def plan_chained_runs(
    project: Project, finished: RunFinished, requested_at: datetime
) -> list[RunRequest]:
    """The runs a finished run starts: flow jobs on success, catch jobs on failure.

    An aborted run starts nothing: whoever stopped it stopped what follows too.
    A flow job starts from the upstream run's final state; a catch job from
    its state at the failure (or its input when the run left none), with the
    error recorded under ``error``.
    """
    if finished.status is RunStatus.ABORTED:
        return []
    succeeded = finished.status is RunStatus.SUCCEEDED
    kind = TriggerKind.SUCCESS if succeeded else TriggerKind.FAILURE
    state = _downstream_state(finished, succeeded)
    return [
        RunRequest(
            run_id=chained_run_id(finished.run_id, job.id),
            project_id=project.id,
            job=job_spec(job),
            trigger=TriggerRef(id=trigger.id, name=trigger.name, kind=trigger.kind),
            message_id=finished.message_id,
            input_state=state,
            requested_at=requested_at,
            origin=RunOrigin.FLOW if succeeded else RunOrigin.CATCH,
            chain_depth=finished.chain_depth + 1,
        )
        for job, trigger in _triggered(project, kind)
        if trigger.upstream_job == finished.job_name
    ]


def _downstream_state(finished: RunFinished, succeeded: bool) -> JsonObject:
    state = dict(finished.final_state or finished.input_state or {})
    if not succeeded:
        state["error"] = {
            "message": finished.error,
            "exit_code": finished.exit_code,
            "status": finished.status.value,
            "job": finished.job_name,
            "run_id": str(finished.run_id),
        }
    return state
