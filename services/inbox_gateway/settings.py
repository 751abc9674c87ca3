"""Settings of the inbox gateway."""

from __future__ import annotations

from pydantic import Field

from shared.ops import OpsSettings
from shared.settings import KafkaSettings, LimitSettings, PostgresSettings
from shared.vault import VaultSettings


class GatewaySettings(
    KafkaSettings, PostgresSettings, VaultSettings, LimitSettings, OpsSettings
):
    """Everything the gateway reads from its environment; Vault opens inbox
    signing secrets."""

    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
    port: int = 8000
    inbox_ack_timeout_s: float = Field(default=5.0, gt=0)
    inbox_retry_after_s: int = Field(default=5, ge=1)
    # How far a signed request's webhook-timestamp may be from the gateway's
    # clock; also how long its webhook-id is remembered against replays.
    inbox_hmac_tolerance_s: int = Field(default=300, ge=1)
    inbox_dropped_headers: frozenset[str] = frozenset(
        {
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-api-key",
            "connection",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            "te",
            "trailer",
        }
    )
