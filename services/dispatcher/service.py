"""The dispatcher's consumer loop.

Messages in: run requests for the message-filter triggers they match. Finished
runs in: a retry or a dead letter when the run failed for a reason worth
trying again, otherwise the flow (on success) or catch (on failure) runs
that follow it. Every run for a message first passes the 10-second gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message as KafkaRecord
from psycopg import Connection
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from services.dispatcher import follow_up, metrics
from services.dispatcher.planning import plan_chained_runs, plan_message_runs
from shared.bodies import body_kind, parse_body
from shared.catalog import ProjectCatalog
from shared.errors import PlatformError
from shared.events import (
    RUN_EVENT,
    DeadLetter,
    Message,
    RunFinished,
    RunRequest,
    is_run_finished,
)
from shared.kafka import EventProducer, Record
from shared.logging import get_logger
from shared.model import Project, RunStatus
from shared.retries import RetryPolicy
from shared.run_gate import pass_gate
from shared.topics import Topics

log = get_logger(__name__)

_CATALOG_MISS_INTERVAL_S = 1.0


@dataclass(frozen=True)
class DispatchRules:
    """The dispatcher's tunables, from its settings."""

    gate_window_s: float
    chain_max_depth: int
    retry_policy: RetryPolicy


class Dispatcher:
    """Turns messages and finished runs into the runs they ask for."""

    def __init__(
        self,
        catalog: ProjectCatalog,
        producer: EventProducer,
        pool: ConnectionPool[Connection[Any]],
        topics: Topics,
        rules: DispatchRules,
    ) -> None:
        self._catalog = catalog
        self._producer = producer
        self._pool = pool
        self._topics = topics
        self._rules = rules

    def handle(self, records: Sequence[KafkaRecord]) -> None:
        """Act on a batch and wait until everything it asked for is durable."""
        out: list[Record] = []
        with self._pool.connection() as conn:
            for record in records:
                if record.topic() == self._topics.messages:
                    out.extend(self._follow_message(conn, record))
                elif is_run_finished(record.headers()):
                    out.extend(self._follow_run(conn, record))
        if out:
            self._producer.produce_all(out)

    def _follow_message(
        self, conn: Connection[Any], record: KafkaRecord
    ) -> list[Record]:
        try:
            message = Message.from_kafka(record.headers(), record.value())
            body = parse_body(body_kind(message.content_type), message.body)
        except (ValueError, PlatformError) as exc:
            log.error("message.unreadable", offset=record.offset(), error=str(exc))
            return []
        if self._catalog.snapshot.revision < message.revision:
            self._catalog.reload()
        project = self._project(message.project_id)
        if project is None:
            log.warning("message.project_unknown", message_id=str(message.id))
            return []
        requests = plan_message_runs(
            project, message.id, body, datetime.now(UTC), message.reprocess_id
        )
        log.debug("message.matched", message_id=str(message.id), runs=len(requests))
        metrics.MESSAGES.labels("matched" if requests else "unmatched").inc()
        return self._requested(conn, requests)

    def _follow_run(self, conn: Connection[Any], record: KafkaRecord) -> list[Record]:
        try:
            event = RUN_EVENT.validate_json(record.value() or b"")
        except ValidationError as exc:
            log.error("run_event.unreadable", offset=record.offset(), error=str(exc))
            return []
        if not isinstance(event, RunFinished):
            return []
        project = self._project(event.project_id)
        if project is None:
            return []
        out: list[Record] = []
        if event.status is not RunStatus.SUCCEEDED:
            decision = follow_up.decide(event, project, self._rules.retry_policy)
            if decision.retry:
                delay_s = decision.delay_s
                if event.message_id is not None:
                    # A retry is a run of the same pair: it waits out the gate.
                    delay_s = max(delay_s, self._rules.gate_window_s)
                follow_up.schedule_retry(conn, event, project, delay_s)
                metrics.RETRIES_SCHEDULED.inc()
                return []
            if decision.dead_letter:
                out.append(self._dead_letter_record(follow_up.dead_letter(conn, event)))
                metrics.DEAD_LETTERS.inc()
        chained = plan_chained_runs(project, event, datetime.now(UTC))
        if chained and event.chain_depth + 1 > self._rules.chain_max_depth:
            log.error(
                "run.chain_too_deep",
                run_id=str(event.run_id),
                job=event.job_name,
                depth=event.chain_depth + 1,
                max_depth=self._rules.chain_max_depth,
            )
            return out
        return out + self._requested(conn, chained)

    def _requested(
        self, conn: Connection[Any], requests: list[RunRequest]
    ) -> list[Record]:
        """Records of the requests that pass the 10-second gate."""
        records: list[Record] = []
        for request in requests:
            if request.message_id is not None:
                verdict = pass_gate(
                    conn,
                    request.message_id,
                    request.job.id,
                    request.run_id,
                    self._rules.gate_window_s,
                )
                if not verdict.allowed:
                    log.warning(
                        "run.refused_by_gate",
                        message_id=str(request.message_id),
                        job=request.job.name,
                        origin=request.origin.value,
                        retry_after_s=round(verdict.retry_after_s, 1),
                    )
                    metrics.RUNS_REFUSED.labels(request.origin.value).inc()
                    continue
            metrics.RUN_REQUESTS.labels(request.origin.value).inc()
            records.append(
                Record(
                    topic=self._topics.run_requests,
                    key=request.run_id.bytes,
                    value=request.model_dump_json().encode(),
                )
            )
        return records

    def _dead_letter_record(self, letter: DeadLetter) -> Record:
        return Record(
            topic=self._topics.dead_letters,
            key=letter.run_id.bytes,
            value=letter.model_dump_json().encode(),
        )

    def _project(self, project_id: Any) -> Project | None:
        project = self._catalog.project(project_id)
        if project is None:
            self._catalog.reload(_CATALOG_MISS_INTERVAL_S)
            project = self._catalog.project(project_id)
        return project
