"""The runner's consumer loop: run requests in, run events out.

A batch of up to ``concurrency`` requests runs at once; its offsets are
committed only after every run's finished event is durable.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from confluent_kafka import Message as KafkaRecord
from pydantic import ValidationError

from services.runner.engine import Engine
from shared.events import RunFinished, RunRequest, RunStarted
from shared.kafka import EventProducer, Record
from shared.logging import get_logger
from shared.model import status_for_exit
from shared.topics import Topics

log = get_logger(__name__)


class Runner:
    """Executes run requests with an engine and reports what happened."""

    def __init__(
        self,
        engine: Engine,
        producer: EventProducer,
        topics: Topics,
        name: str,
        concurrency: int,
        timeout_s: float,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._topics = topics
        self._name = name
        self._timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="run"
        )

    def handle(self, records: Sequence[KafkaRecord]) -> None:
        requests = [request for record in records if (request := self._read(record))]
        for finished in self._pool.map(self._run, requests):
            self._producer.send(self._record(finished))
        self._producer.flush()

    def _read(self, record: KafkaRecord) -> RunRequest | None:
        try:
            return RunRequest.model_validate_json(record.value() or b"")
        except ValidationError as exc:
            log.error("run_request.unreadable", offset=record.offset(), error=str(exc))
            return None

    def _run(self, request: RunRequest) -> RunFinished:
        started = RunStarted(
            run_id=request.run_id,
            project_id=request.project_id,
            job_id=request.job.id,
            job_name=request.job.name,
            trigger=request.trigger,
            message_id=request.message_id,
            started_at=datetime.now(UTC),
            runner=self._name,
            input_state=request.input_state,
        )
        self._producer.send(self._record(started))
        execution = self._engine.execute(
            request.job, request.input_state, self._timeout_s
        )
        finished = RunFinished(
            **started.model_dump(exclude={"type", "input_state"}),
            finished_at=datetime.now(UTC),
            exit_code=execution.exit_code,
            status=status_for_exit(execution.exit_code),
            logs=execution.logs,
            final_state=execution.final_state,
            error=execution.error,
        )
        log.info(
            "run.finished",
            run_id=str(request.run_id),
            job=request.job.name,
            exit_code=execution.exit_code,
            duration_ms=round(
                (finished.finished_at - started.started_at).total_seconds() * 1000
            ),
        )
        return finished

    def _record(self, event: RunStarted | RunFinished) -> Record:
        return Record(
            topic=self._topics.run_events,
            key=event.run_id.bytes,
            value=event.model_dump_json().encode(),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
