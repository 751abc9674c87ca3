"""The dispatcher's consumer loop: messages in, run requests out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from confluent_kafka import Message as KafkaRecord

from services.dispatcher.planning import plan_message_runs
from shared.bodies import body_kind, parse_body
from shared.catalog import ProjectCatalog
from shared.errors import PlatformError
from shared.events import Message
from shared.kafka import EventProducer, Record
from shared.logging import get_logger
from shared.topics import Topics

log = get_logger(__name__)

_CATALOG_MISS_INTERVAL_S = 1.0


class Dispatcher:
    """Turns each message into the run requests its project's triggers ask for."""

    def __init__(
        self, catalog: ProjectCatalog, producer: EventProducer, topics: Topics
    ) -> None:
        self._catalog = catalog
        self._producer = producer
        self._topics = topics

    def handle(self, records: Sequence[KafkaRecord]) -> None:
        """Plan runs for a batch and wait until every request is durable."""
        out: list[Record] = []
        for record in records:
            out.extend(self._plan(record))
        if out:
            self._producer.produce_all(out)

    def _plan(self, record: KafkaRecord) -> list[Record]:
        try:
            message = Message.from_kafka(record.headers(), record.value())
            body = parse_body(body_kind(message.content_type), message.body)
        except (ValueError, PlatformError) as exc:
            log.error(
                "message.unreadable",
                topic=record.topic(),
                offset=record.offset(),
                error=str(exc),
            )
            return []
        if self._catalog.snapshot.revision < message.revision:
            self._catalog.reload()
        project = self._catalog.project(message.project_id)
        if project is None:
            self._catalog.reload(_CATALOG_MISS_INTERVAL_S)
            project = self._catalog.project(message.project_id)
        if project is None:
            log.warning(
                "message.project_unknown",
                message_id=str(message.id),
                project_id=str(message.project_id),
            )
            return []
        requests = plan_message_runs(project, message.id, body, datetime.now(UTC))
        log.debug(
            "message.matched",
            message_id=str(message.id),
            project_id=str(project.id),
            runs=len(requests),
        )
        return [
            Record(
                topic=self._topics.run_requests,
                key=request.run_id.bytes,
                value=request.model_dump_json().encode(),
            )
            for request in requests
        ]
