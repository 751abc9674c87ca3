"""Runs the recorder: ``python -m services.recorder``."""

from __future__ import annotations

from services.recorder.service import Recorder
from services.recorder.settings import RecorderSettings
from shared.db import open_pool
from shared.kafka import BatchConsumer
from shared.lifecycle import database_answers, run_consumer
from shared.logging import configure_logging
from shared.topics import Topics


def main() -> None:
    settings = RecorderSettings()
    configure_logging(settings.log_level, settings.log_format)
    topics = Topics.with_prefix(settings.topic_prefix)
    consumer = BatchConsumer(
        settings.kafka_consumer_settings(),
        settings.recorder_group,
        [topics.messages, topics.run_events],
        batch_size=settings.recorder_batch_size,
    )
    pool = open_pool(
        settings.database_url.get_secret_value(),
        settings.database_pool_size,
        "recorder",
    )
    try:
        run_consumer(
            consumer, Recorder(pool, topics).handle, settings, database_answers(pool)
        )
    finally:
        pool.close()


if __name__ == "__main__":
    main()
