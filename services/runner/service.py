"""The runner's consumer loop: run requests in, run events out.

Up to ``concurrency`` runs go at once. Each record's offset is committed only
when it and every earlier record of its partition have finished, that is,
when their finished events are acknowledged by the broker. A run is claimed
in PostgreSQL before it starts, so a redelivered request of a finished run is
not run again. When Vault or the broker is unavailable the run waits and
tries again; such an outage is never reported as the job's failure. Each run
executes with an abort switch that :mod:`services.runner.aborts` pulls when an
admin aborts the run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka import Message as KafkaRecord
from psycopg_pool import PoolTimeout
from pydantic import ValidationError

from services.runner import metrics
from services.runner.aborts import AbortSwitch, RunningRuns
from services.runner.claims import Claim, ClaimStore
from services.runner.credentials import CredentialSource
from services.runner.engine import Engine, Execution
from services.runner.offsets import OffsetTracker
from shared.errors import PlatformError
from shared.events import RunFinished, RunRequest, RunStarted
from shared.kafka import EventProducer, Record
from shared.kafka.metrics import POLL_AGE, LagReporter
from shared.kafka.records import run_event_record
from shared.logging import get_logger
from shared.model import ExitCode, status_for_exit
from shared.topics import Topics
from shared.vault import CredentialNotFoundError

log = get_logger(__name__)

T = TypeVar("T")

_COMMIT_INTERVAL_S = 0.2


class StoppingError(Exception):
    """The runner is shutting down while a run waited; it is left for redelivery."""


@dataclass(frozen=True)
class RunnerConfig:
    """The runner's tunables, from its settings."""

    name: str
    group: str
    concurrency: int
    timeout_s: float
    retry_max_backoff_s: float


class Runner:
    """Consumes run requests and executes them with an engine."""

    def __init__(
        self,
        config: RunnerConfig,
        consumer: Consumer,
        engine: Engine,
        producer: EventProducer,
        claims: ClaimStore,
        credentials: CredentialSource,
        topics: Topics,
    ) -> None:
        self._config = config
        self._consumer = consumer
        self._engine = engine
        self._producer = producer
        self._claims = claims
        self._credentials = credentials
        self._topics = topics
        self._offsets = OffsetTracker()
        self._finished: queue.Queue[tuple[tuple[str, int], int]] = queue.Queue()
        self._pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="run")
        self._stop = threading.Event()
        self._paused = False
        self._assigned = threading.Event()
        self._lag = LagReporter(consumer, config.group)
        self.running = RunningRuns()
        self.last_poll_monotonic = time.monotonic()

    @property
    def has_joined(self) -> bool:
        """True once the group has assigned this runner its partitions."""
        return self._assigned.is_set()

    def poll_age_s(self) -> float:
        """Seconds since the poll loop last turned."""
        age = time.monotonic() - self.last_poll_monotonic
        POLL_AGE.labels(self._config.group).set(age)
        return age

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, then finish the runs under way."""
        self._stop = stop
        self._consumer.subscribe(
            [self._topics.run_requests],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
        )
        last_commit = 0.0
        try:
            while not stop.is_set():
                self._collect_finished()
                if time.monotonic() - last_commit > _COMMIT_INTERVAL_S:
                    self._commit()
                    last_commit = time.monotonic()
                self._throttle()
                record = self._consumer.poll(0.1)
                self.last_poll_monotonic = time.monotonic()
                self._lag.maybe_report()
                if record is not None and record.error() is None:
                    self._start(record)
        finally:
            self._pool.shutdown(wait=True)
            self._collect_finished()
            self._commit()
            self._consumer.close()

    def _start(self, record: KafkaRecord) -> None:
        partition = (record.topic() or "", record.partition() or 0)
        offset = record.offset() or 0
        self._offsets.received(partition, offset)
        future = self._pool.submit(self._process, record)
        future.add_done_callback(lambda _f: self._finished.put((partition, offset)))

    def _collect_finished(self) -> None:
        while True:
            try:
                partition, offset = self._finished.get_nowait()
            except queue.Empty:
                return
            self._offsets.finished(partition, offset)

    def _throttle(self) -> None:
        """Pause fetching while every run slot is busy, resume when one frees."""
        full = self._offsets.in_flight >= self._config.concurrency
        if full != self._paused:
            assignment = self._consumer.assignment()
            (self._consumer.pause if full else self._consumer.resume)(assignment)
            self._paused = full

    def _commit(self, only: set[tuple[str, int]] | None = None) -> None:
        positions = self._offsets.committable()
        offsets = [
            TopicPartition(topic, partition, position)
            for (topic, partition), position in positions.items()
            if only is None or (topic, partition) in only
        ]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning(
                "offset.commit_failed", group=self._config.group, error=str(exc)
            )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned.set()
        if self._paused:
            consumer.pause(partitions)
        log.info(
            "partitions.assigned", group=self._config.group, partitions=len(partitions)
        )

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(p.topic, p.partition) for p in partitions}
        self._collect_finished()
        self._commit(only=revoked)
        self._offsets.forget(revoked)
        log.info(
            "partitions.revoked", group=self._config.group, partitions=len(partitions)
        )

    def _process(self, record: KafkaRecord) -> None:
        try:
            request = RunRequest.model_validate_json(record.value() or b"")
        except ValidationError as exc:
            log.error("run_request.unreadable", offset=record.offset(), error=str(exc))
            return
        try:
            if self._take(request):
                with self.running.running(request.run_id) as abort:
                    self._execute(request, abort)
        except StoppingError:
            self._claims.release(request.run_id)

    def _take(self, request: RunRequest) -> bool:
        """Claim the run; wait while another runner holds it; False if it finished."""
        backoff_s = 1.0
        while True:
            claim = self._retrying(lambda: self._claims.claim(request.run_id), "claim")
            if claim is Claim.TAKEN:
                return True
            if claim is Claim.FINISHED:
                log.info("run.already_finished", run_id=str(request.run_id))
                return False
            if self._stop.wait(backoff_s):
                raise StoppingError
            backoff_s = min(backoff_s * 2, self._config.retry_max_backoff_s)

    def _execute(self, request: RunRequest, abort: AbortSwitch) -> None:
        credential, problem = self._credential_for(request)
        started = RunStarted(
            run_id=request.run_id,
            project_id=request.project_id,
            job_id=request.job.id,
            job_name=request.job.name,
            trigger=request.trigger,
            message_id=request.message_id,
            started_at=datetime.now(UTC),
            runner=self._config.name,
            origin=request.origin,
            attempt=request.attempt,
            chain_depth=request.chain_depth,
            input_state=request.input_state,
        )
        self._producer.send(self._record(started))
        metrics.RUNS_STARTED.inc()
        with metrics.RUNS_IN_PROGRESS.track_inprogress():
            execution = problem or self._run_job(request, credential, abort)
        finished = RunFinished(
            **started.model_dump(exclude={"type", "input_state"}),
            finished_at=datetime.now(UTC),
            exit_code=execution.exit_code,
            status=status_for_exit(execution.exit_code),
            logs=execution.logs,
            final_state=execution.final_state,
            error=execution.error,
            adaptor=execution.adaptor,
            adaptor_version=execution.adaptor_version,
            # A retry starts again from it, a catch job when no state was left.
            input_state=request.input_state if execution.exit_code != 0 else None,
        )
        self._retrying(lambda: self._producer.deliver(self._record(finished)), "report")
        self._retrying(lambda: self._claims.finish(request.run_id), "claim")
        duration_s = (finished.finished_at - started.started_at).total_seconds()
        metrics.RUNS_FINISHED.labels(str(execution.exit_code)).inc()
        metrics.RUN_DURATION.observe(duration_s)
        log.info(
            "run.finished",
            run_id=str(request.run_id),
            job=request.job.name,
            exit_code=execution.exit_code,
            duration_ms=round(duration_s * 1000),
        )

    def _credential_for(
        self, request: RunRequest
    ) -> tuple[dict[str, Any] | None, Execution | None]:
        """The run's credential, or the failed execution that its absence means."""
        name = request.job.credential
        if name is None:
            return None, None
        try:
            credential = self._retrying(
                lambda: self._credentials.get(request.project_id, name), "credential"
            )
        except CredentialNotFoundError as exc:
            return None, _failed(request, ExitCode.CORE_ERROR, str(exc))
        return credential, None

    def _run_job(
        self,
        request: RunRequest,
        credential: dict[str, Any] | None,
        abort: AbortSwitch,
    ) -> Execution:
        try:
            return self._engine.execute(
                request.job,
                request.input_state,
                self._config.timeout_s,
                credential,
                abort,
            )
        except (OSError, PlatformError) as exc:
            log.error("run.not_started", run_id=str(request.run_id), error=str(exc))
            return _failed(
                request, ExitCode.FAILED_TO_START, f"the run could not start: {exc}"
            )

    def _retrying(self, action: Callable[[], T], what: str) -> T:
        """Run ``action`` until it succeeds, backing off while its service is down."""
        backoff_s = 0.5
        while True:
            try:
                return action()
            except PlatformError as exc:
                if not exc.retriable:
                    raise
                log.warning(f"{what}.retrying", error=str(exc), backoff_s=backoff_s)
            except (OSError, psycopg.OperationalError, PoolTimeout) as exc:
                log.warning(f"{what}.retrying", error=str(exc), backoff_s=backoff_s)
            if self._stop.wait(backoff_s):
                raise StoppingError
            backoff_s = min(backoff_s * 2, self._config.retry_max_backoff_s)

    def _record(self, event: RunStarted | RunFinished) -> Record:
        return run_event_record(self._topics, event)


def _failed(request: RunRequest, code: ExitCode, error: str) -> Execution:
    return Execution(
        exit_code=code,
        final_state=None,
        logs=[],
        error=error,
        adaptor=request.job.adaptor,
        adaptor_version="",
    )
