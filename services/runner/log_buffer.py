"""A run's log lines, in memory that a worker and the engine share.

The worker appends each line as a record and then publishes the new end in
the header; the engine reads the records once the run has answered or its
worker was killed. Writing a line costs no system call, and a kill loses at
most the line being written.

Layout: a header of two unsigned 64-bit integers (bytes of records, lines
dropped past the budget), then records of a 64-bit float (when, in seconds
since the epoch), a 32-bit length and that many bytes of UTF-8.
"""

from __future__ import annotations

import mmap
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.events import LogLine

_HEADER = struct.Struct("<QQ")
_RECORD = struct.Struct("<dI")


def buffer_bytes(log_max_bytes: int) -> int:
    """The size of a buffer that never fills before the log budget is spent.

    Each line costs its length plus one (its newline) of the budget, and its
    length plus a record header here; empty lines are the worst case.
    """
    return _HEADER.size + (log_max_bytes + 1) * (_RECORD.size + 1)


@dataclass(frozen=True)
class RunLog:
    """What a run logged: the lines kept, and whether any were dropped."""

    lines: list[LogLine]
    truncated: bool


class LogWriter:
    """The worker's end: appends lines until the run's log budget is spent."""

    def __init__(self, buffer: mmap.mmap, max_bytes: int) -> None:
        self._buffer = buffer
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._redact: Callable[[str], str] = str
        self._end = _HEADER.size
        self._spent_bytes = 0
        self._dropped = 0

    def start_run(self, redact: Callable[[str], str]) -> None:
        """Forget the previous run's lines; mask every line with ``redact``."""
        with self._lock:
            self._redact = redact
            self._end = _HEADER.size
            self._spent_bytes = 0
            self._dropped = 0
            _HEADER.pack_into(self._buffer, 0, 0, 0)

    def write_line(self, message: str) -> None:
        """Append one line, or count it as dropped once the budget is spent."""
        # A longer line is over budget anyway; cutting first bounds the work.
        data = self._redact(message[: self._max_bytes + 1]).encode("utf-8", "replace")
        with self._lock:
            self._spent_bytes += len(data) + 1
            start = self._end + _RECORD.size
            if self._dropped or self._spent_bytes > self._max_bytes:
                self._dropped += 1
            else:
                _RECORD.pack_into(self._buffer, self._end, time.time(), len(data))
                self._buffer[start : start + len(data)] = data
                self._end = start + len(data)
            _HEADER.pack_into(self._buffer, 0, self._end - _HEADER.size, self._dropped)


def reset(buffer: mmap.mmap) -> None:
    """Empty the buffer; the engine does so before each run."""
    _HEADER.pack_into(buffer, 0, 0, 0)


def read_log(buffer: mmap.mmap) -> RunLog:
    """The lines in the buffer.

    The job runs in the process that writes the buffer, so nothing in it is
    trusted: reading stops at the first record that does not fit.
    """
    used_bytes, dropped = _HEADER.unpack_from(buffer, 0)
    records = buffer[_HEADER.size : _HEADER.size + used_bytes]
    lines: list[LogLine] = []
    offset = 0
    while offset + _RECORD.size <= len(records):
        at_s, length = _RECORD.unpack_from(records, offset)
        start = offset + _RECORD.size
        if start + length > len(records):
            break
        message = records[start : start + length].decode("utf-8", "replace")
        lines.append(LogLine(at=_to_datetime(at_s), message=message))
        offset = start + length
    return RunLog(lines, truncated=dropped > 0)


def _to_datetime(at_s: float) -> datetime:
    try:
        return datetime.fromtimestamp(at_s, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.now(UTC)
