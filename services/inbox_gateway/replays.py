"""The webhook ids the gateways have accepted, shared in PostgreSQL.

A signed request may be sent again by whoever saw it until its timestamp
leaves the tolerance window. Remembering accepted ids in PostgreSQL, rather
than in one process, refuses such a replay whichever gateway replica it
reaches. The work runs on a few threads of its own, so a slow database holds
up signed requests only, never other inboxes.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from uuid import UUID

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from shared.logging import get_logger

log = get_logger(__name__)

_PRUNE_INTERVAL_S = 60.0


class ReplayGuard:
    """Records webhook ids once per project until they expire.

    Rows are pruned ``prune_margin_s`` after they expire, so that replicas
    whose clocks differ a little never drop an id another still needs.
    """

    def __init__(
        self, database_url: str, size: int, timeout_s: float, prune_margin_s: float
    ) -> None:
        self._timeout_s = timeout_s
        self._prune_margin_s = prune_margin_s
        self._executor = ThreadPoolExecutor(size, thread_name_prefix="replays")
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            database_url,
            min_size=1,
            max_size=size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            configure=self._configure,
            name="inbox-replays",
            open=False,
        )
        self._pruned_at = 0.0

    def open(self) -> ReplayGuard:
        """Start connecting in the background; the gateway starts without waiting."""
        self._pool.open(wait=False)
        return self

    def close(self) -> None:
        self._pool.close()
        self._executor.shutdown(wait=False)

    async def remember(self, project_id: UUID, webhook_id: str, until_s: float) -> bool:
        """Record a webhook id; False if it is already recorded and not expired.

        Raises:
            psycopg.Error: PostgreSQL did not answer within the timeout.
        """
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._remember, project_id, webhook_id, until_s
        )

    async def forget(self, project_id: UUID, webhook_id: str) -> None:
        """Drop a webhook id whose message was not stored, so a retry passes."""
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self._forget, project_id, webhook_id
            )
        except psycopg.Error as exc:
            log.warning(
                "inbox.replay_not_forgotten",
                project_id=str(project_id),
                webhook_id=webhook_id,
                error=str(exc),
            )

    def _configure(self, conn: psycopg.Connection[DictRow]) -> None:
        timeout_ms = int(self._timeout_s * 1000)
        conn.execute(f"SET statement_timeout = {timeout_ms}")

    def _remember(self, project_id: UUID, webhook_id: str, until_s: float) -> bool:
        now = datetime.now(UTC)
        with self._pool.connection(timeout=self._timeout_s) as conn:
            # An expired row left for the pruner does not count as a replay.
            row = conn.execute(
                "INSERT INTO inbox_replays (project_id, webhook_id, expires_at)"
                " VALUES (%s, %s, %s)"
                " ON CONFLICT (project_id, webhook_id) DO UPDATE"
                " SET expires_at = EXCLUDED.expires_at"
                " WHERE inbox_replays.expires_at < %s RETURNING 1 AS new",
                (project_id, webhook_id, datetime.fromtimestamp(until_s, UTC), now),
            ).fetchone()
            if time.monotonic() - self._pruned_at > _PRUNE_INTERVAL_S:
                self._pruned_at = time.monotonic()
                conn.execute(
                    "DELETE FROM inbox_replays WHERE expires_at < %s",
                    (
                        datetime.fromtimestamp(
                            now.timestamp() - self._prune_margin_s, UTC
                        ),
                    ),
                )
        return row is not None

    def _forget(self, project_id: UUID, webhook_id: str) -> None:
        with self._pool.connection(timeout=self._timeout_s) as conn:
            conn.execute(
                "DELETE FROM inbox_replays WHERE project_id = %s AND webhook_id = %s",
                (project_id, webhook_id),
            )
