"""Settings of the recorder."""

from __future__ import annotations

from pydantic import Field

from shared.ops import OpsSettings
from shared.settings import KafkaSettings, PostgresSettings


class RecorderSettings(KafkaSettings, PostgresSettings, OpsSettings):
    """Everything the recorder reads from its environment."""

    recorder_group: str = "openfn-recorder"
    recorder_batch_size: int = Field(default=500, ge=1)
