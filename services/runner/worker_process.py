"""The engine's handle on one warm worker process: start it, run, kill it.

A worker is a separate interpreter (``worker``), started with ``subprocess``
rather than ``fork``, because the runner's process holds librdkafka's threads,
and rather than multiprocessing's forkserver, because that server would carry
the runner's environment into every worker. It gets a socket for run orders
and replies, memory shared for its log lines (``log_buffer``), a file for
whatever reaches its file descriptors 1 and 2, and a directory of its own.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

from services.runner import log_buffer
from services.runner.isolation import resident_bytes, worker_environment
from services.runner.log_buffer import RunLog
from services.runner.protocol import (
    ERROR_MAX_CHARS,
    READY,
    ProtocolError,
    RunOrder,
    WorkerConfig,
    decode_reply,
)
from shared.errors import PlatformError
from shared.events import LogLine
from shared.model import ExitCode

EXIT_WAIT_S = 1.0
"""How long a worker that hung up may take to exit before it is killed."""

SHUTDOWN = "the run was stopped because the runner is shutting down"

_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
# -I: no PYTHON* variable, user site-packages or current directory applies.
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from services.runner.worker import main; main(sys.argv[2])"
)
# An error is cut to ERROR_MAX_CHARS; at worst each takes six bytes of JSON.
_REPLY_HEADER_BYTES = 6 * ERROR_MAX_CHARS + 4096


class WorkerStartError(PlatformError):
    """A worker process did not start and report ready."""

    retriable = True


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker of a pool is given.

    Attributes:
        memory_limit_bytes: How much a worker may allocate beyond what it
            uses when it starts.
        state_max_bytes: The largest final state, as compact JSON.
        log_max_bytes: The largest log of a run.
        environment: Variables every job sees, besides ``PATH``, ``LANG``,
            ``LC_ALL``, ``HOME`` and ``TMPDIR``.
        directory: Where workers' temporary directories go; the system's
            default when None.
    """

    memory_limit_bytes: int
    state_max_bytes: int
    log_max_bytes: int
    environment: Mapping[str, str]
    directory: Path | None = None


@dataclass(frozen=True)
class WorkerRun:
    """What became of a run order: as the worker answered, or as it ended.

    ``state`` is the final state's JSON as the worker sent it (empty if there
    is none), unchecked; ``retire`` says why the worker must not serve again.
    """

    exit_code: int
    error: str | None
    state: bytes
    log: RunLog
    retire: str | None


class WorkerProcess:
    """The engine's handle on one worker process; used by one thread at a time."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        channel: Connection,
        buffer: mmap.mmap,
        config: WorkerConfig,
    ) -> None:
        self._process = process
        self._channel = channel
        self._buffer = buffer
        self._config = config
        self._max_reply_bytes = config.state_max_bytes + _REPLY_HEADER_BYTES
        self._baseline_bytes: int | None = None
        self._aborted: tuple[int, str] | None = None
        self.served_runs = 0

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    def launch(cls, settings: WorkerSettings) -> WorkerProcess:
        """Start a worker process; it is ready once :meth:`wait_ready` returns.

        Raises:
            OSError: The process could not be started.
        """
        directory = tempfile.mkdtemp(prefix="openfn-worker-", dir=settings.directory)
        try:
            return cls._launch_in(directory, settings)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    @classmethod
    def _launch_in(cls, directory: str, settings: WorkerSettings) -> WorkerProcess:
        buffer_bytes = log_buffer.buffer_bytes(settings.log_max_bytes)
        stdio_path = os.path.join(directory, "stdio.log")
        ours, theirs = socket.socketpair()
        # The worker has its own copies once started; ours go either way.
        fds: list[int] = []
        try:
            fds.append(log_fd := _shared_memory(buffer_bytes))
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            fds.append(stdio_fd := os.open(stdio_path, flags, 0o600))
            config = WorkerConfig(
                channel_fd=theirs.fileno(),
                log_fd=log_fd,
                log_buffer_bytes=buffer_bytes,
                log_max_bytes=settings.log_max_bytes,
                state_max_bytes=settings.state_max_bytes,
                memory_limit_bytes=settings.memory_limit_bytes,
                runner_pid=os.getpid(),
                directory=directory,
                stdio_path=stdio_path,
            )
            buffer = mmap.mmap(log_fd, buffer_bytes)
            try:
                process = _spawn(config, settings, stdio_fd)
            except BaseException:
                buffer.close()
                raise
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            for fd in fds:
                os.close(fd)
        return cls(process, Connection(ours.detach()), buffer, config)

    def wait_ready(self, timeout_s: float) -> None:
        """Wait for the worker to report ready; stop it if it does not.

        Raises:
            WorkerStartError: It exited, said something else, or took longer
                than ``timeout_s``.
        """
        problem = None
        try:
            if not self._channel.poll(timeout_s):
                problem = f"it did not report ready within {timeout_s:g} s"
            elif self._channel.recv_bytes(len(READY)) != READY:
                problem = "it did not report ready"
        except (EOFError, OSError):
            problem = "it exited"
        if problem is not None:
            output = self._read_stdio(4096).decode("utf-8", "replace").strip()
            self.stop()
            raise WorkerStartError(f"a worker did not start: {problem}: {output}")
        self._baseline_bytes = resident_bytes(self.pid)

    def run(self, order: RunOrder, timeout_s: float) -> WorkerRun:
        """Have the worker run ``order``, killing it after ``timeout_s`` seconds."""
        log_buffer.reset(self._buffer)
        self.served_runs += 1
        try:
            self._channel.send_bytes(pickle.dumps(order, pickle.HIGHEST_PROTOCOL))
            if not self._channel.poll(timeout_s):
                # Dead before its log is read, so that nothing is half written.
                self.kill()
                self._process.wait()
                problem = f"the run did not finish within {timeout_s:g} s"
                return self._ended(ExitCode.TIMEOUT, problem, "timed out")
            frame = self._channel.recv_bytes(self._max_reply_bytes)
        except (EOFError, OSError):
            return self._died()

        try:
            reply = decode_reply(frame)
        except ProtocolError as error:
            self.kill()
            problem = f"the run's process sent an unreadable reply: {error}"
            return self._ended(ExitCode.UNCAUGHT_ERROR, problem, "unreadable reply")
        log = log_buffer.read_log(self._buffer)
        return WorkerRun(reply.exit_code, reply.error, reply.state, log, reply.retire)

    def grown_bytes(self) -> int:
        """How much more memory the worker holds than when it became ready."""
        now = resident_bytes(self.pid)
        if now is None or self._baseline_bytes is None:
            return 0
        return now - self._baseline_bytes

    @property
    def aborted(self) -> bool:
        """True once :meth:`abort` was called: the worker is dead or dying."""
        return self._aborted is not None

    def abort(
        self, exit_code: int = ExitCode.UNCAUGHT_ERROR, problem: str = SHUTDOWN
    ) -> None:
        """Kill the worker from another thread; its run ends with ``exit_code``
        and ``problem`` as its error, unless its answer was in already."""
        self._aborted = (exit_code, problem)
        self.kill()

    def kill(self) -> None:
        """Kill the worker and everything in its process group, at once."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        # A job can leave the group; the worker itself cannot hide that way.
        self._process.kill()

    def stop(self) -> None:
        """Kill the worker, if it still runs, and remove all it left behind."""
        self._channel.close()
        self.kill()
        self._process.wait()
        self._buffer.close()
        shutil.rmtree(self._config.directory, ignore_errors=True)

    def _died(self) -> WorkerRun:
        """The worker hung up during a run."""
        try:
            status = self._process.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            problem = "the run's process broke off its connection to the runner"
            return self._ended(ExitCode.UNCAUGHT_ERROR, problem, "hung up")
        if self._aborted is not None:
            exit_code, problem = self._aborted
            return self._ended(exit_code, problem, "aborted")
        exit_code, problem = describe_exit(status)
        return self._ended(exit_code, problem, "exited")

    def _ended(self, exit_code: int, error: str, retire: str) -> WorkerRun:
        """A run that ended without an answer, with whatever it logged."""
        log = log_buffer.read_log(self._buffer)
        # Output to fds 1 and 2 is collected by the worker after each run;
        # this run's is still in the file.
        at = datetime.now(UTC)
        output = self._read_stdio(self._config.log_max_bytes + 1)
        lines = [
            LogLine(at=at, message=line)
            for line in output.decode("utf-8", "replace").splitlines()
        ]
        return WorkerRun(
            exit_code, error, b"", RunLog(log.lines + lines, log.truncated), retire
        )

    def _read_stdio(self, max_bytes: int) -> bytes:
        try:
            with open(self._config.stdio_path, "rb") as stdio:
                return stdio.read(max_bytes)
        except OSError:
            return b""


def describe_exit(status: int) -> tuple[int, str]:
    """The exit code and error of a run whose process ended with ``status``."""
    if status >= 0:
        return (
            ExitCode.UNCAUGHT_ERROR,
            f"the run's process exited with status {status} before finishing",
        )
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = f"signal {-status}"
    # SIGKILL is not ours (ours are reported before the process is waited
    # for): the kernel's out-of-memory killer sends it. C code that fails to
    # allocate under the memory limit usually aborts.
    if -status in (signal.SIGKILL, signal.SIGABRT):
        return (
            ExitCode.OUT_OF_MEMORY,
            f"the run's process was killed by {name}, most likely for "
            "running out of memory",
        )
    return ExitCode.UNCAUGHT_ERROR, f"the run's process was killed by {name}"


def _spawn(
    config: WorkerConfig, settings: WorkerSettings, stdio_fd: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-c", _BOOTSTRAP, _PROJECT_ROOT, config.to_json()],
        env=worker_environment(config.directory, settings.environment),
        cwd=config.directory,
        stdin=subprocess.DEVNULL,
        stdout=stdio_fd,
        stderr=stdio_fd,
        pass_fds=(config.channel_fd, config.log_fd),
        # Its own process group: a kill reaches what the job started.
        start_new_session=True,
    )


def _shared_memory(size_bytes: int) -> int:
    """A file descriptor of ``size_bytes`` of memory that a child can map."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("openfn-run-log", os.MFD_CLOEXEC)
    else:
        fd, path = tempfile.mkstemp(prefix="openfn-run-log-")
        os.unlink(path)
    os.ftruncate(fd, size_bytes)
    return fd
