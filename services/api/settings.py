"""Settings of the API."""

from __future__ import annotations

from pydantic import Field

from shared.settings import PostgresSettings
from shared.vault import VaultSettings


class ApiSettings(PostgresSettings, VaultSettings):
    """Everything the API reads from its environment."""

    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
    port: int = 8001
    inbox_public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the inbox gateway as senders reach it.",
    )
    project_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
