"""Connections to PostgreSQL that return rows as dictionaries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

DEPLOY_CHANNEL = "openfn_deployments"
ACTIVITY_CHANNEL = "openfn_activity"
"""Carries the id of a project whose messages, runs or dead letters changed."""


def notify_activity(conn: psycopg.Connection[Any], project_ids: Iterable[UUID]) -> None:
    """Tell listeners, once the transaction commits, that these projects changed."""
    for project_id in set(project_ids):
        conn.execute("SELECT pg_notify(%s, %s)", (ACTIVITY_CHANNEL, str(project_id)))


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[DictRow]:
    """One connection whose rows are dicts."""
    return psycopg.connect(url, autocommit=autocommit, row_factory=dict_row)


def open_pool(
    url: str, size: int, name: str
) -> ConnectionPool[psycopg.Connection[DictRow]]:
    """A pool of dict-row connections, opened and checked before it is returned."""
    kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": True}
    pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        kwargs=kwargs,
        name=name,
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool
