"""The shapes of the API's answers, which the OpenAPI document shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.model import JobState, RunStatus, TriggerKind


class ErrorBody(BaseModel):
    """Every error answer has this shape."""

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
