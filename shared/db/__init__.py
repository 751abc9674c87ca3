"""PostgreSQL access: connections, the schema and its migrations."""

from shared.db.connection import connect, open_pool
from shared.db.migrations import apply_migrations

__all__ = ["apply_migrations", "connect", "open_pool"]
