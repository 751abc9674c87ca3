"""What the engine and a worker tell each other, and how states cross between them.

The engine sends a worker its configuration (JSON, on the command line) and
then run orders (pickles: a worker trusts its engine). A worker answers with
a JSON header and the final state's JSON, never a pickle: the job runs in the
worker, so the engine treats whatever comes back as hostile input.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from shared.model import JsonObject

READY = b"ready"
"""What a worker sends once it is ready for its first run."""

ERROR_MAX_CHARS = 4096
"""Longer errors are cut, with a note, so that a reply stays small."""

CONFIGURATION_KEY = "configuration"
"""Where a run's credential is in its state, and only while it runs."""

_SEPARATOR = b"\n"
_HEADER_KEYS = {"exit_code", "error", "retire"}


class ProtocolError(ValueError):
    """A worker's answer is not one the engine understands."""


class StateError(ValueError):
    """A state that cannot be stored: not a JSON object, or over the limit."""


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker is set up; fixed for its whole life."""

    channel_fd: int
    log_fd: int
    log_buffer_bytes: int
    log_max_bytes: int
    state_max_bytes: int
    memory_limit_bytes: int
    runner_pid: int
    directory: str
    stdio_path: str
    """Where the worker's file descriptors 1 and 2 write."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class RunOrder:
    """One run, as the engine sends it to a worker.

    ``job`` is the pickled compiled job; a worker that has seen ``job_key``
    before uses the job it built then. ``state`` is the input state's JSON.
    """

    job_key: str
    job: bytes
    adaptor: str
    state: bytes
    credential: JsonObject | None


@dataclass(frozen=True)
class RunReply:
    """How a run ended, as a worker reports it.

    ``state`` is the final state's JSON, or empty when there is none;
    ``retire`` says why the worker should not serve another run.
    """

    exit_code: int
    error: str | None = None
    state: bytes = b""
    retire: str | None = None


def encode_reply(reply: RunReply) -> bytes:
    """A reply as one frame: its JSON header, a newline, the state's JSON."""
    header = {
        "exit_code": reply.exit_code,
        "error": reply.error,
        "retire": reply.retire,
    }
    return json.dumps(header).encode() + _SEPARATOR + reply.state


def decode_reply(frame: bytes) -> RunReply:
    """Read a frame written by :func:`encode_reply`.

    Raises:
        ProtocolError: The frame is anything else.
    """
    header_json, separator, state = frame.partition(_SEPARATOR)
    try:
        header = json.loads(header_json)
    except ValueError as problem:
        raise ProtocolError(f"the reply's header is not JSON: {problem}") from problem
    if not separator or not isinstance(header, dict) or header.keys() != _HEADER_KEYS:
        raise ProtocolError("the reply's header is not a run reply")

    exit_code, error, retire = header["exit_code"], header["error"], header["retire"]
    if type(exit_code) is not int or not _is_optional_text(error, retire):
        raise ProtocolError("the reply's header has fields of the wrong type")
    return RunReply(exit_code, error, state, retire)


def encode_state(state: object, name: str, max_bytes: int) -> bytes:
    """A state as compact UTF-8 JSON, the form in which its size is limited.

    Args:
        state: The state.
        name: What the state is, for the error: ``"input state"``.
        max_bytes: The largest state allowed.

    Raises:
        StateError: ``state`` is not a JSON object, or its JSON is larger
            than ``max_bytes``.
    """
    if not isinstance(state, dict):
        found = type(state).__name__
        raise StateError(f"the {name} is a {found}, expected a JSON object")
    try:
        text = json.dumps(
            state, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
        # Strict: a lone surrogate has no UTF-8 form, so it is not JSON.
        encoded = text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as error:
        problem = f"{type(error).__name__}: {error}"
        raise StateError(f"the {name} is not JSON: {problem}") from error
    check_state_size(len(encoded), name, max_bytes)
    return encoded


def check_state_size(size_bytes: int, name: str, max_bytes: int) -> None:
    """Refuse a state larger than ``max_bytes``.

    Raises:
        StateError: It is larger.
    """
    if size_bytes > max_bytes:
        limit = f"over the limit of {max_bytes} bytes"
        raise StateError(f"the {name} is {size_bytes} bytes, {limit}")


def _is_optional_text(*values: object) -> bool:
    return all(value is None or isinstance(value, str) for value in values)
