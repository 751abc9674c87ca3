"""Settings of the dispatcher."""

from __future__ import annotations

from pydantic import Field

from shared.ops import OpsSettings
from shared.settings import KafkaSettings, LimitSettings, PostgresSettings


class DispatcherSettings(KafkaSettings, PostgresSettings, LimitSettings, OpsSettings):
    """Everything the dispatcher reads from its environment."""

    dispatcher_group: str = "openfn-dispatcher"
    dispatcher_batch_size: int = Field(default=200, ge=1)
    run_gate_window_s: float = Field(
        default=10.0,
        ge=0,
        description="A message/job pair runs at most once per window.",
    )
    chain_max_depth: int = Field(
        default=10, ge=1, description="Most flow and catch steps one run may lead to."
    )
    retry_platform_attempts: int = Field(default=5, ge=1)
    retry_base_delay_s: float = Field(default=10.0, gt=0)
    retry_max_delay_s: float = Field(default=600.0, gt=0)
