"""Executing a job on a state: the ``Engine`` seam and the engine that forks per run.

The runner depends only on :class:`Engine`. :class:`ProcessEngine` compiles a
job once per version in the runner's process, then runs each run in a fresh
child process (see ``worker``) and reads back what it left in its run
directory. A warm worker pool, memory caps and credentials belong behind the
same ``execute``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from uuid import UUID

from pydantic import ValidationError

from services.runner import worker
from shared.adaptors import adaptor_version
from shared.errors import JobSyntaxError, UnknownAdaptorError
from shared.events import JobSpec, LogLine
from shared.job_language import CompiledJob, compile_job
from shared.model import ExitCode, JsonObject

DEFAULT_LOG_MAX_BYTES = 1024 * 1024
DEFAULT_COMPILE_CACHE_SIZE = 256


@dataclass(frozen=True)
class Execution:
    """What a run came to.

    ``final_state`` is the state after the last operation on success, the
    state the failing operation was given on a job error (exit 1), and
    ``None`` otherwise. ``error`` says what went wrong and at which line of
    the job, e.g. ``ValueError at line 3: bad``.
    """

    exit_code: int
    final_state: JsonObject | None
    logs: list[LogLine]
    error: str | None
    adaptor_version: str


class Engine(Protocol):
    """Runs jobs; the runner's only way to execute one."""

    def execute(self, job: JobSpec, state: JsonObject, timeout_s: float) -> Execution:
        """Run ``job`` from ``state``, giving up after ``timeout_s`` seconds."""
        ...


class ProcessEngine:
    """Runs each run in its own child process, killed if it overstays its timeout.

    Children come from a forkserver: the runner's process holds librdkafka's
    threads, which a plain fork would copy in whatever state they were in.
    """

    def __init__(
        self,
        *,
        log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
        compile_cache_size: int = DEFAULT_COMPILE_CACHE_SIZE,
        runs_dir: Path | None = None,
    ) -> None:
        self._context = multiprocessing.get_context("forkserver")
        # Only our own module: the forkserver dies on an import that raises
        # anything but ImportError, so adaptors are imported per run.
        self._context.set_forkserver_preload([worker.__name__])
        self._log_max_bytes = log_max_bytes
        self._runs_dir = runs_dir
        self._compiled_jobs: OrderedDict[tuple[UUID, str], CompiledJob] = OrderedDict()
        self._compile_cache_size = compile_cache_size
        self._lock = threading.Lock()

    def execute(self, job: JobSpec, state: JsonObject, timeout_s: float) -> Execution:
        try:
            version = adaptor_version(job.adaptor)
        except UnknownAdaptorError as error:
            return _not_run(ExitCode.CORE_ERROR, str(error), "")
        try:
            compiled = self.compiled(job)
        except JobSyntaxError as error:
            return _not_run(ExitCode.CORE_ERROR, str(error), version)
        try:
            input_json = json.dumps(state, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as error:
            problem = f"the input state is not JSON: {type(error).__name__}: {error}"
            return _not_run(ExitCode.PLATFORM_ERROR, problem, version)

        with tempfile.TemporaryDirectory(prefix="run-", dir=self._runs_dir) as name:
            run_dir = Path(name)
            (run_dir / worker.INPUT_FILE).write_text(input_json, "utf-8")
            exit_code, failure = self._run_child(
                compiled, job.adaptor, run_dir, timeout_s
            )
            final_state = None
            if exit_code in (ExitCode.SUCCESS, ExitCode.JOB_ERROR):
                final_state = _read_state(run_dir)
            logs = read_logs(run_dir, self._log_max_bytes)
        return Execution(exit_code, final_state, logs, failure, version)

    def compiled(self, job: JobSpec) -> CompiledJob:
        """The job compiled, from the cache when this version was seen before.

        Raises:
            JobSyntaxError: The expression does not compile.
        """
        key = (job.id, job.version)
        with self._lock:
            cached = self._compiled_jobs.get(key)
            if cached is not None:
                self._compiled_jobs.move_to_end(key)
                return cached

        compiled = compile_job(job.expression, f"<job {job.name}>")
        with self._lock:
            self._compiled_jobs[key] = compiled
            while len(self._compiled_jobs) > self._compile_cache_size:
                self._compiled_jobs.popitem(last=False)
        return compiled

    def _run_child(
        self, job: CompiledJob, adaptor: str, run_dir: Path, timeout_s: float
    ) -> tuple[int, str | None]:
        process = self._context.Process(
            target=worker.run_in_child,
            args=(job, adaptor, str(run_dir), self._log_max_bytes),
            daemon=True,
        )
        process.start()
        try:
            process.join(timeout_s)
            timed_out = process.exitcode is None
            if timed_out:
                process.kill()
                process.join()
        finally:
            if process.pid is not None:
                _kill_group(process.pid)
        status = process.exitcode
        process.close()

        if timed_out:
            return ExitCode.TIMEOUT, f"the run did not finish within {timeout_s:g} s"
        return _read_result(run_dir, status)


def read_logs(run_dir: Path, max_bytes: int) -> list[LogLine]:
    """The lines a run wrote, in order, cut off after ``max_bytes`` bytes."""
    lines = _read_records(run_dir / worker.LOG_FILE)
    lines.extend(_read_raw_lines(run_dir / worker.STDIO_FILE, max_bytes))
    return cap_logs(lines, max_bytes)


def cap_logs(lines: list[LogLine], max_bytes: int) -> list[LogLine]:
    """The first lines that fit in ``max_bytes``, then a line saying the rest
    was dropped."""
    kept: list[LogLine] = []
    used_bytes = 0
    for line in lines:
        used_bytes += len(line.message.encode("utf-8", "replace")) + 1
        if used_bytes > max_bytes:
            notice = f"[log truncated: the run wrote more than {max_bytes} bytes]"
            kept.append(LogLine(at=line.at, message=notice))
            break
        kept.append(line)
    return kept


def _not_run(exit_code: int, error: str, version: str) -> Execution:
    return Execution(exit_code, None, [], error, version)


def _kill_group(pid: int) -> None:
    # The group exists only if the child got as far as creating it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read_result(run_dir: Path, status: int | None) -> tuple[int, str | None]:
    try:
        text = (run_dir / worker.RESULT_FILE).read_text("utf-8")
        result = worker.RunResult.model_validate_json(text)
    except (FileNotFoundError, ValidationError):
        return ExitCode.UNCAUGHT_ERROR, _describe_death(status)
    return result.exit_code, result.error


def _describe_death(status: int | None) -> str:
    if status is not None and status < 0:
        return f"the run's process was killed by {signal.Signals(-status).name}"
    return f"the run's process exited with status {status} before finishing"


def _read_state(run_dir: Path) -> JsonObject | None:
    try:
        state = json.loads((run_dir / worker.STATE_FILE).read_text("utf-8"))
    except FileNotFoundError:
        return None
    return state if isinstance(state, dict) else None


def _read_records(path: Path) -> list[LogLine]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", errors="replace") as records:
        return [line for record in records if (line := _parse_record(record))]


def _parse_record(record: str) -> LogLine | None:
    try:
        return LogLine.model_validate_json(record)
    except ValidationError:
        # Only the record being written when the child was killed is partial.
        return None


def _read_raw_lines(path: Path, max_bytes: int) -> list[LogLine]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    with path.open("rb") as raw:
        text = raw.read(max_bytes + 1).decode("utf-8", "replace")
    return [LogLine(at=at, message=line) for line in text.splitlines()]
