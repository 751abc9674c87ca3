"""Turns a message body into JSON by its content type: JSON, XML or a form post.

The gateway uses it to refuse what will not parse; the consumers use it to get
the same JSON the gateway saw.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs
from xml.parsers.expat import ExpatError

import xmltodict
from pydantic_core import from_json

from shared.errors import InvalidBodyError, UnsupportedContentTypeError


class BodyKind(StrEnum):
    """The body formats an inbox accepts."""

    JSON = "json"
    XML = "xml"
    FORM = "form"


def body_kind(content_type: str | None) -> BodyKind:
    """Which format a Content-Type header names; raises for the unsupported."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return BodyKind.JSON
    if media in ("application/xml", "text/xml") or media.endswith("+xml"):
        return BodyKind.XML
    if media == "application/x-www-form-urlencoded":
        return BodyKind.FORM
    raise UnsupportedContentTypeError(
        f"content type {media or '(none)'!r} is not accepted; send application/json, "
        "application/xml or application/x-www-form-urlencoded"
    )


def parse_body(kind: BodyKind, raw: bytes) -> Any:
    """The body as a JSON value; raises InvalidBodyError when it does not parse."""
    if kind is BodyKind.JSON:
        return _parse_json(raw)
    if kind is BodyKind.XML:
        return _parse_xml(raw)
    return _parse_form(raw)


def _parse_json(raw: bytes) -> Any:
    try:
        value = from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        raise InvalidBodyError(f"the body is not valid JSON: {exc}") from exc
    if b"\\u0000" in raw:
        _refuse_nul(value)
    return value


def _parse_xml(raw: bytes) -> Any:
    try:
        return xmltodict.parse(raw, disable_entities=True)
    except (ExpatError, ValueError) as exc:
        raise InvalidBodyError(f"the body is not well-formed XML: {exc}") from exc


def _parse_form(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
        pairs = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidBodyError(f"the body is not a valid form post: {exc}") from exc
    form = {
        key: values[0] if len(values) == 1 else values for key, values in pairs.items()
    }
    _refuse_nul(form)
    return form


def _refuse_nul(value: Any) -> None:
    """PostgreSQL's jsonb cannot hold U+0000, so such a body is refused up front."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidBodyError(
                "the body contains the character U+0000, which is not stored"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key)
            _refuse_nul(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_nul(item)
