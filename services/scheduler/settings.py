"""Settings of the scheduler."""

from __future__ import annotations

from pydantic import Field

from shared.ops import OpsSettings
from shared.settings import KafkaSettings, LimitSettings, PostgresSettings


class SchedulerSettings(KafkaSettings, PostgresSettings, LimitSettings, OpsSettings):
    """Everything the scheduler reads from its environment."""

    scheduler_interval_s: float = Field(
        default=1.0, gt=0, description="Pause between two rounds of the three tasks."
    )
    cron_misfire_grace_s: float = Field(
        default=120.0,
        ge=0,
        description="How late a tick may fire under `missed: skip` before it counts "
        "as missed.",
    )
    cron_state_max_bytes: int = Field(
        default=50_000,
        ge=0,
        description="Largest cursor (compact JSON) a cron run starts from; a larger "
        "one is dropped for {}.",
    )
    run_timeout_s: float = Field(
        default=100.0, gt=0, description="The runners' run timeout."
    )
    lost_run_grace_s: float = Field(
        default=30.0,
        ge=0,
        description="How long past the run timeout an unfinished run is declared lost.",
    )
    abort_grace_s: float = Field(
        default=30.0,
        ge=0,
        description="How long after an abort request a run still unfinished is"
        " reported aborted without its runner.",
    )
