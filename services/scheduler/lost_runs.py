"""Finds runs whose runner died, and reports each of them as lost, once.

A runner kills a run at its timeout, so a run that started longer ago than
the timeout plus a grace, and whose claim is still open, has lost its runner.
So has a run aborted longer ago than the abort grace: a live runner stops an
aborted run within a second or so. One statement closes such claims and
returns the runs; their ``RunFinished`` events (status ``lost``, exit code 4,
or, for a run with an abort request, ``aborted``, exit code 6, which is not
retried) are sent and the transaction commits once the broker has them. Rows
are taken with ``SKIP LOCKED``, so replicas share the work, and a closed claim
is never taken again: a redelivered request of a lost run is skipped by
runners. Retrying a lost run is the dispatcher's decision, made from its
finished event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection

from services.scheduler import metrics
from services.scheduler.service import DELIVERY_TIMEOUT_S
from shared.events import RunFinished, TriggerRef
from shared.kafka import EventProducer, Record
from shared.kafka.records import run_event_record
from shared.logging import get_logger
from shared.model import ExitCode, RunOrigin, RunStatus, TriggerKind, abort_error
from shared.topics import Topics

log = get_logger(__name__)

LOST_RUN_ERROR = "the runner running it stopped answering; the run is lost"

# Run start times come from the runners' clocks and claim times from the
# database's; both must be old enough, so neither a slow clock nor a claim
# taken long before the run started makes a live run look lost.
_MARK_LOST = """
WITH stale AS (
    SELECT c.run_id, a.requested_by FROM run_claims c JOIN runs r ON r.id = c.run_id
    LEFT JOIN run_aborts a ON a.run_id = c.run_id
    WHERE c.finished_at IS NULL AND r.finished_at IS NULL
      AND (greatest(c.claimed_at, r.started_at)
               < now() - make_interval(secs => %(after_s)s)
           OR a.requested_at < now() - make_interval(secs => %(abort_after_s)s))
    ORDER BY c.claimed_at
    LIMIT %(limit)s
    FOR UPDATE OF c SKIP LOCKED
)
UPDATE run_claims c SET finished_at = now(), lost = stale.requested_by IS NULL
FROM stale, runs r LEFT JOIN triggers t ON t.id = r.trigger_id
WHERE c.run_id = stale.run_id AND r.id = c.run_id
RETURNING c.run_id, c.runner, c.finished_at, r.project_id, r.job_id, r.job_name,
    r.trigger_id, coalesce(t.name, '') AS trigger_name, r.trigger_kind,
    r.message_id, r.origin, r.attempt, r.chain_depth, r.input_state,
    coalesce(r.started_at, c.claimed_at) AS started_at, stale.requested_by
"""

# A runner that reported a finish and died before closing its claim: the run
# is recorded as finished, so the claim only needs closing.
_CLOSE_FINISHED = """
UPDATE run_claims c SET finished_at = now()
FROM runs r
WHERE r.id = c.run_id AND c.finished_at IS NULL AND r.finished_at IS NOT NULL
  AND c.claimed_at < now() - make_interval(secs => %s)
RETURNING c.run_id
"""


class LostRuns:
    """The scheduler's task for lost runs: reports each as finished with ``lost``."""

    name = "lost_runs"

    def __init__(
        self,
        producer: EventProducer,
        topics: Topics,
        lost_after_s: float,
        abort_after_s: float = 30.0,
        batch_size: int = 200,
    ) -> None:
        self._producer = producer
        self._topics = topics
        self._lost_after_s = lost_after_s
        self._abort_after_s = abort_after_s
        self._batch_size = batch_size

    def run(self, conn: Connection[Any], now: datetime) -> int:
        """Report every lost run; returns how many were found.

        ``now`` is not used: claims and their age are the database's clock.
        """
        self._close_finished(conn)
        lost = 0
        while True:
            found = self._report_batch(conn)
            lost += found
            if found < self._batch_size:
                return lost

    def _report_batch(self, conn: Connection[Any]) -> int:
        with conn.transaction():
            rows = conn.execute(
                _MARK_LOST,
                {
                    "after_s": self._lost_after_s,
                    "abort_after_s": self._abort_after_s,
                    "limit": self._batch_size,
                },
            ).fetchall()
            events = [_lost_event(row) for row in rows]
            if events:
                self._producer.produce_all(
                    [self._record(e) for e in events], DELIVERY_TIMEOUT_S
                )
        metrics.RUNS_LOST.inc(sum(e.status is RunStatus.LOST for e in events))
        for event in events:
            log.warning(
                f"run.{event.status}",
                run_id=str(event.run_id),
                job=event.job_name,
                runner=event.runner,
                started_at=event.started_at.isoformat(),
                attempt=event.attempt,
            )
        return len(events)

    def _close_finished(self, conn: Connection[Any]) -> None:
        for row in conn.execute(_CLOSE_FINISHED, (self._lost_after_s,)).fetchall():
            log.info("claim.closed_after_finish", run_id=str(row["run_id"]))

    def _record(self, event: RunFinished) -> Record:
        return run_event_record(self._topics, event)


def _lost_event(row: dict[str, Any]) -> RunFinished:
    if row["requested_by"] is None:
        exit_code, status, error = ExitCode.UNRESPONSIVE, RunStatus.LOST, LOST_RUN_ERROR
    else:
        exit_code, status = ExitCode.ABORTED, RunStatus.ABORTED
        error = f"{abort_error(row['requested_by'])}; its runner did not answer"
    return RunFinished(
        run_id=row["run_id"],
        project_id=row["project_id"],
        job_id=row["job_id"],
        job_name=row["job_name"],
        trigger=TriggerRef(
            id=row["trigger_id"],
            name=row["trigger_name"],
            kind=TriggerKind(row["trigger_kind"]),
        ),
        message_id=row["message_id"],
        started_at=row["started_at"],
        runner=row["runner"],
        origin=RunOrigin(row["origin"]),
        attempt=row["attempt"],
        chain_depth=row["chain_depth"],
        finished_at=row["finished_at"],
        exit_code=exit_code,
        status=status,
        error=error,
        input_state=row["input_state"],
    )
