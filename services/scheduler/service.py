"""The scheduler's loop: its tasks in turn, every interval, on one connection.

Each task keeps its work in short PostgreSQL transactions that hold row locks
only while the broker acknowledges what they send. The session aborts a
transaction left idle longer than that could take, so a replica that hangs
instead of dying cannot hold its rows for long either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg

from shared.db.connection import connect
from shared.errors import BrokerUnavailableError
from shared.logging import get_logger

log = get_logger(__name__)

Clock = Callable[[], datetime]

DELIVERY_TIMEOUT_S = 30.0
"""The longest a task waits for the broker while it holds row locks."""

_IDLE_IN_TRANSACTION_TIMEOUT_S = 2 * DELIVERY_TIMEOUT_S


class Task(Protocol):
    """One periodic job of the scheduler."""

    name: str

    def run(self, conn: psycopg.Connection[Any], now: datetime) -> int:
        """Do what is due at ``now``; returns how much was done."""
        ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Runs its tasks every ``interval_s`` until stopped."""

    def __init__(
        self,
        database_url: str,
        tasks: Sequence[Task],
        interval_s: float = 1.0,
        clock: Clock = utc_now,
    ) -> None:
        self._url = database_url
        self._tasks = tasks
        self._interval_s = interval_s
        self._clock = clock
        self._conn: psycopg.Connection[Any] | None = None
        self._last_round_monotonic = time.monotonic()
        self.last_round_ok = False
        """Whether every task did its work in the last round: the service is ready."""

    def round_age_s(self) -> float:
        """Time since the last round ended: the service is alive while it is short."""
        return time.monotonic() - self._last_round_monotonic

    def run(self, stop: threading.Event) -> None:
        """Run rounds until ``stop`` is set."""
        try:
            while not stop.is_set():
                self.run_once()
                stop.wait(self._interval_s)
        finally:
            self.close()

    def run_once(self) -> None:
        """One round: each task once; a failing task is logged and tried next round."""
        ok = True
        for task in self._tasks:
            ok = self._run_task(task) and ok
        self.last_round_ok = ok
        self._last_round_monotonic = time.monotonic()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run_task(self, task: Task) -> bool:
        try:
            task.run(self._connection(), self._clock())
        except psycopg.OperationalError as exc:
            log.warning(
                "scheduler.database_unavailable", task=task.name, error=str(exc)
            )
            self.close()
        except BrokerUnavailableError as exc:
            log.warning("scheduler.broker_unavailable", task=task.name, error=str(exc))
        except Exception:
            log.exception("scheduler.task_failed", task=task.name)
            if self._conn is not None and self._conn.broken:
                self.close()
        else:
            return True
        return False

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            conn = connect(self._url, autocommit=True)
            conn.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                (f"{int(_IDLE_IN_TRANSACTION_TIMEOUT_S * 1000)}ms",),
            )
            self._conn = conn
        return self._conn
