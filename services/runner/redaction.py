"""Hiding a run's credential in what the run writes: its logs and its error.

Both the worker and the engine apply it, so a worker that a job tampered with
still cannot get a credential value into a stored run.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from urllib.parse import quote

from shared.model import JsonObject

MASK = "***"
MIN_SECRET_CHARS = 4
"""Shorter values would mask ordinary words and numbers all over the logs."""

# Credential keys whose values, joined by a colon, make an HTTP Basic token.
_USER_KEYS = ("username", "user")
_PASSWORD_KEY = "password"  # noqa: S105 - a key name, not a password


class Redactor:
    """Replaces every form of every credential value in a text by ``***``.

    A value is every string of at least four characters anywhere in the
    credential; its forms are the value itself, each of its lines, its
    JSON-, ``repr``- and URL-escaped forms, and its base64 forms (standard and
    URL-safe, with and without padding). A ``user:password`` pair counts as a
    value too, as an HTTP Basic header carries it in base64.
    """

    def __init__(self, credential: JsonObject | None) -> None:
        forms = {form for value in _secrets(credential) for form in _forms(value)}
        forms = {form for form in forms if len(form) >= MIN_SECRET_CHARS}
        # Longest first, so a value's base64 wins over a value inside it.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if forms else None

    def __call__(self, text: str) -> str:
        """``text`` with every credential form masked."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def _secrets(credential: object) -> Iterator[str]:
    if isinstance(credential, str):
        yield credential
    elif isinstance(credential, dict):
        yield from _basic_pairs(credential)
        for value in credential.values():
            yield from _secrets(value)
    elif isinstance(credential, list):
        for item in credential:
            yield from _secrets(item)


def _basic_pairs(credential: JsonObject) -> Iterator[str]:
    password = credential.get(_PASSWORD_KEY)
    for key in _USER_KEYS:
        user = credential.get(key)
        if isinstance(user, str) and isinstance(password, str):
            yield f"{user}:{password}"


def _forms(value: str) -> Iterator[str]:
    yield value
    yield from value.splitlines()
    yield json.dumps(value)[1:-1]
    yield json.dumps(value, ensure_ascii=False)[1:-1]
    yield repr(value)[1:-1]
    yield quote(value, safe="")
    yield from _base64_forms(value)


def _base64_forms(value: str) -> Iterator[str]:
    raw = value.encode("utf-8", "surrogatepass")
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        yield text
        yield text.rstrip("=")
