"""Settings of the runner."""

from __future__ import annotations

import os
import socket

from pydantic import Field

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
