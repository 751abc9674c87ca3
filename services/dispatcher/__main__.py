"""Runs the dispatcher: ``python -m services.dispatcher``."""

from __future__ import annotations

from services.dispatcher.service import Dispatcher
from services.dispatcher.settings import DispatcherSettings
from shared.catalog import ProjectCatalog
from shared.kafka import BatchConsumer, EventProducer
from shared.kafka.producer import producer_config
from shared.lifecycle import run_consumer
from shared.logging import configure_logging
from shared.topics import Topics


def main() -> None:
    settings = DispatcherSettings()
    configure_logging(settings.log_level, settings.log_format)
    topics = Topics.with_prefix(settings.topic_prefix)
    sizes = topics.max_message_bytes(
        settings.inbox_max_body_bytes, settings.state_max_bytes
    )
    catalog = ProjectCatalog(
        settings.database_url.get_secret_value(), settings.catalog_refresh_s
    ).start()
    producer = EventProducer(
        producer_config(settings.kafka_config(), sizes[topics.run_requests], 30.0)
    )
    consumer = BatchConsumer(
        settings.kafka_consumer_settings(),
        settings.dispatcher_group,
        [topics.messages],
        batch_size=settings.dispatcher_batch_size,
    )
    run_consumer(consumer, Dispatcher(catalog, producer, topics).handle)
    producer.close()
    catalog.stop()


if __name__ == "__main__":
    main()
