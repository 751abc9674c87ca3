"""Kafka clients configured the way every service needs them (confluent-kafka)."""

from shared.kafka.admin import ensure_topics
from shared.kafka.consumer import BatchConsumer
from shared.kafka.producer import AsyncProducer, EventProducer, Record

__all__ = ["AsyncProducer", "BatchConsumer", "EventProducer", "Record", "ensure_topics"]
