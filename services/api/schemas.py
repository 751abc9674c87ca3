"""The shapes of the API's answers, which the OpenAPI document shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.auth import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_PATTERN,
    Role,
)
from shared.model import JobState, RunOrigin, RunStatus, TriggerKind


class ErrorBody(BaseModel):
    """Every error answer has this shape, plus the ids it concerns."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    problems: list[str] | None = None


class JobOut(BaseModel):
    id: UUID
    name: str
    trigger: str
    adaptor: str
    credential: str | None
    enabled: bool
    version: str


class TriggerOut(BaseModel):
    id: UUID
    name: str
    kind: TriggerKind
    criteria: Any = None
    exclusion: Any = None
    cron: str | None = None
    upstream_job: str | None = None


class ProjectOut(BaseModel):
    id: UUID
    name: str
    inbox_id: UUID
    inbox_url: str
    revision: int
    jobs: list[JobOut]
    triggers: list[TriggerOut]


class JobStateOut(BaseModel):
    job_id: UUID
    job_name: str
    state: JobState
    run_id: UUID


class MessageSummary(BaseModel):
    id: UUID
    received_at: datetime
    content_type: str
    job_states: list[JobStateOut]


class MessagePage(BaseModel):
    messages: list[MessageSummary]
    next_before: UUID | None
    """Pass as ``before`` to read the next, older page; null on the last page."""


class RunSummary(BaseModel):
    id: UUID
    job_id: UUID
    job_name: str
    trigger_kind: TriggerKind
    origin: RunOrigin
    """What asked for the run: a message, a flow or catch trigger, a re-run…"""
    attempt: int
    status: RunStatus
    exit_code: int | None
    started_at: datetime | None
    finished_at: datetime | None


class Receipt(BaseModel):
    """A message with every run it caused and its job states."""

    id: UUID
    project_id: UUID
    received_at: datetime
    content_type: str
    headers: dict[str, str]
    body: Any
    raw_body: str | None
    job_states: list[JobStateOut]
    runs: list[RunSummary]


class LogLineOut(BaseModel):
    at: datetime
    message: str


class AbortRequest(BaseModel):
    """Who asked to abort a run, and when."""

    requested_by: str
    requested_at: datetime


class RunOut(RunSummary):
    project_id: UUID
    message_id: UUID | None
    runner: str | None
    adaptor: str | None
    adaptor_version: str | None
    error: str | None
    input_state: dict[str, Any] | None
    final_state: dict[str, Any] | None
    logs: list[LogLineOut]
    abort: AbortRequest | None = Field(
        default=None, description="The request to abort the run, if one was made."
    )


class RunAbortRequested(AbortRequest):
    """An abort was asked for; the run ends with exit code 6 (status
    ``aborted``) once its runner has stopped it, usually within seconds."""

    run_id: UUID


class RunRequested(BaseModel):
    """A run was asked for; follow it at ``GET /api/runs/{run_id}``."""

    run_id: UUID


class RerunFilter(BaseModel):
    """Which runs of the activity history to re-run."""

    model_config = ConfigDict(extra="forbid")

    job: str | None = Field(default=None, description="Only runs of this job.")
    status: (
        Literal["succeeded", "failed", "timed_out", "lost", "aborted", "failure"] | None
    ) = Field(
        default=None,
        description="Only runs with this status; `failure` is failed, timed_out, "
        "lost and aborted together.",
    )
    since: datetime | None = Field(
        default=None, description="Runs created at or after; default 30 days ago."
    )
    until: datetime | None = Field(
        default=None, description="Runs created before; default now."
    )
    limit: int = Field(
        default=100, ge=1, le=1000, description="Most runs taken, newest first."
    )


class RefusedRun(BaseModel):
    """A run the 10-second rule kept from being re-run for now."""

    run_id: UUID
    retry_after_s: int


class NotRerun(BaseModel):
    """A run that cannot be re-run, and why."""

    run_id: UUID
    code: str
    message: str


class BulkRerunOut(BaseModel):
    """What a bulk re-run asked for, and what it left out."""

    requested: list[UUID] = Field(description="Ids of the new runs.")
    refused: list[RefusedRun] = Field(
        description="Runs whose message/job pair ran less than the window ago."
    )
    not_rerun: list[NotRerun] = Field(
        description="Runs without a recorded input state or whose job was removed."
    )
    skipped_chained: int = Field(
        description="Runs started by a flow or catch trigger; they follow the "
        "re-runs downstream as usual."
    )


class ReprocessFilter(BaseModel):
    """Which messages of the inbox to send through trigger matching again."""

    model_config = ConfigDict(extra="forbid")

    ids: list[UUID] | None = Field(
        default=None, max_length=1000, description="Only these messages."
    )
    since: datetime | None = Field(
        default=None,
        description="Messages received at or after; default 30 days ago unless "
        "`ids` is given.",
    )
    until: datetime | None = Field(
        default=None, description="Messages received before; default now."
    )
    limit: int = Field(
        default=100, ge=1, le=1000, description="Most messages taken, newest first."
    )


class ReprocessOut(BaseModel):
    """The messages sent through trigger matching again."""

    reprocessed: list[UUID]


class DeadLetterOut(BaseModel):
    """A run that used up its retries."""

    run_id: UUID
    project: str
    job_name: str
    message_id: UUID | None
    exit_code: int
    error: str | None
    attempts: int
    dead_at: datetime
    redriven_at: datetime | None
    redriven_as: UUID | None


class UserIn(BaseModel):
    """A user to add."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN)
    is_admin: bool = Field(
        default=False, description="A site admin sees and does everything."
    )


class MembershipOut(BaseModel):
    """A project you collaborate on, and your role in it."""

    project: str
    role: Role


class UserOut(BaseModel):
    id: UUID
    username: str
    is_admin: bool


class MeOut(UserOut):
    """You, with your projects (a site admin acts as owner of every project)."""

    projects: list[MembershipOut]


class PasswordIn(BaseModel):
    """A new password for signing in to the console."""

    model_config = ConfigDict(extra="forbid")

    new_password: str = Field(
        min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    )
    current_password: str | None = Field(
        default=None,
        max_length=PASSWORD_MAX_LENGTH,
        description="Needed to change your own password once you have one.",
    )


class TokenIn(BaseModel):
    """A token to issue: for yourself, or as a site admin for another user."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="What it is for.")
    username: str | None = Field(
        default=None, description="Whose token; default yours. Site admins only."
    )


class TokenOut(BaseModel):
    """A token as listed: never its secret."""

    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    """Updated at most once a minute."""


class TokenIssued(BaseModel):
    """A new token. ``token`` is shown this once; only its hash is kept."""

    id: str
    name: str
    username: str
    token: str
    created_at: datetime


class CollaboratorOut(BaseModel):
    username: str
    role: Role
    added_at: datetime


class CollaboratorIn(BaseModel):
    """A collaborator's role; the owner changes only by transfer."""

    model_config = ConfigDict(extra="forbid")

    role: Literal[Role.ADMIN, Role.EDITOR, Role.VIEWER]


class TransferIn(BaseModel):
    """Who becomes the project's owner; the previous owner becomes an admin."""

    model_config = ConfigDict(extra="forbid")

    username: str


class JobEnabledIn(BaseModel):
    """Whether a deployed job runs: false stops new runs of it, true resumes them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool


class CredentialOut(BaseModel):
    """A credential as the API shows it: names, never values."""

    name: str
    fields: list[str]
    updated_at: datetime
    updated_by: str | None
    """Who last wrote it; null for credentials written before this was kept."""


class AuditEventOut(BaseModel):
    """One change: who made it, what it was, and when."""

    id: int
    project_id: UUID | None
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    at: datetime


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_before: int | None
    """Pass as ``before`` to read the next, older page; null on the last page."""
