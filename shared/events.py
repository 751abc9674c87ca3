"""What travels on the topics: messages, run requests and run events.

A message record's value is the request body exactly as received; everything
else about it rides in Kafka headers, so a record is never larger than the
body limit plus a small, bounded envelope. Run requests and events are JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.model import JsonObject, RunOrigin, RunStatus, TriggerKind

_MESSAGE_ID = "message-id"
_PROJECT_ID = "project-id"
_CONTENT_TYPE = "content-type"
_RECEIVED_AT = "received-at"
_HTTP_HEADERS = "http-headers"
_REVISION = "catalog-revision"
_REPROCESS_ID = "reprocess-id"

KafkaHeaders = (
    list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None
)


class Message(BaseModel):
    """A message received by a project's inbox."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    project_id: UUID
    received_at: datetime
    content_type: str
    headers: dict[str, str]
    body: bytes
    revision: int = 0
    """The deployment revision the gateway knew when it accepted the message."""
    reprocess_id: UUID | None = None
    """Set when an operator sends a stored message through matching again."""

    def to_kafka_headers(self) -> list[tuple[str, str | bytes | None]]:
        """Everything but the body, as Kafka record headers."""
        return [
            (_MESSAGE_ID, str(self.id).encode()),
            (_PROJECT_ID, str(self.project_id).encode()),
            (_CONTENT_TYPE, self.content_type.encode()),
            (_RECEIVED_AT, self.received_at.isoformat().encode()),
            (_HTTP_HEADERS, _HEADERS.dump_json(self.headers)),
            (_REVISION, str(self.revision).encode()),
            *(
                [(_REPROCESS_ID, str(self.reprocess_id).encode())]
                if self.reprocess_id
                else []
            ),
        ]

    @classmethod
    def from_kafka(cls, headers: KafkaHeaders, value: bytes | None) -> Message:
        """Rebuild a message from a record; raises ValueError if it is not one."""
        fields = {
            key: item.encode() if isinstance(item, str) else item or b""
            for key, item in (
                headers.items() if isinstance(headers, dict) else headers or []
            )
        }
        missing = {
            _MESSAGE_ID,
            _PROJECT_ID,
            _CONTENT_TYPE,
            _RECEIVED_AT,
        } - fields.keys()
        if missing:
            raise ValueError(f"message record lacks headers {sorted(missing)}")
        return cls(
            id=UUID(fields[_MESSAGE_ID].decode()),
            project_id=UUID(fields[_PROJECT_ID].decode()),
            content_type=fields[_CONTENT_TYPE].decode(),
            received_at=datetime.fromisoformat(fields[_RECEIVED_AT].decode()),
            headers=_HEADERS.validate_json(fields.get(_HTTP_HEADERS, b"{}")),
            body=value or b"",
            revision=int(fields.get(_REVISION, b"0")),
            reprocess_id=UUID(fields[_REPROCESS_ID].decode())
            if _REPROCESS_ID in fields
            else None,
        )


_HEADERS: TypeAdapter[dict[str, str]] = TypeAdapter(dict[str, str])


class JobSpec(BaseModel):
    """What a runner needs to know of a job to run it."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str
    version: str
    adaptor: str
    expression: str
    credential: str | None = None


class TriggerRef(BaseModel):
    """Which trigger caused a run."""

    model_config = ConfigDict(frozen=True)

    id: UUID | None
    name: str
    kind: TriggerKind


class RunRequest(BaseModel):
    """Ask a runner to run a job from an input state."""

    model_config = ConfigDict(frozen=True)

    run_id: UUID
    project_id: UUID
    job: JobSpec
    trigger: TriggerRef
    message_id: UUID | None
    input_state: JsonObject
    requested_at: datetime
    origin: RunOrigin = RunOrigin.MESSAGE
    attempt: int = Field(default=1, ge=1)
    """1 for a first run; a retry of a run counts on from that run's attempt."""
    chain_depth: int = Field(default=0, ge=0)
    """How many flow or catch steps led to this run."""
    retry_of: UUID | None = None


class _RunEventBase(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: UUID
    project_id: UUID
    job_id: UUID
    job_name: str
    trigger: TriggerRef
    message_id: UUID | None
    started_at: datetime
    runner: str
    origin: RunOrigin = RunOrigin.MESSAGE
    attempt: int = 1
    chain_depth: int = 0


class RunStarted(_RunEventBase):
    """A runner began a run."""

    type: Literal["started"] = "started"
    input_state: JsonObject


class LogLine(BaseModel):
    """One line a run wrote, with when it wrote it."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    message: str


class RunFinished(_RunEventBase):
    """A run ended, for better or worse."""

    type: Literal["finished"] = "finished"
    finished_at: datetime
    exit_code: int
    status: RunStatus
    logs: list[LogLine] = Field(default_factory=list)
    final_state: JsonObject | None = None
    error: str | None = None
    adaptor: str | None = None
    adaptor_version: str | None = None
    input_state: JsonObject | None = None
    """Set when a failed run has no final state, so a catch job can start from it."""


RunEvent = Annotated[RunStarted | RunFinished, Field(discriminator="type")]
RUN_EVENT: TypeAdapter[RunStarted | RunFinished] = TypeAdapter(RunEvent)


class DeadLetter(BaseModel):
    """A run that used up its retries, kept for an operator to send again."""

    model_config = ConfigDict(frozen=True)

    run_id: UUID
    project_id: UUID
    job_id: UUID
    job_name: str
    message_id: UUID | None
    trigger: TriggerRef
    input_state: JsonObject
    exit_code: int
    error: str | None
    attempts: int
    dead_at: datetime


_EVENT_TYPE = "event-type"


def run_event_headers(
    event: RunStarted | RunFinished,
) -> list[tuple[str, str | bytes | None]]:
    """Kafka headers of a run event, so consumers can skip kinds they ignore unread."""
    return [(_EVENT_TYPE, event.type.encode())]


def is_run_finished(headers: KafkaHeaders) -> bool:
    """True for a finished-run record, judged by its headers alone."""
    pairs = headers.items() if isinstance(headers, dict) else headers or []
    return any(
        key == _EVENT_TYPE and value in (b"finished", "finished")
        for key, value in pairs
    )
