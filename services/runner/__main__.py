"""Runs a runner: ``python -m services.runner``."""

from __future__ import annotations

from services.runner.engine import ProcessEngine
from services.runner.service import Runner
from services.runner.settings import RunnerSettings
from shared.kafka import BatchConsumer, EventProducer
from shared.kafka.producer import producer_config
from shared.lifecycle import run_consumer
from shared.logging import configure_logging
from shared.topics import Topics


def main() -> None:
    settings = RunnerSettings()
    configure_logging(settings.log_level, settings.log_format)
    topics = Topics.with_prefix(settings.topic_prefix)
    sizes = topics.max_message_bytes(
        settings.inbox_max_body_bytes, settings.state_max_bytes
    )
    engine = ProcessEngine(log_max_bytes=settings.run_log_max_bytes)
    producer = EventProducer(
        producer_config(settings.kafka_config(), sizes[topics.run_events], 30.0)
    )
    consumer = BatchConsumer(
        settings.kafka_consumer_settings(),
        settings.runner_group,
        [topics.run_requests],
        batch_size=settings.runner_concurrency,
    )
    runner = Runner(
        engine,
        producer,
        topics,
        name=settings.runner_name,
        concurrency=settings.runner_concurrency,
        timeout_s=settings.run_timeout_s,
    )
    try:
        run_consumer(consumer, runner.handle)
    finally:
        runner.close()
        producer.close()


if __name__ == "__main__":
    main()
