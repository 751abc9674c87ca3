"""The ``common`` adaptor: the operations and helpers every job can use.

Modelled on OpenFn's language-common, in Python's naming. Paths are JSONPath
(jsonpath-ng's extended syntax, so filters such as ``[?(@.age > 18)]`` work).
Operations return new state and leave the state they are given untouched.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from jsonpath_ng.ext.parser import parse as parse_jsonpath

from shared.job_language import Operation
from shared.model import JsonObject

__all__ = [
    "chunk",
    "cursor",
    "data_path",
    "data_value",
    "each",
    "expand_references",
    "field",
    "fields",
    "fn",
    "log",
    "merge",
    "source_value",
]

StateFunction = Callable[[JsonObject], Any]

T = TypeVar("T")


def fn(func: Operation) -> Operation:
    """An operation that is ``func`` itself: it takes the state, returns the next."""
    _require_callable("fn", func)
    return func


def each(path: str, *operations: Operation) -> Operation:
    """Run ``operations`` once per item matched by ``path`` in the state.

    Each pass starts from the state the previous one returned, with ``data``
    set to the item and ``index`` to its position. Afterwards ``data`` and
    ``index`` are what they were before; every other key keeps what the
    operations made of it.
    """
    expression = _parse(path)
    for operation in operations:
        _require_callable("each", operation)

    def run_each(state: JsonObject) -> JsonObject:
        current = state
        for index, match in enumerate(expression.find(state)):
            current = {**current, "data": match.value, "index": index}
            for operation in operations:
                current = operation(current)
        return _restore(current, state, ("data", "index"))

    return run_each


def field(key: str, value: Any) -> tuple[str, Any]:
    """A key and a value, for :func:`fields`."""
    return (key, value)


def fields(*pairs: tuple[str, Any]) -> dict[str, Any]:
    """An object made of :func:`field` pairs; later keys win."""
    return dict(pairs)


def merge(path: str, extra: Mapping[str, Any]) -> Operation:
    """Merge ``extra`` into every object matched by ``path`` in the state.

    Values of ``extra`` that are functions are called with the state first.
    Unlike language-common's ``merge``, which returns the merged list, this
    is an operation: it returns the state with the objects replaced.
    """
    expression = _parse(path)

    def run_merge(state: JsonObject) -> JsonObject:
        additions = expand_references(dict(extra), state)
        result: JsonObject = copy.deepcopy(state)
        for match in expression.find(result):
            if not isinstance(match.value, dict):
                found = type(match.value).__name__
                raise TypeError(f"merge expects objects at {path}, found {found}")
            result = match.full_path.update(result, {**match.value, **additions})
        return result

    return run_merge


def data_value(path: str) -> StateFunction:
    """A function of state giving the first match of ``path`` in ``state["data"]``.

    ``path`` is relative to the data, as in ``data_value("$.patient.name")``;
    the function gives ``None`` when nothing matches.
    """
    expression = _parse(path)
    return lambda state: _first_match(expression, state.get("data"))


def data_path(path: str) -> str:
    """The JSONPath, against the whole state, of ``path`` within ``state["data"]``."""
    relative = path.removeprefix("$").removeprefix(".")
    return f"$.data.{relative}" if relative else "$.data"


def source_value(path: str) -> StateFunction:
    """A function of state giving the first match of ``path`` in the whole state."""
    expression = _parse(path)
    return lambda state: _first_match(expression, state)


def log(*values: Any) -> Operation:
    """An operation that writes ``values`` to the run's log, on one line.

    Functions among the values are called with the state first; values that
    are not strings are written as JSON.
    """

    def run_log(state: JsonObject) -> JsonObject:
        resolved = expand_references(list(values), state)
        sys.stdout.write(" ".join(_to_text(value) for value in resolved) + "\n")
        return state

    return run_log


def cursor(value: Any, key: str = "cursor") -> Operation:
    """An operation that remembers where a job got to, in ``state[key]``.

    A cron-triggered run starts from its job's last successful final state, so
    the next run finds the cursor there. ``value`` may be a function of state
    (or contain some), as in ``cursor(lambda state: state["data"]["last_id"])``.

    Args:
        value: The cursor, or a function of state giving it.
        key: The state key that holds it.

    Returns:
        The operation; it leaves every other key as it was.
    """

    def run_cursor(state: JsonObject) -> JsonObject:
        return {**state, key: expand_references(value, state)}

    return run_cursor


def chunk(array: Iterable[T], size: int) -> list[list[T]]:
    """``array`` cut into lists of ``size`` items, the last one possibly shorter.

    Args:
        array: The items, in order.
        size: The most items a list may hold, at least 1.

    Returns:
        The lists, in order; none when ``array`` is empty.

    Raises:
        ValueError: ``size`` is not a whole number of at least 1.
    """
    # bool is an int, but chunk(items, True) is surely a mistake.
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"chunk expects a size of at least 1, found {size!r}")
    items = list(array)
    return [items[start : start + size] for start in range(0, len(items), size)]


def expand_references(value: Any, state: JsonObject) -> Any:
    """``value`` with every function in it replaced by its result for ``state``.

    Looks inside objects and lists; a function's result is used as it is.
    """
    if callable(value):
        return value(state)
    if isinstance(value, Mapping):
        return {key: expand_references(item, state) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [expand_references(item, state) for item in value]
    return value


@lru_cache(maxsize=1024)
def _parse(path: str) -> Any:
    try:
        return parse_jsonpath(path)
    except Exception as error:
        raise ValueError(f"invalid JSONPath {path!r}: {error}") from error


def _first_match(expression: Any, document: Any) -> Any:
    matches = expression.find(document)
    return matches[0].value if matches else None


def _restore(
    result: JsonObject, original: JsonObject, keys: tuple[str, ...]
) -> JsonObject:
    restored = dict(result)
    for key in keys:
        if key in original:
            restored[key] = original[key]
        else:
            restored.pop(key, None)
    return restored


def _require_callable(operation: str, value: object) -> None:
    if not callable(value):
        found = type(value).__name__
        raise TypeError(f"{operation} expects a function of state, found {found}")


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)
