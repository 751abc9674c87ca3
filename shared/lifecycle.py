"""Runs a consumer service until SIGTERM or SIGINT, then leaves its group cleanly."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from shared.kafka.consumer import BatchConsumer, Handler
from shared.logging import get_logger
from shared.ops import Check, OpsServer, OpsSettings

log = get_logger(__name__)

STUCK_AFTER_S = 120.0
"""A poll loop that has not turned for this long is reported not alive."""


def stop_on_signals() -> threading.Event:
    """An event that is set by SIGTERM or SIGINT."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("service.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def cached(check: Check, ttl_s: float = 5.0) -> Check:
    """``check``, answered from its last result for ``ttl_s`` seconds."""
    last: list[tuple[float, bool]] = []

    def run() -> bool:
        now = time.monotonic()
        if last and now - last[0][0] < ttl_s:
            return last[0][1]
        result = check()
        last[:] = [(now, result)]
        return result

    return run


class Every:
    """Calls ``action`` every ``interval_s`` on a thread named ``name`` until
    stopped. A call that raises is logged as ``failure`` and the next one
    tries again."""

    def __init__(
        self,
        interval_s: float,
        action: Callable[[], object],
        name: str,
        failure: str,
    ) -> None:
        self._interval_s = interval_s
        self._action = action
        self._failure = failure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Every:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._action()
            except Exception as exc:  # the next turn tries again
                log.warning(self._failure, error=str(exc))


def database_answers(pool: ConnectionPool[Connection[Any]]) -> Check:
    """A readiness check that PostgreSQL answers through ``pool``."""

    def check() -> bool:
        with pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    return cached(check)


def run_consumer(
    consumer: BatchConsumer,
    handle: Handler,
    ops: OpsSettings,
    dependencies_answer: Check,
) -> None:
    """Consume with ``handle`` until asked to stop, serving health and metrics."""
    stop = stop_on_signals()
    server = OpsServer(
        ops,
        is_alive=lambda: consumer.poll_age_s() < STUCK_AFTER_S,
        is_ready=lambda: consumer.has_joined and dependencies_answer(),
    ).start()
    log.info("service.started", group=consumer.group_id)
    try:
        consumer.run(handle, stop)
    finally:
        server.stop()
    log.info("service.stopped", group=consumer.group_id)
