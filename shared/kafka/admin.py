"""Creates the platform's topics with the sizes they must accept."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from shared.logging import get_logger

log = get_logger(__name__)


def ensure_topics(
    config: dict[str, Any],
    max_message_bytes: dict[str, int],
    partitions: int,
    replication_factor: int,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create each missing topic; returns the names created. Existing ones are kept."""
    admin = AdminClient(config)
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            config={"max.message.bytes": str(size)},
        )
        for name, size in max_message_bytes.items()
        if name not in existing
    ]
    if not wanted:
        return []
    created: list[str] = []
    for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        else:
            created.append(name)
            log.info("topic.created", topic=name, partitions=partitions)
    return created
