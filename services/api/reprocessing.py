"""Reprocessing: stored messages sent through trigger matching again.

A reprocessed message goes back on the messages topic as the gateway first
wrote it (same id, project, headers, content type and received time) with a
fresh reprocess id, so the dispatcher matches it against the jobs enabled now
and gives its runs new ids. The body is rebuilt from what the message store
kept: XML from its raw text, JSON and form posts from the parsed body.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from shared.bodies import BodyKind, body_kind
from shared.errors import PlatformError
from shared.events import Message

JSON_CONTENT_TYPE = "application/json"


class UnreplayableMessageError(PlatformError):
    """A stored message whose body cannot be rebuilt."""


def raw_body(content_type: str, body: Any, stored_raw: str | None) -> tuple[bytes, str]:
    """The body to send again and its content type, from a stored message.

    Raises:
        UnreplayableMessageError: An XML message was stored without its raw text.
    """
    kind = body_kind(content_type)
    if kind is BodyKind.XML:
        if stored_raw is None:
            raise UnreplayableMessageError("the XML message has no stored raw body")
        return stored_raw.encode("utf-8"), content_type
    if kind is BodyKind.FORM:
        return urlencode(body, doseq=True).encode("utf-8"), content_type
    # The parsed body is what triggers matched; its JSON text is equivalent.
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8"), JSON_CONTENT_TYPE


def reprocessed_message(
    row: dict[str, Any], revision: int, reprocess_id: UUID
) -> Message:
    """A stored message, ready to be written to the messages topic again.

    Args:
        row: The message as the store keeps it (``queries.messages_to_reprocess``).
        revision: The deployment revision now, so the dispatcher matches the
            message against jobs at least that recent.
        reprocess_id: Tells this reprocessing's runs apart from earlier ones.
    """
    body, content_type = raw_body(row["content_type"], row["body"], row["raw_body"])
    return Message(
        id=row["id"],
        project_id=row["project_id"],
        received_at=row["received_at"],
        content_type=content_type,
        headers=row["headers"],
        body=body,
        revision=revision,
        reprocess_id=reprocess_id,
    )
