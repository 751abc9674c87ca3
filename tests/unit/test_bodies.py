"""Message bodies are parsed by their content type, or refused with a reason."""

from __future__ import annotations

import pytest

from shared.bodies import BodyKind, body_kind, parse_body
from shared.errors import InvalidBodyError, UnsupportedContentTypeError


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json", BodyKind.JSON),
        ("application/json; charset=utf-8", BodyKind.JSON),
        ("application/vnd.api+json", BodyKind.JSON),
        ("application/xml", BodyKind.XML),
        ("text/xml; charset=utf-8", BodyKind.XML),
        ("application/atom+xml", BodyKind.XML),
        ("application/x-www-form-urlencoded", BodyKind.FORM),
    ],
)
def test_accepted_content_types_are_recognised(
    content_type: str, kind: BodyKind
) -> None:
    assert body_kind(content_type) is kind


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "image/png", "multipart/mixed"]
)
def test_other_content_types_are_refused(content_type: str | None) -> None:
    with pytest.raises(UnsupportedContentTypeError):
        body_kind(content_type)


def test_json_keeps_numbers_exact() -> None:
    body = parse_body(
        BodyKind.JSON, b'{"a": 1.5, "big": 123456789012345678901234567890}'
    )
    assert body == {"a": 1.5, "big": 123456789012345678901234567890}


@pytest.mark.parametrize("raw", [b"", b"{", b'{"a": NaN}', b"[1,]", b"\xff"])
def test_malformed_json_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidBodyError):
        parse_body(BodyKind.JSON, raw)


def test_json_with_a_nul_character_is_refused_because_it_cannot_be_stored() -> None:
    with pytest.raises(InvalidBodyError, match="U\\+0000"):
        parse_body(BodyKind.JSON, b'{"a": ["x\\u0000y"]}')


def test_xml_attributes_become_at_keys() -> None:
    body = parse_body(BodyKind.XML, b'<form name="Registration"><age>4</age></form>')
    assert body == {"form": {"@name": "Registration", "age": "4"}}


@pytest.mark.parametrize(
    "raw",
    [
        b"<a>",
        b"not xml",
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
    ],
)
def test_malformed_or_entity_bearing_xml_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidBodyError):
        parse_body(BodyKind.XML, raw)


def test_form_fields_repeat_as_lists() -> None:
    body = parse_body(BodyKind.FORM, b"name=Amina&tag=a&tag=b&empty=")
    assert body == {"name": "Amina", "tag": ["a", "b"], "empty": ""}


def test_a_malformed_form_is_refused() -> None:
    with pytest.raises(InvalidBodyError):
        parse_body(BodyKind.FORM, b"\xff\xfe=1")
