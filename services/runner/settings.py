"""Settings of the runner."""

from __future__ import annotations

import socket

from pydantic import Field

from shared.settings import KafkaSettings, LimitSettings


class RunnerSettings(KafkaSettings, LimitSettings):
    """Everything the runner reads from its environment."""

    runner_group: str = "openfn-runner"
    runner_name: str = Field(default_factory=socket.gethostname)
    runner_concurrency: int = Field(
        default=2, ge=1, description="Runs executed at once."
    )
    run_timeout_s: float = Field(default=100.0, gt=0)
