"""The 10-second rule: a message/job pair creates at most one run per window.

Every path that creates a run for a message passes the gate: trigger
matching, flow and catch, re-runs, reprocessing and retries. The same run
asked for again (a redelivery) always passes, so the rule never turns
at-least-once delivery into a lost run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

DEFAULT_WINDOW_S = 10.0


@dataclass(frozen=True)
class GateVerdict:
    """Whether a run may be created, and if not, when to ask again."""

    allowed: bool
    retry_after_s: float = 0.0


def judge(
    last_run_id: UUID | None,
    last_opened_at: datetime | None,
    run_id: UUID,
    now: datetime,
    window_s: float,
) -> GateVerdict:
    """Decide from the pair's last run whether ``run_id`` may be created at ``now``."""
    if last_run_id is None or last_opened_at is None or last_run_id == run_id:
        return GateVerdict(allowed=True)
    elapsed_s = (now - last_opened_at).total_seconds()
    if elapsed_s >= window_s:
        return GateVerdict(allowed=True)
    return GateVerdict(allowed=False, retry_after_s=window_s - elapsed_s)


def pass_gate(
    conn: Connection[Any], message_id: UUID, job_id: UUID, run_id: UUID, window_s: float
) -> GateVerdict:
    """Open the pair's gate for ``run_id`` if the rule allows, in one transaction."""
    with conn.transaction():
        # The pair may have no row yet, so lock the pair itself.
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))",
            (f"{message_id}/{job_id}",),
        )
        # Always one row: the pair's gate, or NULLs when it has none yet.
        row = conn.execute(
            "SELECT g.run_id, g.opened_at, now() AS now FROM (SELECT 1) AS one"
            " LEFT JOIN run_gate g ON g.message_id = %s AND g.job_id = %s",
            (message_id, job_id),
        ).fetchone()
        assert row is not None
        verdict = judge(row["run_id"], row["opened_at"], run_id, row["now"], window_s)
        if verdict.allowed and row["run_id"] != run_id:
            conn.execute(
                "INSERT INTO run_gate (message_id, job_id, run_id, opened_at)"
                " VALUES (%s, %s, %s, now()) ON CONFLICT (message_id, job_id)"
                " DO UPDATE SET run_id = EXCLUDED.run_id,"
                " opened_at = EXCLUDED.opened_at",
                (message_id, job_id, run_id),
            )
    return verdict
