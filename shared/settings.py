"""Typed settings shared by the services, read from ``OPENFN_*`` environment variables.

Each service composes the groups it needs into one settings class and reads it
once in its ``main()``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class BaseServiceSettings(BaseSettings):
    """Common options: logging and where to find the topics."""

    model_config = SettingsConfigDict(env_prefix="OPENFN_", extra="ignore")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    topic_prefix: str = "openfn."


class KafkaSettings(BaseServiceSettings):
    """How to reach the Kafka cluster; TLS and SASL are optional."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal[
        "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"
    ] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None
    kafka_client_config: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra librdkafka properties for every client, as a JSON object.",
    )
    kafka_consumer_config: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra librdkafka properties for consumers only, as a JSON object.",
    )
    kafka_partitions: int = Field(default=6, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)

    @field_validator("kafka_client_config", "kafka_consumer_config", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def kafka_config(self) -> dict[str, Any]:
        """The librdkafka properties every client of this service starts from."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            config["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            config["ssl.ca.location"] = self.kafka_ssl_ca_location
        return config | self.kafka_client_config

    def kafka_consumer_settings(self) -> dict[str, Any]:
        """The librdkafka properties every consumer of this service starts from."""
        return self.kafka_config() | self.kafka_consumer_config


class PostgresSettings(BaseServiceSettings):
    """How to reach PostgreSQL."""

    database_url: SecretStr = SecretStr("postgresql://openfn@127.0.0.1:5432/openfn")
    database_pool_size: int = Field(default=4, ge=1)
    catalog_refresh_s: float = Field(
        default=5.0,
        gt=0,
        description="How often a service re-reads deployed projects if it missed a "
        "change notification.",
    )


class LimitSettings(BaseServiceSettings):
    """Size limits that more than one service must agree on."""

    inbox_max_body_bytes: int = Field(default=8 * MiB, ge=1024)
    state_max_bytes: int = Field(default=10 * MiB, ge=1024)
    run_log_max_bytes: int = Field(default=1 * MiB, ge=1024)
