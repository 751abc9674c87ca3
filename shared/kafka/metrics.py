"""Consumer health as metrics: lag per partition and how long since the last poll.

Lag is the log end offset minus the group's committed offset, read from the
broker every ``interval_s``; it is what autoscaling and the "falling behind"
alerts watch.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import Gauge

from shared.logging import get_logger

log = get_logger(__name__)

CONSUMER_LAG = Gauge(
    "openfn_consumer_lag_records",
    "Log end offset minus the group's committed offset.",
    ["group", "topic", "partition"],
)
POLL_AGE = Gauge(
    "openfn_consumer_poll_age_seconds",
    "Time since the consumer's poll loop last turned.",
    ["group"],
)


class LagReporter:
    """Refreshes the lag of a consumer's assigned partitions now and then."""

    def __init__(
        self, consumer: Consumer, group: str, interval_s: float = 10.0
    ) -> None:
        self._consumer = consumer
        self._group = group
        self._interval_s = interval_s
        self._last = 0.0
        self._reported: set[tuple[str, int]] = set()

    def maybe_report(self) -> None:
        """Call from the poll loop; reads the broker at most once per interval."""
        now = time.monotonic()
        if now - self._last < self._interval_s:
            return
        self._last = now
        try:
            self._report(self._consumer.assignment())
        except KafkaException as exc:
            log.warning("consumer.lag_unavailable", group=self._group, error=str(exc))

    def _report(self, assignment: list[TopicPartition]) -> None:
        current: set[tuple[str, int]] = set()
        committed = (
            self._consumer.committed(assignment, timeout=5) if assignment else []
        )
        for partition in committed:
            _low, high = self._consumer.get_watermark_offsets(
                partition, timeout=5, cached=False
            )
            position = partition.offset if partition.offset >= 0 else _low
            key = (partition.topic, partition.partition)
            current.add(key)
            CONSUMER_LAG.labels(self._group, key[0], str(key[1])).set(
                max(high - position, 0)
            )
        for topic, number in self._reported - current:
            CONSUMER_LAG.remove(self._group, topic, str(number))
        self._reported = current
