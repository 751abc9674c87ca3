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

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from shared.kafka.metrics import POLL_AGE, LagReporter
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
        self._lag = LagReporter(self._consumer, group_id)
        self.last_poll_monotonic = time.monotonic()
        self.group_id = group_id

    @property
    def has_joined(self) -> bool:
        """True once the group has assigned this member its partitions."""
        return self._assigned.is_set()

    def poll_age_s(self) -> float:
        """Seconds since the poll loop last turned."""
        age = time.monotonic() - self.last_poll_monotonic
        POLL_AGE.labels(self.group_id).set(age)
        return age

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
        batch = self._next_batch()
        self.last_poll_monotonic = time.monotonic()
        self._lag.maybe_report()
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

    def _next_batch(self) -> list[Message]:
        """Wait for one record, then take what else is already fetched.

        ``consume`` alone would wait for a full batch or the whole timeout,
        adding that wait to every record's latency when traffic is light.
        """
        first = self._consumer.poll(self._poll_timeout_s)
        if first is None:
            return []
        if self._batch_size == 1:
            return [first]
        return [first, *self._consumer.consume(self._batch_size - 1, 0)]

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
            topic, partition, offset = _position(record)
            first[(topic, partition)] = min(
                first.get((topic, partition), offset), offset
            )
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                log.warning(
                    "consumer.seek_failed",
                    topic=topic,
                    partition=partition,
                    error=str(exc),
                )

    def _commit(self, records: Sequence[Message]) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for record in records:
            topic, partition, offset = _position(record)
            key = (topic, partition)
            next_offsets[key] = max(next_offsets.get(key, 0), offset + 1)
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


def _position(record: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a record that is not an error."""
    topic, partition, offset = record.topic(), record.partition(), record.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("a consumed record has no position")
    return topic, partition, offset
