"""The webhook ids the gateways have accepted, shared in PostgreSQL.

A signed request may be sent again until its timestamp leaves the tolerance
window: by its sender, retrying after a lost answer, or by whoever saw it.
Remembering accepted ids in PostgreSQL, rather than in one process, catches
such a repeat whichever gateway replica it reaches, and it is answered as the
first delivery was, with no second message. The work runs on a few threads of
its own, so a slow database holds up signed requests only, never other inboxes.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from shared.logging import get_logger

log = get_logger(__name__)

_PRUNE_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Sighting:
    """What the gateways know of a webhook id.

    Attributes:
        first: No live record of it existed; it is recorded now.
        message_id: For a repeat, the message the first delivery created.
        stored: For a repeat, whether the broker acknowledged that message.
    """

    first: bool
    message_id: UUID | None = None
    stored: bool = False


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

    async def remember(
        self, project_id: UUID, webhook_id: str, until_s: float, message_id: UUID
    ) -> Sighting:
        """Record a webhook id for ``message_id``, unless a live record exists.

        Raises:
            psycopg.Error: PostgreSQL did not answer within the timeout.
        """
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._remember, project_id, webhook_id, until_s, message_id
        )

    async def stored(self, project_id: UUID, webhook_id: str) -> None:
        """Note that the webhook id's message is acknowledged by the broker."""
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self._stored, project_id, webhook_id
            )
        except psycopg.Error as exc:
            # A repeat is then asked to come back later, until the record
            # expires: at worst one more copy of the message, never none.
            log.warning(
                "inbox.replay_not_marked_stored",
                project_id=str(project_id),
                webhook_id=webhook_id,
                error=str(exc),
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

    def _remember(
        self, project_id: UUID, webhook_id: str, until_s: float, message_id: UUID
    ) -> Sighting:
        now = datetime.now(UTC)
        with self._pool.connection(timeout=self._timeout_s) as conn:
            # An expired row left for the pruner does not count as a repeat.
            row = conn.execute(
                "INSERT INTO inbox_replays"
                " (project_id, webhook_id, expires_at, message_id)"
                " VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (project_id, webhook_id) DO UPDATE"
                " SET expires_at = EXCLUDED.expires_at,"
                " message_id = EXCLUDED.message_id, stored_at = NULL"
                " WHERE inbox_replays.expires_at < %s RETURNING 1 AS new",
                (
                    project_id,
                    webhook_id,
                    datetime.fromtimestamp(until_s, UTC),
                    message_id,
                    now,
                ),
            ).fetchone()
            earlier = None
            if row is None:
                earlier = conn.execute(
                    "SELECT message_id, stored_at FROM inbox_replays"
                    " WHERE project_id = %s AND webhook_id = %s",
                    (project_id, webhook_id),
                ).fetchone()
        if time.monotonic() - self._pruned_at > _PRUNE_INTERVAL_S:
            self._pruned_at = time.monotonic()
            # On a thread of its own: this request does not wait for it.
            self._executor.submit(self._prune, now)
        if row is not None:
            return Sighting(first=True)
        if earlier is None:
            # Forgotten between the two statements: the first delivery was not
            # stored. This one is asked to come again, and will then be first.
            return Sighting(first=False)
        return Sighting(
            first=False,
            message_id=earlier["message_id"],
            stored=earlier["stored_at"] is not None,
        )

    def _prune(self, now: datetime) -> None:
        """Delete the records that expired ``prune_margin_s`` before ``now``."""
        cutoff = datetime.fromtimestamp(now.timestamp() - self._prune_margin_s, UTC)
        try:
            with self._pool.connection(timeout=self._timeout_s) as conn:
                conn.execute(
                    "DELETE FROM inbox_replays WHERE expires_at < %s", (cutoff,)
                )
        except psycopg.Error as exc:
            # The next prune takes what this one left.
            log.warning("inbox.replays_not_pruned", error=str(exc))

    def _stored(self, project_id: UUID, webhook_id: str) -> None:
        with self._pool.connection(timeout=self._timeout_s) as conn:
            conn.execute(
                "UPDATE inbox_replays SET stored_at = now()"
                " WHERE project_id = %s AND webhook_id = %s",
                (project_id, webhook_id),
            )

    def _forget(self, project_id: UUID, webhook_id: str) -> None:
        with self._pool.connection(timeout=self._timeout_s) as conn:
            conn.execute(
                "DELETE FROM inbox_replays WHERE project_id = %s AND webhook_id = %s",
                (project_id, webhook_id),
            )
