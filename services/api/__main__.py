"""Runs the API: ``python -m services.api``."""

from __future__ import annotations

import httpx
import uvicorn

from services.api.app import create_app
from services.api.inbox_auth_routes import seal_stored_secrets_in_background
from services.api.settings import ApiSettings
from shared.db import open_pool
from shared.kafka import AsyncProducer
from shared.kafka.producer import producer_config
from shared.lifecycle import database_answers
from shared.logging import configure_logging
from shared.ops import OpsServer
from shared.topics import Topics
from shared.vault import VaultClient


def main() -> None:
    settings = ApiSettings()
    configure_logging(settings.log_level, settings.log_format)
    pool = open_pool(
        settings.database_url.get_secret_value(), settings.database_pool_size, "api"
    )
    sizes = Topics.with_prefix(settings.topic_prefix).max_message_bytes(
        settings.inbox_max_body_bytes, settings.state_max_bytes
    )
    producer = AsyncProducer(
        producer_config(
            settings.kafka_config(), max(sizes.values()), settings.api_ack_timeout_s
        )
    )
    vault = VaultClient(settings)
    seal_stored_secrets_in_background(pool, vault)
    own_health = f"http://127.0.0.1:{settings.port}/healthz"
    OpsServer(
        settings,
        is_alive=lambda: httpx.get(own_health, timeout=2).status_code == 200,
        is_ready=database_answers(pool),
    ).start()
    uvicorn.run(
        create_app(settings, pool, vault, producer),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


if __name__ == "__main__":
    main()
