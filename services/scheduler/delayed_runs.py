"""Sends run requests that waited in ``scheduled_runs`` for their back-off.

Due rows are locked with ``FOR UPDATE SKIP LOCKED``, sent, and deleted only
after the broker has acknowledged them, in one transaction. A replica that
dies in between leaves its rows to be sent again; a run id that arrives twice
is run once, thanks to run claims.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection
from pydantic import ValidationError

from services.scheduler import metrics
from services.scheduler.service import DELIVERY_TIMEOUT_S
from shared.events import RunRequest
from shared.kafka import EventProducer, Record
from shared.logging import get_logger
from shared.topics import Topics

log = get_logger(__name__)

_LOCK_DUE = """
SELECT run_id, request FROM scheduled_runs
WHERE due_at <= %s
ORDER BY due_at
LIMIT %s
FOR UPDATE SKIP LOCKED
"""


class DelayedRuns:
    """The scheduler's task for delayed runs: sends each once it is due."""

    name = "delayed_runs"

    def __init__(
        self, producer: EventProducer, topics: Topics, batch_size: int = 200
    ) -> None:
        self._producer = producer
        self._topics = topics
        self._batch_size = batch_size

    def run(self, conn: Connection[Any], now: datetime) -> int:
        """Send every request due at ``now``; returns how many were sent."""
        sent = 0
        while True:
            taken, batch_sent = self._send_batch(conn, now)
            sent += batch_sent
            if taken < self._batch_size:
                return sent

    def _send_batch(self, conn: Connection[Any], now: datetime) -> tuple[int, int]:
        """Send one batch of due requests; returns how many rows were taken and sent."""
        with conn.transaction():
            rows = conn.execute(_LOCK_DUE, (now, self._batch_size)).fetchall()
            requests = [r for row in rows if (r := _request(row)) is not None]
            if requests:
                self._producer.produce_all(
                    [self._record(r) for r in requests], DELIVERY_TIMEOUT_S
                )
            conn.execute(
                "DELETE FROM scheduled_runs WHERE run_id = ANY(%s)",
                ([row["run_id"] for row in rows],),
            )
        metrics.DELAYED_RUNS_SENT.inc(len(requests))
        for request in requests:
            log.info(
                "run.delay_over",
                run_id=str(request.run_id),
                job=request.job.name,
                attempt=request.attempt,
            )
        return len(rows), len(requests)

    def _record(self, request: RunRequest) -> Record:
        return Record(
            topic=self._topics.run_requests,
            key=request.run_id.bytes,
            value=request.model_dump_json().encode(),
        )


def _request(row: dict[str, Any]) -> RunRequest | None:
    """The stored request, or None (logged) if it is not one: it could never run."""
    try:
        return RunRequest.model_validate(row["request"])
    except ValidationError as exc:
        log.error("scheduled_run.unreadable", run_id=str(row["run_id"]), error=str(exc))
        return None
