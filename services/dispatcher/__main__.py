"""Runs the dispatcher: ``python -m services.dispatcher``."""

from __future__ import annotations

from services.dispatcher.service import Dispatcher, DispatchRules
from services.dispatcher.settings import DispatcherSettings
from shared.catalog import ProjectCatalog
from shared.db import open_pool
from shared.kafka import BatchConsumer, EventProducer
from shared.kafka.producer import producer_config
from shared.lifecycle import database_answers, run_consumer
from shared.logging import configure_logging
from shared.retries import RetryPolicy
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
        [topics.messages, topics.run_events],
        batch_size=settings.dispatcher_batch_size,
    )
    pool = open_pool(
        settings.database_url.get_secret_value(),
        settings.database_pool_size,
        "dispatcher",
    )
    rules = DispatchRules(
        gate_window_s=settings.run_gate_window_s,
        chain_max_depth=settings.chain_max_depth,
        retry_policy=RetryPolicy(
            platform_attempts=settings.retry_platform_attempts,
            base_delay_s=settings.retry_base_delay_s,
            max_delay_s=settings.retry_max_delay_s,
        ),
    )
    try:
        dispatcher = Dispatcher(catalog, producer, pool, topics, rules)
        run_consumer(consumer, dispatcher.handle, settings, database_answers(pool))
    finally:
        producer.close()
        catalog.stop()
        pool.close()


if __name__ == "__main__":
    main()
