"""A warm worker: a long-lived process that runs one job at a time for the engine.

``worker_process`` starts it with a scrubbed environment; it confines itself (see
``isolation``) and then loops: read a run order, run the job in a fresh
namespace and temporary directory, answer. Adaptors and compiled jobs stay
loaded between runs, so a run pays for neither an interpreter start nor an
import. Log lines go to memory shared with the engine (``log_buffer``), so
the lines written before a kill survive it.
"""

from __future__ import annotations

import io
import json
import linecache
import mmap
import os
import pickle
import shutil
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from services.runner.isolation import confine_worker, thread_count
from services.runner.log_buffer import LogWriter
from services.runner.protocol import (
    CONFIGURATION_KEY,
    ERROR_MAX_CHARS,
    READY,
    RunOrder,
    RunReply,
    StateError,
    WorkerConfig,
    encode_reply,
    encode_state,
)
from services.runner.redaction import Redactor
from shared.adaptors import load_adaptor
from shared.errors import AdaptorError, JobBuildError
from shared.job_language import CompiledJob, build_operations, job_line_of
from shared.model import ExitCode, JsonObject

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

JOB_CACHE_SIZE = 256


@dataclass(frozen=True)
class Outcome:
    """How a job ended, with the state it reached (``None`` when there is none)."""

    exit_code: int
    error: str | None
    state: Any


def main(config_json: str) -> NoReturn:
    """Serve run orders from the engine until it hangs up or the worker retires."""
    config = WorkerConfig.from_json(config_json)
    confine_worker(config.memory_limit_bytes, config.runner_pid)
    # Programs the job executes get neither the channel nor the log buffer.
    os.set_inheritable(config.channel_fd, False)
    os.set_inheritable(config.log_fd, False)
    channel = Connection(config.channel_fd)
    buffer = mmap.mmap(config.log_fd, config.log_buffer_bytes)
    worker = Worker(config, LogWriter(buffer, config.log_max_bytes))

    channel.send_bytes(READY)
    while True:
        try:
            order: RunOrder = pickle.loads(channel.recv_bytes())  # noqa: S301 - from the engine
        except EOFError:
            break
        reply = worker.serve(order)
        channel.send_bytes(encode_reply(reply))
        if reply.retire is not None:
            break
    # Skips waiting for threads a job left running, and atexit hooks.
    os._exit(0)


class Worker:
    """Runs orders one after the other, each from a clean start."""

    def __init__(self, config: WorkerConfig, log: LogWriter) -> None:
        self._config = config
        self._log = log
        self._sinks = (
            LineSink(log, 1, config.log_max_bytes),
            LineSink(log, 2, config.log_max_bytes),
        )
        self._streams = tuple(_text_stream(sink) for sink in self._sinks)
        # fds 1 and 2 append to this file; read and emptied after each run.
        self._stdio: BinaryIO = open(config.stdio_path, "r+b")  # noqa: SIM115 - lives as long as the worker
        self._jobs: OrderedDict[str, tuple[CompiledJob, tuple[Any, ...]]] = (
            OrderedDict()
        )
        self._adaptors: dict[str, Mapping[str, object]] = {}
        self._environment = dict(os.environ)
        self._path = list(sys.path)
        self._threads = thread_count()

    def serve(self, order: RunOrder) -> RunReply:
        """Run one order and say how it ended, and whether to retire."""
        redact = Redactor(order.credential)
        self._log.start_run(redact)
        run_dir = tempfile.mkdtemp(prefix="run-", dir=self._config.directory)
        self._enter(run_dir)
        try:
            reply = self._run(order, redact)
        except MemoryError:
            # Outside the job: reading or writing a state near the limit.
            reply = self._out_of_memory("while the worker handled the state")
        except Exception as error:
            problem = redact(f"the worker failed: {type(error).__name__}: {error}")
            reply = RunReply(ExitCode.PLATFORM_ERROR, problem, retire="it failed")
        finally:
            self._leave(run_dir)
        if reply.retire is None:
            reply = replace(reply, retire=self._leftovers(run_dir))
        return reply

    def _run(self, order: RunOrder, redact: Redactor) -> RunReply:
        state = json.loads(order.state)
        if order.credential is not None:
            state[CONFIGURATION_KEY] = order.credential
        outcome = self._execute(order, state)
        for sink in self._sinks:
            sink.end_line()
        self._collect_stdio()

        error = _cut(redact(outcome.error)) if outcome.error is not None else None
        if outcome.exit_code == ExitCode.OUT_OF_MEMORY:
            return self._out_of_memory(error)
        if outcome.exit_code not in (ExitCode.SUCCESS, ExitCode.JOB_ERROR):
            return RunReply(outcome.exit_code, error)
        return self._with_state(outcome, error)

    def _execute(self, order: RunOrder, state: JsonObject) -> Outcome:
        job = self._job(order)
        try:
            exports = self._exports(order.adaptor)
        except AdaptorError as error:
            return Outcome(ExitCode.CORE_ERROR, str(error), None)
        return execute_job(job, exports, state)

    def _job(self, order: RunOrder) -> CompiledJob:
        cached = self._jobs.get(order.job_key)
        if cached is None:
            job: CompiledJob = pickle.loads(order.job)  # noqa: S301 - from the engine
            lines = job.source.splitlines(keepends=True)
            cached = (job, (len(job.source), None, lines, job.filename))
            self._jobs[order.job_key] = cached
            if len(self._jobs) > JOB_CACHE_SIZE:
                self._jobs.popitem(last=False)
        self._jobs.move_to_end(order.job_key)
        job, source_entry = cached
        # Tracebacks printed by the job show its lines; jobs may share a name.
        linecache.cache[job.filename] = source_entry
        return job

    def _exports(self, adaptor: str) -> Mapping[str, object]:
        exports = self._adaptors.get(adaptor)
        if exports is None:
            exports = self._adaptors[adaptor] = load_adaptor(adaptor).operations
            # Threads an adaptor starts on import are its own, not a job's.
            self._threads = thread_count()
        return exports

    def _with_state(self, outcome: Outcome, error: str | None) -> RunReply:
        state = outcome.state
        if isinstance(state, dict):
            state = {
                key: value for key, value in state.items() if key != CONFIGURATION_KEY
            }
        succeeded = outcome.exit_code == ExitCode.SUCCESS
        name = "final state" if succeeded else "state at the failure"
        try:
            encoded = encode_state(state, name, self._config.state_max_bytes)
        except StateError as problem:
            if succeeded:
                return RunReply(ExitCode.PLATFORM_ERROR, str(problem))
            return RunReply(
                outcome.exit_code, f"{error}; {problem}, so it was not kept"
            )
        return RunReply(outcome.exit_code, error, encoded)

    def _out_of_memory(self, error: str | None) -> RunReply:
        limit = self._config.memory_limit_bytes
        message = f"the run went over its memory limit of {limit} bytes: {error}"
        return RunReply(ExitCode.OUT_OF_MEMORY, message, retire="ran out of memory")

    def _collect_stdio(self) -> None:
        if os.fstat(self._stdio.fileno()).st_size == 0:
            return
        self._stdio.seek(0)
        data = self._stdio.read(self._config.log_max_bytes + 1)
        self._stdio.truncate(0)
        for line in data.decode("utf-8", "replace").splitlines():
            self._log.write_line(line)

    def _enter(self, run_dir: str) -> None:
        os.chdir(run_dir)
        os.environ.clear()
        os.environ.update(self._environment)
        os.environ["HOME"] = os.environ["TMPDIR"] = run_dir
        tempfile.tempdir = run_dir
        sys.path[:] = self._path
        sys.stdout, sys.stderr = self._streams

    def _leave(self, run_dir: str) -> None:
        os.chdir(self._config.directory)
        tempfile.tempdir = self._config.directory
        shutil.rmtree(run_dir, ignore_errors=True)

    def _leftovers(self, run_dir: str) -> str | None:
        """Why the worker must not serve another run after this one, if it must not.

        Whatever a run leaves running could watch the next run.
        """
        if thread_count() > self._threads:
            return "the job left threads running"
        if _has_children():
            return "the job left processes running"
        if any(stream.closed for stream in self._streams):
            return "the job closed the run's output"
        if os.path.exists(run_dir):
            return "the run's directory could not be removed"
        return None


def execute_job(
    job: CompiledJob, exports: Mapping[str, object], state: JsonObject
) -> Outcome:
    """Build the job's operations and apply them in order to ``state``."""
    try:
        operations = build_operations(job, exports)
    except JobBuildError as error:
        if isinstance(error.__cause__, MemoryError):
            return Outcome(ExitCode.OUT_OF_MEMORY, str(error), None)
        return Outcome(ExitCode.CORE_ERROR, str(error), None)
    except BaseException as error:
        line = job_line_of(error, job) or 1
        return Outcome(ExitCode.UNCAUGHT_ERROR, describe_error(error, line), None)

    current: Any = state
    for line, operation in operations:
        try:
            current = operation(current)
        except MemoryError as error:
            described = describe_error(error, job_line_of(error, job) or line)
            return Outcome(ExitCode.OUT_OF_MEMORY, described, None)
        except Exception as error:
            described = describe_error(error, job_line_of(error, job) or line)
            return Outcome(ExitCode.JOB_ERROR, described, current)
        except BaseException as error:
            described = describe_error(error, job_line_of(error, job) or line)
            return Outcome(ExitCode.UNCAUGHT_ERROR, described, None)
    return Outcome(ExitCode.SUCCESS, None, current)


def describe_error(error: BaseException, line: int) -> str:
    """An error as a run reports it: ``ValueError at line 3: bad``."""
    message = str(error)
    where = f"{type(error).__name__} at line {line}"
    return f"{where}: {message}" if message else where


class LineSink(io.RawIOBase):
    """Bytes written to ``sys.stdout`` or ``sys.stderr``, passed on line by line."""

    def __init__(self, log: LogWriter, fd: int, max_line_bytes: int) -> None:
        super().__init__()
        self._log = log
        self._fd = fd
        self._max_line_bytes = max_line_bytes
        self._pending = b""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        # Code that writes to the descriptor itself reaches the stdio file.
        return self._fd

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        with self._lock:
            *lines, self._pending = (self._pending + chunk).split(b"\n")
            if len(self._pending) > self._max_line_bytes:
                lines.append(self._pending)
                self._pending = b""
        for line in lines:
            self._log.write_line(line.decode("utf-8", "replace"))
        return len(chunk)

    def end_line(self) -> None:
        """Pass on what was written after the last newline."""
        with self._lock:
            pending, self._pending = self._pending, b""
        if pending:
            self._log.write_line(pending.decode("utf-8", "replace"))


def _text_stream(sink: LineSink) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        sink,  # type: ignore[arg-type]  # a raw stream works unbuffered; typeshed wants a buffered one
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )


def _cut(text: str) -> str:
    if len(text) <= ERROR_MAX_CHARS:
        return text
    return f"{text[:ERROR_MAX_CHARS]} [cut: {len(text)} characters in all]"


def _has_children() -> bool:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
