"""Message-filter trigger matching with PostgreSQL ``jsonb @>`` semantics.

A message filter trigger fires for a message whose JSON body *contains* the
trigger's criteria and does not contain its exclusion, where "contains" means
exactly what PostgreSQL's ``document::jsonb @> pattern::jsonb`` means (section
8.14.3, "jsonb Containment and Existence"):

* An object contains an object when every key of the pattern is in the
  document and the document's value there contains the pattern's value.
* An array contains an array when every element of the pattern is contained in
  *some* element of the document; order and duplicates do not matter. A scalar
  element only matches an equal scalar element, never one inside a nested
  array (``[[1, 2]] @> [1]`` is false).
* A scalar contains a scalar only when they are equal and of the same JSON
  type: ``1`` does not match ``"1"``, and ``true`` does not match ``1``.
  Numbers compare by exact decimal value, so ``1`` matches ``1.0``.
* An array never matches an object and an object never matches an array or a
  scalar.
* Only at the top level, an array document contains a scalar pattern equal to
  one of its elements (``[1, 2] @> 1``); nested, ``{"a": [1]} @> {"a": 1}`` is
  false. A top-level scalar document contains no array, not even ``[]``.

Values are JSON as Python decodes it: ``dict`` (string keys), ``list`` (or
``tuple``), ``str``, ``int``, ``float``, ``decimal.Decimal``, ``bool`` and
``None``. A float compares as the decimal text ``json.dumps`` writes for it
(its shortest round-trip ``repr``), which is what PostgreSQL would parse:
``1e23`` therefore equals ``10**23`` although the binary float does not. Bodies
decoded with ``parse_float=Decimal`` keep every digit of their JSON text and
compare exactly as PostgreSQL does.

The module does no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["contains", "matches_filter"]

# A scalar's identity for comparison: its JSON type tag and a value whose
# equality (and hash) is PostgreSQL's equality for that type.
_ScalarKey = tuple[str, object]


def contains(document: Any, pattern: Any) -> bool:
    """Whether ``document::jsonb @> pattern::jsonb`` holds in PostgreSQL.

    Args:
        document: The JSON value searched, e.g. a decoded message body.
        pattern: The JSON value looked for, e.g. a trigger's criteria.

    Returns:
        True iff PostgreSQL's jsonb containment operator would return true for
        the two values serialized as JSON.

    Raises:
        TypeError: A value visited during the comparison is not a JSON value
            (for example a set, or an object with a non-string key).
        ValueError: A number visited is NaN or infinite, which JSON cannot
            hold.

    Examples:
        >>> contains({"a": 1, "b": [1, 2]}, {"b": [2]})
        True
        >>> contains([1, 2], 2)
        True
        >>> contains({"a": [1]}, {"a": 1})
        False
    """
    if _is_array(document) and _is_scalar(pattern):
        # The one top-level special case: PostgreSQL stores a bare scalar as a
        # one-element "raw scalar" array, which an array may contain.
        return _array_has_scalar(document, _scalar_key(pattern))
    return _contains(document, pattern)


def matches_filter(body: Any, criteria: Any, exclusion: Any | None) -> bool:
    """Whether a message filter trigger fires for a message body.

    Args:
        body: The message body as a JSON value.
        criteria: The trigger's criteria; the body must contain it.
        exclusion: The trigger's exclusion, or None for none; when given, the
            body must not contain it.

    Returns:
        True iff ``body @> criteria`` and, when an exclusion is given, not
        ``body @> exclusion``.

    Raises:
        TypeError: A value compared is not a JSON value.
        ValueError: A number compared is NaN or infinite.

    Examples:
        >>> body = {"form": {"@name": "Registration", "test": True}}
        >>> matches_filter(body, {"form": {"@name": "Registration"}}, None)
        True
        >>> matches_filter(
        ...     body, {"form": {"@name": "Registration"}}, {"form": {"test": True}}
        ... )
        False
    """
    if not contains(body, criteria):
        return False
    return exclusion is None or not contains(body, exclusion)


def _contains(document: Any, pattern: Any) -> bool:
    """Containment below the top level: kinds must agree exactly."""
    if _is_object(document):
        if not _is_object(pattern):
            return False
        for key, wanted in pattern.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys are strings, not {key!r}")
            if key not in document or not _contains(document[key], wanted):
                return False
        return True
    if _is_array(document):
        return _is_array(pattern) and _array_contains(document, pattern)
    if _is_object(pattern) or _is_array(pattern):
        return False
    return _scalar_key(document) == _scalar_key(pattern)


def _array_contains(document: list[Any] | tuple[Any, ...], pattern: Any) -> bool:
    """Every pattern element is contained in some document element."""
    scalars: set[_ScalarKey] | None = None
    containers: list[Any] | None = None
    for wanted in pattern:
        if _is_scalar(wanted):
            if scalars is None:
                scalars = {_scalar_key(item) for item in document if _is_scalar(item)}
            if _scalar_key(wanted) not in scalars:
                return False
        else:
            if containers is None:
                containers = [item for item in document if not _is_scalar(item)]
            if not any(_contains(item, wanted) for item in containers):
                return False
    return True


def _array_has_scalar(document: list[Any] | tuple[Any, ...], key: _ScalarKey) -> bool:
    """Whether a scalar element of the array equals the scalar ``key`` names."""
    return any(_is_scalar(item) and _scalar_key(item) == key for item in document)


def _is_object(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_array(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list | tuple)


def _scalar_key(value: Any) -> _ScalarKey:
    """The value's JSON type and a value equal to another's iff PostgreSQL's is.

    ``bool`` is tested before ``int`` because Python's ``True == 1``. Numbers
    become exact decimals (an ``int`` already is one: ``int`` and ``Decimal``
    compare and hash by exact value); a float becomes the decimal of its JSON
    text.
    """
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, int):
        return ("number", int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"JSON has no number {value!r}")
        return ("number", Decimal(repr(value)))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"JSON has no number {value!r}")
        return ("number", value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")
