"""Runs the inbox gateway: ``python -m services.inbox_gateway``."""

from __future__ import annotations

import uvicorn

from services.inbox_gateway.app import Gateway, create_app
from services.inbox_gateway.settings import GatewaySettings
from shared.catalog import ProjectCatalog
from shared.kafka import AsyncProducer
from shared.kafka.producer import producer_config
from shared.logging import configure_logging
from shared.topics import ENVELOPE_OVERHEAD_BYTES


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_format)
    catalog = ProjectCatalog(
        settings.database_url.get_secret_value(), settings.catalog_refresh_s
    ).start()
    producer = AsyncProducer(
        producer_config(
            settings.kafka_config(),
            settings.inbox_max_body_bytes + ENVELOPE_OVERHEAD_BYTES,
            settings.inbox_ack_timeout_s,
        )
    )
    app = create_app(Gateway(settings, catalog, producer))
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
