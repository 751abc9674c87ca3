"""Settings of the runner."""

from __future__ import annotations

import os
import socket

from pydantic import Field, model_validator

from shared.ops import OpsSettings
from shared.settings import KafkaSettings, LimitSettings, MiB, PostgresSettings
from shared.vault import VaultSettings


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class RunnerSettings(
    KafkaSettings, PostgresSettings, VaultSettings, LimitSettings, OpsSettings
):
    """Everything the runner reads from its environment."""

    runner_group: str = "openfn-runner"
    runner_name: str = Field(
        default_factory=_default_name, description="Unique per runner process."
    )
    runner_concurrency: int = Field(
        default=2, ge=1, description="Runs executed at once."
    )
    run_timeout_s: float = Field(default=100.0, gt=0)
    run_memory_limit_bytes: int = Field(default=512 * MiB, ge=64 * MiB)
    worker_max_runs: int = Field(default=1000, ge=1)
    credential_cache_s: float = Field(default=30.0, ge=0)
    retry_max_backoff_s: float = Field(default=30.0, gt=0)
    claim_heartbeat_s: float = Field(
        default=10.0, gt=0, description="How often a runner renews its run claims."
    )
    claim_stale_s: float = Field(
        default=60.0,
        gt=0,
        description="A claim not renewed for this long, on a run whose start was"
        " never recorded, is taken over by the runner that receives it again.",
    )
    abort_poll_s: float = Field(
        default=1.0,
        gt=0,
        description="How often a runner executing runs asks whether any of them"
        " was aborted.",
    )

    @model_validator(mode="after")
    def _stale_after_several_beats(self) -> RunnerSettings:
        if self.claim_stale_s < 3 * self.claim_heartbeat_s:
            raise ValueError(
                "claim_stale_s must be at least three claim heartbeats, so one"
                " slow renewal does not make a live runner's claim look stale"
            )
        return self
