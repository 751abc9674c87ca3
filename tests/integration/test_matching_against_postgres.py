"""``shared.matching.contains`` agrees with PostgreSQL's ``jsonb @>``.

Hypothesis draws JSON documents and patterns, mostly patterns cut from their
document (so that containment holds often) with some parts swapped for
near-misses: ``1`` for ``1.0``, ``True`` for ``1``, ``"1"`` for ``1``, a
scalar for a one-element array. Each example is a batch of pairs that one query
sends to a real server, whose answer is the oracle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal, localcontext
from typing import Any, TypeAlias

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.matching import contains

pytestmark = pytest.mark.integration

Draw: TypeAlias = Callable[[st.SearchStrategy[Any]], Any]

# --- scalars -----------------------------------------------------------------

# PostgreSQL's text cannot hold NUL, and the utf-8 codec rules out lone
# surrogates, which PostgreSQL's JSON parser refuses.
_TEXT_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")

# Few distinct short strings, so that keys and values collide often.
_FAMILIAR_STRINGS = st.sampled_from(
    ["", "a", "b", "A", "1", "true", "null", "\u00e9", "e\u0301", "\U0001f600"]
)
_STRINGS = _FAMILIAR_STRINGS | st.text(_TEXT_CHARACTERS, max_size=6)
_KEYS = st.sampled_from(["a", "b", "c", "@name", "form", "\u00e9"]) | _STRINGS

_INTEGERS = (
    st.integers(-3, 3)
    | st.sampled_from([2**53, 2**53 + 1, 10**23, 99999999999999991611392])
    | st.integers(-(2**80), 2**80)
)
_FLOATS = st.sampled_from(
    [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 0.1, 1e23, 9007199254740992.0, 1.5e300, 5e-324]
) | st.floats(allow_nan=False, allow_infinity=False)
_DECIMALS = st.sampled_from(
    [Decimal("1.00"), Decimal("1E+2"), Decimal("0.10"), Decimal("-0"), Decimal("2.5")]
) | st.decimals(
    min_value=-(10**6), max_value=10**6, allow_nan=False, allow_infinity=False
)

_SCALARS = st.one_of(st.none(), st.booleans(), _INTEGERS, _FLOATS, _DECIMALS, _STRINGS)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4)


_JSON = st.recursive(_SCALARS, _containers, max_leaves=16)

# Shaped like message bodies: objects, often holding arrays of scalars.
_BODIES = st.dictionaries(
    _KEYS,
    st.lists(_SCALARS, min_size=1, max_size=4) | _JSON,
    min_size=1,
    max_size=4,
)


# --- patterns cut from a document ------------------------------------------


def _respellings(value: Any) -> list[Any]:
    """Scalars PostgreSQL holds equal to ``value`` though Python types differ."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return []
    if isinstance(value, int):
        spellings: list[Any] = [Decimal(value), Decimal(f"{value}.00")]
        if abs(value) <= 2**53:
            spellings.append(float(value))
        return spellings
    exact = Decimal(repr(value)) if isinstance(value, float) else value
    with localcontext() as context:
        context.prec = 1000
        spellings = [exact, exact.normalize()]
    if exact == exact.to_integral_value():
        spellings.append(int(exact))
    return spellings


def _confusions(value: Any) -> list[Any]:
    """Scalars a careless matcher might take for ``value``, and near misses."""
    if isinstance(value, bool):
        options: list[Any] = [not value, int(value), float(value), str(value).lower()]
    elif isinstance(value, int | float | Decimal):
        options = [value + 1, str(value), json.dumps(float(value))]
        if value in (0, 1):
            options.append(bool(value))  # Python's 1 == True; JSON's does not
    elif isinstance(value, str):
        options = [value.upper(), value + " ", None]
    else:
        options = [False, 0, ""]
    return options


class _Budget:
    """How many deliberate departures from the document a pattern may take."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining

    def spend(self, draw: Draw) -> bool:
        if self.remaining and draw(st.integers(0, 2)) == 0:
            self.remaining -= 1
            return True
        return False


def _cut(draw: Draw, value: Any, budget: _Budget) -> Any:
    """A pattern from part of ``value``; contained unless the budget is spent."""
    if budget.spend(draw):
        return _twist(draw, value, budget)
    return _part(draw, value, budget)


def _part(draw: Draw, value: Any, budget: _Budget) -> Any:
    """Some of a container's members, each cut in turn; a scalar respelled."""
    if isinstance(value, dict):
        keys = (
            draw(st.lists(st.sampled_from(sorted(value)), unique=True)) if value else []
        )
        return {key: _cut(draw, value[key], budget) for key in keys}
    if isinstance(value, list):
        picks = draw(st.lists(st.sampled_from(value), max_size=4)) if value else []
        return [_cut(draw, item, budget) for item in picks]
    return draw(st.sampled_from([value, *_respellings(value)]))


def _twist(draw: Draw, value: Any, budget: _Budget) -> Any:
    """A pattern for ``value`` that may well not be contained in it."""
    twist = draw(st.integers(0, 4))
    if twist == 0:
        return draw(_JSON)  # anything at all
    if isinstance(value, dict):
        return {**_part(draw, value, budget), draw(_KEYS): draw(_JSON)}
    if isinstance(value, list):
        if value and twist in (1, 2):
            # An element in place of its array: contained only at the top level.
            return _cut(draw, draw(st.sampled_from(value)), budget)
        return [*_part(draw, value, budget), draw(_JSON)]
    if twist == 1:
        return [value]  # wrapped in an array: no scalar contains an array
    return draw(st.sampled_from(_confusions(value)))


@st.composite
def _pairs(draw: Draw) -> tuple[Any, Any]:
    document = draw(_JSON | _BODIES)
    budget = _Budget(draw(st.integers(0, 2)))
    shape = draw(st.integers(0, 9))
    if shape == 0:
        pattern = draw(_JSON)
    elif shape in (1, 2) and isinstance(document, list) and document:
        # A top-level array may contain a bare scalar element.
        pattern = _cut(draw, draw(st.sampled_from(document)), budget)
    else:
        pattern = _cut(draw, document, budget)
    return document, pattern


# --- the oracle --------------------------------------------------------------


def _dump(value: Any) -> str:
    """JSON text for ``value``; a Decimal is written with all its digits."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        members = (f"{json.dumps(key)}: {_dump(item)}" for key, item in value.items())
        return "{" + ", ".join(members) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(item) for item in value) + "]"
    return json.dumps(value)


@pytest.fixture(scope="module")
def connection(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


def _postgres_contains(
    connection: psycopg.Connection[Any], pairs: list[tuple[Any, Any]]
) -> list[bool]:
    rows = connection.execute(
        "SELECT d::jsonb @> p::jsonb"
        " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(d, p, n)"
        " ORDER BY n",
        ([_dump(d) for d, _ in pairs], [_dump(p) for _, p in pairs]),
    ).fetchall()
    return [row[0] for row in rows]


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(pairs=st.lists(_pairs(), min_size=5, max_size=20))
def test_contains_agrees_with_postgres(
    connection: psycopg.Connection[Any], pairs: list[tuple[Any, Any]]
) -> None:
    expected = _postgres_contains(connection, pairs)
    for (document, pattern), want in zip(pairs, expected, strict=True):
        got = contains(document, pattern)
        assert got == want, (
            f"{_dump(document)} @> {_dump(pattern)}: PostgreSQL says {want}, "
            f"contains says {got}"
        )
