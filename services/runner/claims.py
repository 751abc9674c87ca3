"""Run claims in PostgreSQL: which runner has taken a run, and whether it finished.

A run request can be delivered again (a rebalance, a commit lost); the claim
makes sure a run that finished is not run again, and that a run another
runner is working on is left to it. A runner renews its open claims on a
heartbeat. If it dies after its run's start was recorded, the scheduler marks
the run lost (which finishes the claim) and a retry runs it under a new id. If
it dies before that, no start exists to be declared lost: once its heartbeat
is older than ``stale_s``, the runner that receives the request again takes
the claim over and runs it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.runner import metrics
from shared.logging import get_logger

log = get_logger(__name__)

_CLAIM = """
INSERT INTO run_claims (run_id, runner, claimed_at, heartbeat_at)
VALUES (%s, %s, now(), now())
ON CONFLICT (run_id) DO UPDATE SET claimed_at = now(), heartbeat_at = now()
WHERE run_claims.finished_at IS NULL AND run_claims.runner = EXCLUDED.runner
RETURNING run_id
"""

# The claim of a runner that stopped renewing it, on a run with no recorded
# start. A recorded start is left to the scheduler's lost-run check, which
# finishes the claim and has the run retried.
_TAKE_OVER = """
WITH held AS (
    SELECT run_id, runner FROM run_claims
    WHERE run_id = %(run)s AND finished_at IS NULL AND runner <> %(runner)s
      AND heartbeat_at < now() - make_interval(secs => %(stale_s)s)
      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = %(run)s)
    FOR UPDATE
)
UPDATE run_claims c
SET runner = %(runner)s, claimed_at = now(), heartbeat_at = now()
FROM held WHERE c.run_id = held.run_id
RETURNING held.runner AS previous
"""


class Claim(StrEnum):
    """What a runner may do with a run it received."""

    TAKEN = "taken"
    FINISHED = "finished"
    ELSEWHERE = "elsewhere"


class ClaimStore:
    """Claims of one runner."""

    def __init__(
        self,
        pool: ConnectionPool[Connection[Any]],
        runner: str,
        stale_s: float = 60.0,
    ) -> None:
        self._pool = pool
        self._runner = runner
        self._stale_s = stale_s

    def claim(self, run_id: UUID) -> Claim:
        """Take the run unless it finished or a live runner holds it."""
        with self._pool.connection() as conn:
            taken = conn.execute(_CLAIM, (run_id, self._runner)).fetchone()
            if taken is not None:
                return Claim.TAKEN
            row = conn.execute(
                "SELECT finished_at FROM run_claims WHERE run_id = %s", (run_id,)
            ).fetchone()
            if row is not None and row["finished_at"] is not None:
                return Claim.FINISHED
            over = conn.execute(
                _TAKE_OVER,
                {"run": run_id, "runner": self._runner, "stale_s": self._stale_s},
            ).fetchone()
        if over is None:
            return Claim.ELSEWHERE
        metrics.CLAIMS_TAKEN_OVER.inc()
        log.warning(
            "run.claim_taken_over",
            run_id=str(run_id),
            previous_runner=over["previous"],
            runner=self._runner,
        )
        return Claim.TAKEN

    def renew(self) -> int:
        """Renew every open claim of this runner; returns how many there are."""
        with self._pool.connection() as conn:
            renewed = conn.execute(
                "UPDATE run_claims SET heartbeat_at = now()"
                " WHERE runner = %s AND finished_at IS NULL",
                (self._runner,),
            )
            return renewed.rowcount

    def finish(self, run_id: UUID) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE run_claims SET finished_at = now() WHERE run_id = %s", (run_id,)
            )

    def release(self, run_id: UUID) -> None:
        """Give back a run this runner will not finish, for another to take at once."""
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM run_claims WHERE run_id = %s AND runner = %s"
                " AND finished_at IS NULL",
                (run_id, self._runner),
            )
