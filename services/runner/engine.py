"""Executing a job on a state: the ``Engine`` seam and the engine of warm workers.

The runner depends only on :class:`Engine`. :class:`ProcessEngine` does in the
runner's process what needs no job code: it finds the adaptor, compiles a job
once per version and refuses an input state over the limit. It runs each run
on a warm worker (``pool``, ``worker``) and checks what comes back as if a
hostile job had written it: the final state's JSON and size, credential
values in the logs and the error (masked in the worker, and again here), and
the log budget. ``isolation`` says what a job can and cannot reach.
"""

from __future__ import annotations

import json
import pickle
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Protocol
from uuid import UUID

from services.runner.aborts import AbortSwitch
from services.runner.isolation import (
    make_process_undumpable as make_process_undumpable,  # for the runner's main()
)
from services.runner.pool import WorkerPool
from services.runner.protocol import (
    CONFIGURATION_KEY,
    RunOrder,
    StateError,
    check_state_size,
    encode_state,
)
from services.runner.redaction import Redactor
from services.runner.worker_process import WorkerRun, WorkerSettings
from shared.adaptors import adaptor_version
from shared.errors import JobSyntaxError, UnknownAdaptorError
from shared.events import JobSpec, LogLine
from shared.job_language import CompiledJob, compile_job
from shared.model import ExitCode, JsonObject

MiB = 1024 * 1024
DEFAULT_MEMORY_LIMIT_BYTES = 512 * MiB
DEFAULT_STATE_MAX_BYTES = 10 * MiB
DEFAULT_LOG_MAX_BYTES = 1 * MiB
DEFAULT_MAX_RUNS_PER_WORKER = 1000
DEFAULT_COMPILE_CACHE_SIZE = 256

_KNOWN_EXIT_CODES = frozenset(ExitCode)


@dataclass(frozen=True)
class Execution:
    """What a run came to.

    ``final_state`` is the state after the last operation on success, the
    state the failing operation was given on a job error (exit 1), and
    ``None`` otherwise; never with the credential in it. ``error`` says what
    went wrong and at which line of the job, e.g. ``ValueError at line 3:
    bad``. ``adaptor`` and ``adaptor_version`` name what the job ran with.
    """

    exit_code: int
    final_state: JsonObject | None
    logs: list[LogLine]
    error: str | None
    adaptor_version: str
    adaptor: str


class Engine(Protocol):
    """Runs jobs; the runner's only way to execute one."""

    def execute(
        self,
        job: JobSpec,
        state: JsonObject,
        timeout_s: float,
        credential: JsonObject | None = None,
        abort: AbortSwitch | None = None,
    ) -> Execution:
        """Run ``job`` from ``state`` with ``credential`` as its configuration,
        giving up after ``timeout_s`` seconds or when ``abort`` is pulled."""
        ...


class ProcessEngine:
    """Runs each run on one of ``workers`` warm worker processes.

    Thread-safe: up to ``workers`` calls of :meth:`execute` run at once, and
    more wait for a free worker. Call :meth:`start` first and :meth:`close`
    at the end, or use the engine as a context manager.

    Args:
        workers: How many runs may execute at once.
        memory_limit_bytes: What a worker may allocate beyond its footprint
            at start-up (adaptors it imports count); past it the run ends
            with exit code 134 and the worker is replaced.
        state_max_bytes: The largest input and final state, as compact JSON.
        log_max_bytes: The largest log of a run; the rest is cut with a
            visible line.
        max_runs_per_worker: Runs after which a worker is replaced.
        worker_env: Environment variables every job sees, besides ``PATH``,
            ``LANG``, ``LC_ALL``, ``HOME`` and ``TMPDIR``; nothing else of the
            runner's environment reaches a job.
        max_growth_bytes: Growth of a worker's resident memory after which it
            is replaced; a quarter of ``memory_limit_bytes`` when None.
        runs_dir: Where workers' temporary directories go; the system's
            temporary directory when None.
        compile_cache_size: Job versions kept compiled.
    """

    def __init__(
        self,
        *,
        workers: int,
        memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES,
        state_max_bytes: int = DEFAULT_STATE_MAX_BYTES,
        log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
        max_runs_per_worker: int = DEFAULT_MAX_RUNS_PER_WORKER,
        worker_env: Mapping[str, str] | None = None,
        max_growth_bytes: int | None = None,
        runs_dir: Path | None = None,
        compile_cache_size: int = DEFAULT_COMPILE_CACHE_SIZE,
    ) -> None:
        settings = WorkerSettings(
            memory_limit_bytes=memory_limit_bytes,
            state_max_bytes=state_max_bytes,
            log_max_bytes=log_max_bytes,
            environment=dict(worker_env or {}),
            directory=runs_dir,
        )
        self._pool = WorkerPool(
            workers,
            settings,
            max_runs_per_worker=max_runs_per_worker,
            max_growth_bytes=max_growth_bytes or memory_limit_bytes // 4,
        )
        self._state_max_bytes = state_max_bytes
        self._log_max_bytes = log_max_bytes
        self._compiled_jobs: OrderedDict[
            tuple[UUID, str], tuple[CompiledJob, bytes]
        ] = OrderedDict()
        self._compile_cache_size = compile_cache_size
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the workers and wait until every one is ready.

        Raises:
            WorkerStartError: A worker did not start.
        """
        self._pool.start()

    def close(self) -> None:
        """Stop the workers; runs still executing end with exit code 11."""
        self._pool.close()

    def __enter__(self) -> ProcessEngine:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def execute(
        self,
        job: JobSpec,
        state: JsonObject,
        timeout_s: float,
        credential: JsonObject | None = None,
        abort: AbortSwitch | None = None,
    ) -> Execution:
        """Run ``job`` from ``state`` on a warm worker.

        ``credential``, if given, is the run's ``state["configuration"]``;
        it is removed from the final state and masked in logs and errors.
        Pulling ``abort`` ends the run with exit code 6, killing its worker.

        Raises:
            PoolClosedError: The engine is not started, or closed.
        """
        try:
            version = _adaptor_version(job.adaptor)
        except UnknownAdaptorError as error:
            return _not_run(ExitCode.CORE_ERROR, str(error), job.adaptor, "")
        try:
            compiled = self._compile(job)
            encoded = encode_state(state, "input state", self._state_max_bytes)
        except JobSyntaxError as error:
            return _not_run(ExitCode.CORE_ERROR, str(error), job.adaptor, version)
        except StateError as error:
            return _not_run(ExitCode.PLATFORM_ERROR, str(error), job.adaptor, version)

        order = RunOrder(
            job_key=f"{job.id}:{job.version}",
            job=compiled[1],
            adaptor=job.adaptor,
            state=encoded,
            credential=credential,
        )
        if abort is not None and abort.reason is not None:
            return _not_run(ExitCode.ABORTED, abort.reason, job.adaptor, version)
        result = self._pool.run(order, timeout_s, abort)
        return self._to_execution(result, credential, job.adaptor, version)

    def compiled(self, job: JobSpec) -> CompiledJob:
        """The job compiled, from the cache when this version was seen before.

        Raises:
            JobSyntaxError: The expression does not compile.
        """
        return self._compile(job)[0]

    def _compile(self, job: JobSpec) -> tuple[CompiledJob, bytes]:
        key = (job.id, job.version)
        with self._lock:
            cached = self._compiled_jobs.get(key)
            if cached is not None:
                self._compiled_jobs.move_to_end(key)
                return cached

        compiled = compile_job(job.expression, f"<job {job.name}>")
        # Pickled once here rather than once per run.
        entry = (compiled, pickle.dumps(compiled, pickle.HIGHEST_PROTOCOL))
        with self._lock:
            self._compiled_jobs[key] = entry
            while len(self._compiled_jobs) > self._compile_cache_size:
                self._compiled_jobs.popitem(last=False)
        return entry

    def _to_execution(
        self,
        result: WorkerRun,
        credential: JsonObject | None,
        adaptor: str,
        version: str,
    ) -> Execution:
        redact = Redactor(credential)
        exit_code, error = result.exit_code, result.error
        if error is not None:
            error = redact(error)
        if exit_code not in _KNOWN_EXIT_CODES:
            exit_code = ExitCode.UNCAUGHT_ERROR
            error = f"the run's process reported exit code {result.exit_code}"

        final_state = None
        if exit_code == ExitCode.SUCCESS or result.state:
            try:
                final_state = self._decode_final_state(result.state)
            except StateError as problem:
                exit_code, error = ExitCode.PLATFORM_ERROR, str(problem)

        lines = result.log.lines
        if credential is not None:
            lines = [
                LogLine(at=line.at, message=redact(line.message)) for line in lines
            ]
        logs = cap_logs(lines, self._log_max_bytes, truncated=result.log.truncated)
        return Execution(exit_code, final_state, logs, error, version, adaptor)

    def _decode_final_state(self, encoded: bytes) -> JsonObject:
        check_state_size(len(encoded), "final state", self._state_max_bytes)
        try:
            state = json.loads(encoded)
        except ValueError as error:
            raise StateError(f"the final state is not JSON: {error}") from error
        if not isinstance(state, dict):
            found = type(state).__name__
            raise StateError(f"the final state is a {found}, expected a JSON object")
        state.pop(CONFIGURATION_KEY, None)
        return state


def cap_logs(
    lines: list[LogLine], max_bytes: int, *, truncated: bool = False
) -> list[LogLine]:
    """The first lines that fit in ``max_bytes``, then a line saying the rest
    was dropped, if any was: beyond the budget, or before (``truncated``)."""
    kept: list[LogLine] = []
    used_bytes = 0
    for line in lines:
        used_bytes += len(line.message.encode("utf-8", "replace")) + 1
        if used_bytes > max_bytes:
            truncated = True
            break
        kept.append(line)
    if truncated:
        at = kept[-1].at if kept else datetime.now(UTC)
        notice = f"[log truncated: the run wrote more than {max_bytes} bytes]"
        kept.append(LogLine(at=at, message=notice))
    return kept


@cache
def _adaptor_version(name: str) -> str:
    # Reading entry points costs milliseconds; an unknown adaptor raises and
    # so is looked up again next time, in case it was installed meanwhile.
    return adaptor_version(name)


def _not_run(exit_code: int, error: str, adaptor: str, version: str) -> Execution:
    return Execution(exit_code, None, [], error, version, adaptor)
