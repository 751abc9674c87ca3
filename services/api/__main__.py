"""Runs the API: ``python -m services.api``."""

from __future__ import annotations

import uvicorn

from services.api.app import create_app
from services.api.settings import ApiSettings
from shared.db import open_pool
from shared.logging import configure_logging
from shared.vault import VaultClient


def main() -> None:
    settings = ApiSettings()
    configure_logging(settings.log_level, settings.log_format)
    pool = open_pool(
        settings.database_url.get_secret_value(), settings.database_pool_size, "api"
    )
    uvicorn.run(
        create_app(settings, pool, VaultClient(settings)),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
