"""Runs the API: ``python -m services.api``."""

from __future__ import annotations

from collections.abc import Callable
from types import FrameType

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
    app = create_app(settings, pool, vault, producer)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    ApiServer(config, on_exit=app.state.activity.close).run()


class ApiServer(uvicorn.Server):
    """Uvicorn, ending the console's event streams as soon as it is asked to
    stop: shutdown waits for open responses, and those would never end."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._on_exit()
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    main()
