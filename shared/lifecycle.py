"""Runs a consumer service until SIGTERM or SIGINT, then leaves its group cleanly."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from shared.kafka.consumer import BatchConsumer, Handler
from shared.logging import get_logger

log = get_logger(__name__)


def stop_on_signals() -> threading.Event:
    """An event that is set by SIGTERM or SIGINT."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("service.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def run_consumer(consumer: BatchConsumer, handle: Handler) -> None:
    """Consume with ``handle`` until asked to stop."""
    stop = stop_on_signals()
    log.info("service.started", group=consumer.group_id)
    consumer.run(handle, stop)
    log.info("service.stopped", group=consumer.group_id)
