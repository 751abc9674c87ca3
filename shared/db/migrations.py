"""Applies the SQL files in ``migrations/`` in order, once each, under a lock."""

from __future__ import annotations

from importlib import resources

from shared.db.connection import connect
from shared.logging import get_logger

log = get_logger(__name__)

_LOCK_KEY = 7_340_021  # any constant; serialises concurrent migrators


def list_migrations() -> list[tuple[str, str]]:
    """(name, sql) of every migration file, sorted by name."""
    folder = resources.files("shared.db") / "migrations"
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [(entry.name, entry.read_text(encoding="utf-8")) for entry in files]


def apply_migrations(database_url: str) -> list[str]:
    """Bring the schema up to date; returns the names of the migrations applied."""
    applied: list[str] = []
    with connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            row["name"] for row in conn.execute("SELECT name FROM schema_migrations")
        }
        for name, sql in list_migrations():
            if name in done:
                continue
            with conn.transaction():
                conn.execute(sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (name) VALUES (%s)", (name,)
                )
            log.info("migration.applied", migration=name)
            applied.append(name)
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
