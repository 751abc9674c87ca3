"""Settings of the API."""

from __future__ import annotations

from pydantic import Field

from shared.ops import OpsSettings
from shared.settings import KafkaSettings, LimitSettings, PostgresSettings
from shared.vault import VaultSettings


class ApiSettings(
    KafkaSettings, PostgresSettings, VaultSettings, LimitSettings, OpsSettings
):
    """Everything the API reads from its environment."""

    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
    port: int = 8001
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Proxies (addresses or networks, comma-separated, or *)"
        " whose X-Forwarded-For and X-Forwarded-Proto are believed: the client"
        " address the sign-in brake counts by, and the scheme.",
    )
    inbox_public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the inbox gateway as senders reach it.",
    )
    project_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    run_gate_window_s: float = Field(
        default=10.0,
        ge=0,
        description="A message/job pair runs at most once per window.",
    )
    cron_state_max_bytes: int = Field(
        default=50_000,
        ge=0,
        description="A cron job's cursor larger than this starts its run from {}.",
    )
    api_ack_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long a re-run, reprocess or run now waits for the broker.",
    )
    api_retry_after_s: int = Field(
        default=5, ge=1, description="Retry-After sent when the broker did not answer."
    )
    history_csv_max_rows: int = Field(
        default=100_000,
        ge=1,
        description="Most runs one CSV export writes; `before` continues it.",
    )
    console_session_idle_s: float = Field(
        default=12 * 3600,
        gt=0,
        description="A console session unused this long ends.",
    )
    console_session_lifetime_s: float = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="A console session ends this long after sign-in, however used.",
    )
    console_secure_cookies: bool | None = Field(
        default=None,
        description="Mark console cookies Secure: true, false, or unset to mark"
        " them when the request came over HTTPS.",
    )
    console_refresh_s: float = Field(
        default=3.0,
        gt=0,
        description="How often an open console page fetches itself while it has"
        " no activity stream, and while it waits for a run to start.",
    )
