"""Connections to PostgreSQL that return rows as dictionaries."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

DEPLOY_CHANNEL = "openfn_deployments"


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
