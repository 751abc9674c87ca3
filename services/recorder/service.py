"""The recorder's consumer loop: one PostgreSQL transaction per batch of records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message as KafkaRecord
from psycopg import Connection
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from services.recorder.metrics import EVENT_DELAY, EVENTS_APPLIED
from services.recorder.store import apply_run_events, message_row, store_messages
from shared.db.connection import notify_activity
from shared.errors import PlatformError
from shared.events import RUN_EVENT, Message, RunFinished, RunStarted
from shared.logging import get_logger
from shared.topics import Topics

log = get_logger(__name__)


class Recorder:
    """Stores each batch of messages and run events in one transaction."""

    def __init__(self, pool: ConnectionPool[Connection[Any]], topics: Topics) -> None:
        self._pool = pool
        self._topics = topics

    def handle(self, records: Sequence[KafkaRecord]) -> None:
        messages: list[tuple[Any, ...]] = []
        events: list[RunStarted | RunFinished] = []
        for record in records:
            if record.topic() == self._topics.messages:
                row = self._message_row(record)
                if row is not None:
                    messages.append(row)
            else:
                event = self._run_event(record)
                if event is not None:
                    events.append(event)
        with self._pool.connection() as conn, conn.transaction():
            store_messages(conn, messages)
            apply_run_events(conn, events)
            # Open console pages of these projects fetch themselves again.
            notify_activity(
                conn, [row[1] for row in messages] + [e.project_id for e in events]
            )
        _observe(messages, events)

    def _message_row(self, record: KafkaRecord) -> tuple[Any, ...] | None:
        try:
            return message_row(Message.from_kafka(record.headers(), record.value()))
        except (ValueError, PlatformError) as exc:
            log.error("message.unreadable", offset=record.offset(), error=str(exc))
            return None

    def _run_event(self, record: KafkaRecord) -> RunStarted | RunFinished | None:
        try:
            return RUN_EVENT.validate_json(record.value() or b"")
        except ValidationError as exc:
            log.error("run_event.unreadable", offset=record.offset(), error=str(exc))
            return None


def _observe(
    messages: list[tuple[Any, ...]], events: list[RunStarted | RunFinished]
) -> None:
    """Count what was applied and how long after it happened."""
    now = datetime.now(UTC)
    for row in messages:
        EVENTS_APPLIED.labels("message").inc()
        EVENT_DELAY.labels("message").observe((now - row[2]).total_seconds())
    for event in events:
        if isinstance(event, RunFinished):
            kind, at = "run_finished", event.finished_at
            log.debug(
                "run.recorded", run_id=str(event.run_id), status=event.status.value
            )
        else:
            kind, at = "run_started", event.started_at
        EVENTS_APPLIED.labels(kind).inc()
        EVENT_DELAY.labels(kind).observe((now - at).total_seconds())
