"""Producers with ``acks=all`` and idempotence.

``AsyncProducer`` lets an asyncio server await the broker's acknowledgement of
each record; ``EventProducer`` lets a consumer loop write a batch and wait for
all of it before committing its offsets.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from shared.errors import BrokerUnavailableError

Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True)
class Record:
    """One record to write."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None


def producer_config(
    base: dict[str, Any], max_message_bytes: int, delivery_timeout_s: float
) -> dict[str, Any]:
    """Durable-write settings layered over the service's Kafka settings."""
    return {
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 2,
        "message.max.bytes": max_message_bytes,
        "delivery.timeout.ms": int(delivery_timeout_s * 1000),
    } | base


class AsyncProducer:
    """Awaitable produce for asyncio servers; a thread serves delivery reports."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._stopping = threading.Event()
        self._poller = threading.Thread(
            target=self._poll, name="kafka-delivery", daemon=True
        )
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.1)

    async def produce(self, record: Record, timeout_s: float) -> None:
        """Write one record; returns once the broker has acknowledged it.

        Raises BrokerUnavailableError when the broker has not acknowledged the
        record within ``timeout_s`` or refused it.
        """
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            loop.call_soon_threadsafe(_settle, acked, error)

        try:
            self._producer.produce(
                record.topic,
                value=record.value,
                key=record.key,
                headers=record.headers,
                on_delivery=on_delivery,
            )
        except BufferError as exc:
            raise BrokerUnavailableError("the producer's queue is full") from exc
        try:
            return await asyncio.wait_for(acked, timeout_s)
        except TimeoutError as exc:
            raise BrokerUnavailableError(
                f"the broker did not acknowledge within {timeout_s} s"
            ) from exc

    def is_connected(self, timeout_s: float = 2.0) -> bool:
        """True when the cluster answers a metadata request."""
        try:
            self._producer.list_topics(timeout=timeout_s)
        except Exception:
            return False
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        self._stopping.set()
        self._poller.join(timeout_s)


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(
            BrokerUnavailableError(f"the broker refused the record: {error}")
        )
    else:
        future.set_result(None)


class EventProducer:
    """Writes records and, on ``flush``, waits until every one is acknowledged."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._errors: list[KafkaError] = []
        self._lock = threading.Lock()

    def send(self, record: Record) -> None:
        """Queue one record; ``flush`` reports whether it was written."""
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                    on_delivery=self._on_delivery,
                )
                return
            except BufferError:
                self._producer.poll(0.1)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait for what was sent; BrokerUnavailableError unless all of it is acked."""
        remaining = self._producer.flush(timeout_s)
        with self._lock:
            errors, self._errors = self._errors, []
        if remaining or errors:
            raise BrokerUnavailableError(
                f"{remaining} record(s) unacknowledged, {len(errors)} refused:"
                f" {errors[:3]}"
            )

    def deliver(self, record: Record, timeout_s: float = 30.0) -> None:
        """Write one record and wait for its acknowledgement alone.

        Safe to call from several threads at once; each waits for its own
        record. Raises BrokerUnavailableError if it was refused or timed out.
        """
        acked = threading.Event()
        failure: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failure.append(error)
            acked.set()

        self._producer.produce(
            record.topic,
            value=record.value,
            key=record.key,
            headers=record.headers,
            on_delivery=on_delivery,
        )
        deadline = time.monotonic() + timeout_s
        while not acked.is_set():
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(f"no acknowledgement within {timeout_s} s")
            self._producer.poll(0.05)
        if failure:
            raise BrokerUnavailableError(f"the broker refused the record: {failure[0]}")

    def produce_all(self, records: Sequence[Record], timeout_s: float = 30.0) -> None:
        """Write records in order and wait until all are acknowledged."""
        for record in records:
            self.send(record)
        self.flush(timeout_s)

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            with self._lock:
                self._errors.append(error)

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
