"""Records of the platform's events, built one way wherever they are written."""

from __future__ import annotations

from shared.events import RunFinished, RunStarted, run_event_headers
from shared.kafka.producer import Record
from shared.topics import Topics


def run_event_record(topics: Topics, event: RunStarted | RunFinished) -> Record:
    """A run event, keyed by its run, with the header that names its kind."""
    return Record(
        topic=topics.run_events,
        key=event.run_id.bytes,
        value=event.model_dump_json().encode(),
        headers=run_event_headers(event),
    )
