"""Run claims in PostgreSQL: which runner has taken a run, and whether it finished.

A run request can be delivered again (a rebalance, a commit lost); the claim
makes sure a run that finished is not run again, and that a run another
runner is working on is left to it. If that runner died, the scheduler marks
the run lost (which finishes the claim) and a retry runs it under a new id.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg_pool import ConnectionPool

_CLAIM = """
INSERT INTO run_claims (run_id, runner, claimed_at) VALUES (%s, %s, now())
ON CONFLICT (run_id) DO UPDATE SET claimed_at = now()
WHERE run_claims.finished_at IS NULL AND run_claims.runner = EXCLUDED.runner
RETURNING run_id
"""


class Claim(StrEnum):
    """What a runner may do with a run it received."""

    TAKEN = "taken"
    FINISHED = "finished"
    ELSEWHERE = "elsewhere"


class ClaimStore:
    """Claims of one runner."""

    def __init__(self, pool: ConnectionPool[Connection[Any]], runner: str) -> None:
        self._pool = pool
        self._runner = runner

    def claim(self, run_id: UUID) -> Claim:
        """Take the run unless it finished or another runner holds it."""
        with self._pool.connection() as conn:
            taken = conn.execute(_CLAIM, (run_id, self._runner)).fetchone()
            if taken is not None:
                return Claim.TAKEN
            row = conn.execute(
                "SELECT finished_at FROM run_claims WHERE run_id = %s", (run_id,)
            ).fetchone()
        if row is not None and row["finished_at"] is not None:
            return Claim.FINISHED
        return Claim.ELSEWHERE

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
