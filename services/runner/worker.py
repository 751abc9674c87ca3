"""Inside a run's child process: capture its output, run the job, leave a result.

The child speaks to the engine only through files in its run directory (also
its working directory), so whatever it wrote before being killed can still be
read.
"""

from __future__ import annotations

import io
import json
import linecache
import os
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel

from shared.adaptors import load_adaptor
from shared.errors import AdaptorError, JobBuildError
from shared.job_language import CompiledJob, build_operations, job_line_of
from shared.model import ExitCode, JsonObject

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

INPUT_FILE = "input.json"
RESULT_FILE = "result.json"
STATE_FILE = "state.json"
LOG_FILE = "run.log"
STDIO_FILE = "stdio.log"
"""Whatever reaches file descriptors 1 and 2 directly, bypassing ``sys.stdout``."""


class RunResult(BaseModel):
    """How a run ended, as the child reports it."""

    exit_code: int
    error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How a job ended, with the state it reached (``None`` when there is none)."""

    exit_code: int
    error: str | None
    state: Any


def run_in_child(
    job: CompiledJob, adaptor: str, run_dir: str, log_max_bytes: int
) -> NoReturn:
    """Run ``job`` from the input state in ``run_dir`` and write its result there."""
    # Its own process group lets the engine kill whatever the job started too.
    os.setpgrp()
    os.chdir(run_dir)
    _redirect_stdio(STDIO_FILE)
    log = RunLog(Path(LOG_FILE), log_max_bytes)
    sinks = [LineSink(log, 1), LineSink(log, 2)]
    sys.stdout, sys.stderr = (_text_stream(sink) for sink in sinks)

    state = json.loads(Path(INPUT_FILE).read_text("utf-8"))
    outcome = execute_job(job, adaptor, state)

    for sink in sinks:
        sink.end_line()
    _write_result(outcome)
    # Skips waiting for threads the job left running, and atexit hooks.
    os._exit(0)


def execute_job(job: CompiledJob, adaptor: str, state: JsonObject) -> Outcome:
    """Build the job's operations and apply them in order to ``state``."""
    linecache.cache[job.filename] = (
        len(job.source),
        None,
        job.source.splitlines(keepends=True),
        job.filename,
    )
    try:
        operations = build_operations(job, load_adaptor(adaptor).operations)
    except (AdaptorError, JobBuildError) as error:
        return Outcome(ExitCode.CORE_ERROR, str(error), None)
    except BaseException as error:
        line = job_line_of(error, job) or 1
        return Outcome(ExitCode.UNCAUGHT_ERROR, describe_error(error, line), None)

    current: Any = state
    for line, operation in operations:
        try:
            current = operation(current)
        except Exception as error:
            described = describe_error(error, job_line_of(error, job) or line)
            return Outcome(ExitCode.JOB_ERROR, described, current)
        except BaseException as error:
            described = describe_error(error, job_line_of(error, job) or line)
            return Outcome(ExitCode.UNCAUGHT_ERROR, described, None)
    return Outcome(ExitCode.SUCCESS, None, current)


def describe_error(error: BaseException, line: int) -> str:
    """An error as a run reports it: ``ValueError at line 3: bad``."""
    return f"{type(error).__name__} at line {line}: {error}"


class RunLog:
    """The run's log file: one timestamped JSON record a line, up to a byte budget.

    Every line is flushed as it is written, so a kill loses at most the line
    being written. Past the budget, lines are dropped; the engine adds the
    truncation notice.
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._file = path.open("a", encoding="utf-8")
        self._written_bytes = 0
        self._lock = threading.Lock()

    def write_line(self, message: str) -> None:
        with self._lock:
            if self._written_bytes > self.max_bytes:
                return
            message = message[: self.max_bytes + 1]
            self._written_bytes += len(message.encode("utf-8", "replace")) + 1
            record = {"at": datetime.now(UTC).isoformat(), "message": message}
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()


class LineSink(io.RawIOBase):
    """Bytes written to ``sys.stdout`` or ``sys.stderr``, passed on line by line."""

    def __init__(self, log: RunLog, fd: int) -> None:
        super().__init__()
        self._log = log
        self._fd = fd
        self._pending = b""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        # Code that writes to the descriptor itself reaches STDIO_FILE.
        return self._fd

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        with self._lock:
            *lines, self._pending = (self._pending + chunk).split(b"\n")
            if len(self._pending) > self._log.max_bytes:
                lines.append(self._pending)
                self._pending = b""
        for line in lines:
            self._log.write_line(line.decode("utf-8", "replace"))
        return len(chunk)

    def end_line(self) -> None:
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


def _redirect_stdio(path: str) -> None:
    # Without this, output from C code or subprocesses would land in the
    # runner's own log stream.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _write_result(outcome: Outcome) -> None:
    exit_code, error = outcome.exit_code, outcome.error
    if exit_code in (ExitCode.SUCCESS, ExitCode.JOB_ERROR):
        problem = _write_state(outcome.state)
        if problem is not None and exit_code == ExitCode.SUCCESS:
            exit_code, error = ExitCode.PLATFORM_ERROR, problem

    # Written last and renamed into place: its presence means the run ended.
    partial = Path(RESULT_FILE + ".partial")
    result = RunResult(exit_code=exit_code, error=error)
    partial.write_text(result.model_dump_json(), "utf-8")
    partial.replace(RESULT_FILE)


def _write_state(state: Any) -> str | None:
    if not isinstance(state, dict):
        return f"the final state is a {type(state).__name__}, expected a JSON object"
    try:
        encoded = json.dumps(state, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        return f"the final state is not JSON: {type(error).__name__}: {error}"
    Path(STATE_FILE).write_text(encoded, "utf-8")
    return None
