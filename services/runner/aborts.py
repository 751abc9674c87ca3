"""Stopping runs that an administrator aborted.

The API records an abort request in ``run_aborts``. While a runner executes
runs, :class:`AbortWatch` asks every ``OPENFN_ABORT_POLL_S`` whether any of
them has one, and pulls that run's :class:`AbortSwitch`: the worker running it
is killed and the run ends with exit code 6. A run whose switch is pulled
before it reaches a worker ends without starting. The watch costs nothing
while no run executes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg_pool import ConnectionPool

from shared.logging import get_logger
from shared.model import abort_error

log = get_logger(__name__)


class AbortSwitch:
    """One run's way to be stopped from another thread.

    The handler runs under the switch's lock, so once :meth:`disconnect`
    returns no handler is running or will run: a worker given back to the
    pool cannot be killed for a run it no longer serves.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._handler: Callable[[str], None] | None = None

    @property
    def reason(self) -> str | None:
        """Why the run was stopped, once it was."""
        return self._reason

    def pull(self, reason: str) -> bool:
        """Stop the run; True unless it was stopped before."""
        with self._lock:
            if self._reason is not None:
                return False
            self._reason = reason
            if self._handler is not None:
                self._handler(reason)
            return True

    def connect(self, handler: Callable[[str], None]) -> None:
        """Call ``handler`` when the switch is pulled, at once if it was."""
        with self._lock:
            self._handler = handler
            if self._reason is not None:
                handler(self._reason)

    def disconnect(self) -> None:
        with self._lock:
            self._handler = None


class RunningRuns:
    """The switches of the runs one runner is executing, by run id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._switches: dict[UUID, AbortSwitch] = {}

    @contextmanager
    def running(self, run_id: UUID) -> Iterator[AbortSwitch]:
        """The run's switch, known to the watch while the block runs."""
        switch = AbortSwitch()
        with self._lock:
            self._switches[run_id] = switch
        try:
            yield switch
        finally:
            with self._lock:
                self._switches.pop(run_id, None)

    def ids(self) -> list[UUID]:
        with self._lock:
            return list(self._switches)

    def pull(self, run_id: UUID, reason: str) -> bool:
        """Stop the run if it executes here; True if this stopped it."""
        with self._lock:
            switch = self._switches.get(run_id)
        return switch is not None and switch.pull(reason)


class AbortRequests:
    """Abort requests in PostgreSQL."""

    def __init__(self, pool: ConnectionPool[Connection[Any]]) -> None:
        self._pool = pool

    def requested(self, run_ids: list[UUID]) -> dict[UUID, str]:
        """Who asked to abort each of ``run_ids`` that has a request."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT run_id, requested_by FROM run_aborts WHERE run_id = ANY(%s)",
                (run_ids,),
            ).fetchall()
        return {row["run_id"]: row["requested_by"] for row in rows}


class AbortWatch:
    """Stops the executing runs that have an abort request; the runner calls
    :meth:`check` every ``OPENFN_ABORT_POLL_S``."""

    def __init__(self, requests: AbortRequests, runs: RunningRuns) -> None:
        self._requests = requests
        self._runs = runs

    def check(self) -> int:
        """Stop what has been asked to stop; returns how many runs were."""
        run_ids = self._runs.ids()
        if not run_ids:
            return 0
        stopped = 0
        for run_id, requested_by in self._requests.requested(run_ids).items():
            if self._runs.pull(run_id, abort_error(requested_by)):
                stopped += 1
                log.warning(
                    "run.aborting", run_id=str(run_id), requested_by=requested_by
                )
        return stopped
