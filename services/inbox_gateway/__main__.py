"""Runs the inbox gateway: ``python -m services.inbox_gateway``."""

from __future__ import annotations

import httpx
import uvicorn

from services.inbox_gateway import metrics
from services.inbox_gateway.app import Gateway, create_app
from services.inbox_gateway.replays import ReplayGuard
from services.inbox_gateway.settings import GatewaySettings
from shared.catalog import ProjectCatalog
from shared.inbox_auth import SigningKeys
from shared.kafka import AsyncProducer
from shared.kafka.producer import producer_config
from shared.lifecycle import cached
from shared.logging import configure_logging
from shared.ops import OpsServer
from shared.topics import ENVELOPE_OVERHEAD_BYTES
from shared.vault import VaultClient


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_format)
    database_url = settings.database_url.get_secret_value()
    catalog = ProjectCatalog(
        database_url,
        settings.catalog_refresh_s,
        signing_keys=SigningKeys(VaultClient(settings)),
    ).start()
    metrics.SIGNING_SECRETS_UNOPENED.set_function(
        lambda: catalog.snapshot.unopened_secrets
    )
    replays = ReplayGuard(
        database_url,
        settings.database_pool_size,
        settings.inbox_ack_timeout_s,
        settings.inbox_hmac_tolerance_s,
    ).open()
    producer = AsyncProducer(
        producer_config(
            settings.kafka_config(),
            settings.inbox_max_body_bytes + ENVELOPE_OVERHEAD_BYTES,
            settings.inbox_ack_timeout_s,
        )
    )
    gateway = Gateway(settings, catalog, producer, replays)
    app = create_app(gateway)
    # Alive means the event loop answers on the main port, not merely that
    # the operations thread does.
    own_health = f"http://127.0.0.1:{settings.port}/healthz"
    OpsServer(
        settings,
        is_alive=lambda: httpx.get(own_health, timeout=2).status_code == 200,
        is_ready=cached(gateway.is_ready_now),
    ).start()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
