"""Warm workers: lending them to runs, one run each at a time, and replacing them.

One thread of the pool starts every worker, so that each dies with the runner
(``PR_SET_PDEATHSIG`` fires when the thread that started a process ends). A
worker is replaced, in the background, after it timed out or died, after a
run that ran out of memory or left something running, after
``max_runs_per_worker`` runs, and when its resident memory grew by more than
``max_growth_bytes`` since it started.
"""

from __future__ import annotations

import queue
import threading

from services.runner.aborts import AbortSwitch
from services.runner.protocol import RunOrder
from services.runner.worker_process import (
    WorkerProcess,
    WorkerRun,
    WorkerSettings,
    WorkerStartError,
)
from shared.errors import PlatformError
from shared.logging import get_logger
from shared.model import ExitCode

log = get_logger(__name__)

START_TIMEOUT_S = 60.0
RETRY_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits between attempts to replace a worker that failed to start."""


class PoolClosedError(PlatformError):
    """A run was asked of a pool that is not started or already closed."""


class WorkerPool:
    """A fixed number of warm workers, each lent to one run at a time."""

    def __init__(
        self,
        size: int,
        settings: WorkerSettings,
        *,
        max_runs_per_worker: int,
        max_growth_bytes: int,
    ) -> None:
        self._size = size
        self._settings = settings
        self._max_runs = max_runs_per_worker
        self._max_growth_bytes = max_growth_bytes
        self._condition = threading.Condition()
        self._idle: list[WorkerProcess] = []
        self._busy: set[WorkerProcess] = set()
        self._started = False
        self._closed = False
        self._start_error: WorkerStartError | None = None
        self._wanted: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._starter = threading.Thread(
            target=self._start_workers_forever, name="worker-starter", daemon=True
        )

    def start(self) -> None:
        """Start every worker and wait until all are ready.

        Raises:
            WorkerStartError: A worker did not start; the pool is closed.
        """
        with self._condition:
            self._started = True
        self._starter.start()
        self._wanted.put(self._size)
        with self._condition:
            self._condition.wait_for(
                lambda: len(self._idle) == self._size or self._start_error is not None
            )
            error = self._start_error
        if error is not None:
            self.close()
            raise error

    def run(
        self, order: RunOrder, timeout_s: float, abort: AbortSwitch | None = None
    ) -> WorkerRun:
        """Run ``order`` on the next free worker, waiting for one if need be.

        Pulling ``abort`` kills the worker; the run ends with exit code 6.

        Raises:
            PoolClosedError: The pool is not started, or closed meanwhile.
        """
        worker = self._acquire()
        retire: str | None = "the run was interrupted"
        try:
            if abort is not None:
                abort.connect(lambda why: worker.abort(ExitCode.ABORTED, why))
            result = worker.run(order, timeout_s)
            retire = result.retire or self._wear_of(worker)
        finally:
            if abort is not None:
                abort.disconnect()
            if worker.aborted:
                # Dead even when the kill came after its answer, which stands.
                retire = retire or "aborted"
            self._release(worker, retire)
        return result

    def close(self) -> None:
        """Stop every worker; runs in progress end as aborted."""
        with self._condition:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            self._condition.notify_all()
        # Before the starter thread ends: its end kills every worker it started.
        for worker in busy:
            worker.abort()
        self._stopping.set()
        self._wanted.put(None)
        if self._starter.is_alive():
            self._starter.join()
        for worker in idle:
            worker.stop()

    def _acquire(self) -> WorkerProcess:
        with self._condition:
            while not self._idle and self._started and not self._closed:
                self._condition.wait()
            if not self._started or self._closed:
                raise PoolClosedError("the engine is not started or already closed")
            worker = self._idle.pop()
            self._busy.add(worker)
            return worker

    def _release(self, worker: WorkerProcess, retire: str | None) -> None:
        with self._condition:
            self._busy.discard(worker)
            keep = retire is None and not self._closed
            if keep:
                self._idle.append(worker)
                self._condition.notify()
        if keep:
            return
        log.debug("worker.retired", pid=worker.pid, reason=retire)
        worker.stop()
        if not self._closed:
            self._wanted.put(1)

    def _wear_of(self, worker: WorkerProcess) -> str | None:
        if worker.served_runs >= self._max_runs:
            return f"served {worker.served_runs} runs"
        grown_bytes = worker.grown_bytes()
        if grown_bytes > self._max_growth_bytes:
            return f"grew by {grown_bytes} bytes"
        return None

    def _start_workers_forever(self) -> None:
        failures = 0
        while (wanted := self._wanted.get()) is not None:
            while not self._wanted.empty():
                more = self._wanted.get()
                if more is None:
                    return
                wanted += more
            missing = self._start_workers(wanted)
            if not missing:
                failures = 0
                continue
            delay_s = RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S) - 1)]
            failures += 1
            if self._stopping.wait(delay_s):
                return
            self._wanted.put(missing)

    def _start_workers(self, count: int) -> int:
        """Start ``count`` workers together; how many failed to start."""
        launched: list[WorkerProcess] = []
        failed = 0
        for _ in range(count):
            try:
                launched.append(WorkerProcess.launch(self._settings))
            except Exception as error:
                # Whatever it was, this thread must live on: its end kills
                # every worker it started.
                problem = f"{type(error).__name__}: {error}"
                self._record_failure(
                    WorkerStartError(f"a worker did not start: {problem}")
                )
                failed += 1
        for worker in launched:
            try:
                worker.wait_ready(START_TIMEOUT_S)
            except WorkerStartError as error:
                self._record_failure(error)
                failed += 1
            else:
                self._add(worker)
        return failed

    def _add(self, worker: WorkerProcess) -> None:
        with self._condition:
            keep = not self._closed
            if keep:
                self._idle.append(worker)
                self._condition.notify_all()
        if keep:
            log.debug("worker.started", pid=worker.pid)
        else:
            worker.stop()

    def _record_failure(self, error: WorkerStartError) -> None:
        log.error("worker.start_failed", error=str(error))
        with self._condition:
            self._start_error = error
            self._condition.notify_all()
