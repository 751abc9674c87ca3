"""The domain model, in the user's words: projects, jobs, triggers, runs, job states."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict

JsonObject = dict[str, Any]

# Ids derived from names are stable across deploys of the same project.
_IDS = UUID("0b9f5a3e-6d1c-4f57-9a49-1f7e2c3d8a10")


def project_scoped_id(project_id: UUID, kind: str, name: str) -> UUID:
    """The id of a job or trigger: the same for the same project, kind and name."""
    return uuid5(_IDS, f"{project_id}/{kind}/{name}")


class TriggerKind(StrEnum):
    """When a job runs: on a message, on a schedule, or after another job."""

    MESSAGE = "message"
    CRON = "cron"
    SUCCESS = "success"
    FAILURE = "failure"


class RunStatus(StrEnum):
    """Where a run is in its life."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    LOST = "lost"
    ABORTED = "aborted"


class RunOrigin(StrEnum):
    """What asked for a run."""

    MESSAGE = "message"
    FLOW = "flow"
    CATCH = "catch"
    CRON = "cron"
    RUN_NOW = "run_now"
    RERUN = "rerun"
    REPROCESS = "reprocess"
    RETRY = "retry"


class JobState(StrEnum):
    """The result of the last run of a message/job pair, as the inbox shows it."""

    SUCCESS = "success"
    FAILURE = "failure"
    IN_PROGRESS = "in progress"


class ExitCode(IntEnum):
    """Exit codes of a run; the numbers are the reference platform's."""

    SUCCESS = 0
    JOB_ERROR = 1
    TIMEOUT = 2
    FAILED_TO_START = 3
    UNRESPONSIVE = 4
    PLATFORM_ERROR = 5
    ABORTED = 6
    CORE_ERROR = 10
    UNCAUGHT_ERROR = 11
    OUT_OF_MEMORY = 134


def status_for_exit(code: int) -> RunStatus:
    """The status a finished run has for its exit code."""
    if code == ExitCode.SUCCESS:
        return RunStatus.SUCCEEDED
    if code == ExitCode.TIMEOUT:
        return RunStatus.TIMED_OUT
    if code == ExitCode.ABORTED:
        return RunStatus.ABORTED
    return RunStatus.FAILED


def abort_error(requested_by: str) -> str:
    """The error of a run that ``requested_by`` aborted."""
    return f"the run was aborted by {requested_by}"


def job_state_for(status: RunStatus) -> JobState:
    """How a run's status reads as a job state."""
    if status == RunStatus.SUCCEEDED:
        return JobState.SUCCESS
    if status == RunStatus.STARTED:
        return JobState.IN_PROGRESS
    return JobState.FAILURE


class Trigger(BaseModel):
    """A deployed trigger. Criteria apply to message filters, ``upstream_job``
    to flow (success) and catch (failure) triggers."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str
    kind: TriggerKind
    criteria: JsonObject | list[Any] | None = None
    exclusion: JsonObject | list[Any] | None = None
    cron: str | None = None
    upstream_job: str | None = None
    missed: str = "skip"


class Job(BaseModel):
    """A deployed job; ``version`` changes whenever what it runs changes."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str
    trigger: str
    adaptor: str
    expression: str
    credential: str | None = None
    enabled: bool = True
    version: str
    retries: int = 0


class Project(BaseModel):
    """A deployed project with its inbox, jobs and triggers."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str
    inbox_id: UUID
    revision: int
    timezone: str = "UTC"
    jobs: tuple[Job, ...] = ()
    triggers: tuple[Trigger, ...] = ()

    def trigger_named(self, name: str) -> Trigger | None:
        return next((t for t in self.triggers if t.name == name), None)

    def job_named(self, name: str) -> Job | None:
        return next((j for j in self.jobs if j.name == name), None)

    def job_by_id(self, job_id: UUID) -> Job | None:
        return next((j for j in self.jobs if j.id == job_id), None)
