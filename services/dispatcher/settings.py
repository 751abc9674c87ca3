"""Settings of the dispatcher."""

from __future__ import annotations

from pydantic import Field

from shared.settings import KafkaSettings, LimitSettings, PostgresSettings


class DispatcherSettings(KafkaSettings, PostgresSettings, LimitSettings):
    """Everything the dispatcher reads from its environment."""

    dispatcher_group: str = "openfn-dispatcher"
    dispatcher_batch_size: int = Field(default=200, ge=1)
