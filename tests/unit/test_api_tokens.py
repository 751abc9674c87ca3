"""API tokens parse and hash as documented, and roles include those below them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from services.api.app import create_app
from services.api.settings import ApiSettings
from shared.auth import (
    Role,
    hash_token,
    is_last_use_stale,
    new_token,
    token_id_of,
)
from shared.kafka import AsyncProducer
from shared.vault import VaultClient

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_new_token_carries_its_public_id_and_is_random() -> None:
    first_id, first = new_token()
    second_id, second = new_token()

    assert token_id_of(first) == first_id
    assert first.startswith(f"ofn_{first_id}_")
    assert first != second
    assert first_id != second_id


def test_anything_but_a_well_formed_token_has_no_id() -> None:
    for text in ("", "ofn_", "ofn_0123456789ab_", "xyz_0123456789ab_s", "ofn_ABC_s"):
        assert token_id_of(text) is None


def test_the_hash_depends_on_every_character() -> None:
    _, token = new_token()
    changed = token[:-1] + ("B" if token.endswith("A") else "A")

    assert hash_token(token) == hash_token(token)
    assert hash_token(token) != hash_token(changed)


def test_a_use_is_written_down_at_most_once_a_minute() -> None:
    assert is_last_use_stale(None, NOW)
    assert not is_last_use_stale(NOW - timedelta(seconds=59), NOW)
    assert is_last_use_stale(NOW - timedelta(seconds=60), NOW)


def test_each_role_includes_those_below_it() -> None:
    assert Role.OWNER.includes(Role.ADMIN)
    assert Role.ADMIN.includes(Role.EDITOR)
    assert Role.EDITOR.includes(Role.VIEWER)
    assert Role.VIEWER.includes(Role.VIEWER)
    assert not Role.VIEWER.includes(Role.EDITOR)
    assert not Role.ADMIN.includes(Role.OWNER)


def test_every_api_route_asks_for_a_bearer_token() -> None:
    settings = ApiSettings()
    app = create_app(
        settings, cast(Any, None), VaultClient(settings), cast(AsyncProducer, None)
    )
    paths = app.openapi()["paths"]

    unguarded = [
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method, operation in operations.items()
        if path.startswith("/api/") and not operation.get("security")
    ]
    assert unguarded == []
    assert len(paths) > 10
