"""Session-wide real servers: a Kafka-protocol broker, PostgreSQL, a Vault-API server.

They start on first use and stop when the session ends; logs go to
``.stack/test-logs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from devstack.kafka import start_broker
from devstack.postgres import remove_data, start_postgres
from devstack.processes import ManagedProcess
from devstack.vault import start_vault
from shared.vault import VaultClient, VaultSettings

LOG_DIR = Path(__file__).resolve().parent.parent / ".stack" / "test-logs"

# Consumer settings that let groups form and rebalance quickly in tests.
FAST_KAFKA_CLIENT = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "fetch.wait.max.ms": 20,
}


@dataclass(frozen=True)
class VaultServer:
    address: str
    token: str
    process: ManagedProcess

    def client(self) -> VaultClient:
        """A client with the root token."""
        return VaultClient(
            VaultSettings(
                vault_addr=self.address,
                vault_auth_method="token",
                vault_token=SecretStr(self.token),
            )
        )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    process, url, root = start_postgres(LOG_DIR)
    yield url
    process.stop()
    remove_data(root)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    process, bootstrap = start_broker(LOG_DIR)
    yield bootstrap
    process.stop()


@pytest.fixture(scope="session")
def vault() -> Iterator[VaultServer]:
    process, address, token = start_vault(LOG_DIR)
    yield VaultServer(address, token, process)
    process.stop()
