"""A consumer-group loop that commits a batch only after it has been handled.

Delivery is at least once: a batch whose handler fails is sought back and
handled again after a pause, and offsets are committed synchronously after the
handler returns. A commit that fails during a rebalance is logged and dropped;
the records come again to whoever owns the partition next, which is why every
handler is idempotent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from shared.logging import get_logger

log = get_logger(__name__)

Handler = Callable[[Sequence[Message]], None]


class BatchConsumer:
    """Polls batches from a consumer group and hands them to one handler."""

    def __init__(
        self,
        config: dict[str, Any],
        group_id: str,
        topics: Sequence[str],
        batch_size: int = 100,
        poll_timeout_s: float = 0.5,
        retry_backoff_s: float = 1.0,
    ) -> None:
        self._consumer = Consumer(
            {
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
            }
            | config
        )
        self._topics = list(topics)
        self._batch_size = batch_size
        self._poll_timeout_s = poll_timeout_s
        self._retry_backoff_s = retry_backoff_s
        self._assigned = threading.Event()
        self.last_poll_monotonic = time.monotonic()
        self.group_id = group_id

    @property
    def has_joined(self) -> bool:
        """True once the group has assigned this member its partitions."""
        return self._assigned.is_set()

    def run(self, handle: Handler, stop: threading.Event) -> None:
        """Poll, handle and commit until ``stop`` is set, then leave the group."""
        self._consumer.subscribe(
            self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        try:
            while not stop.is_set():
                self._poll_once(handle, stop)
        finally:
            self._consumer.close()

    def _poll_once(self, handle: Handler, stop: threading.Event) -> None:
        batch = self._consumer.consume(self._batch_size, self._poll_timeout_s)
        self.last_poll_monotonic = time.monotonic()
        records = [record for record in batch if not self._is_error(record)]
        if not records:
            return
        try:
            handle(records)
        except Exception:
            log.exception("batch.failed", group=self.group_id, records=len(records))
            self._rewind(records)
            stop.wait(self._retry_backoff_s)
            return
        self._commit(records)

    def _is_error(self, record: Message) -> bool:
        error = record.error()
        if error is None:
            return False
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer.error", group=self.group_id, error=str(error))
        return True

    def _rewind(self, records: Sequence[Message]) -> None:
        """Seek every partition of the batch back to its first record."""
        first: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic(), record.partition())
            first[key] = min(first.get(key, record.offset()), record.offset())
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                log.warning("consumer.seek_failed", topic=topic, partition=partition, error=str(exc))

    def _commit(self, records: Sequence[Message]) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic(), record.partition())
            next_offsets[key] = max(next_offsets.get(key, 0), record.offset() + 1)
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("offset.commit_failed", group=self.group_id, error=str(exc))

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned.set()
        log.info("partitions.assigned", group=self.group_id, partitions=len(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions.revoked", group=self.group_id, partitions=len(partitions))
