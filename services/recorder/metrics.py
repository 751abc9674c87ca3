"""The recorder's metrics (see docs/metrics.md)."""

from prometheus_client import Counter, Histogram

EVENTS_APPLIED = Counter(
    "openfn_recorder_events_applied", "Events written to PostgreSQL.", ["kind"]
)
EVENT_DELAY = Histogram(
    "openfn_recorder_event_delay_seconds",
    "From an event's time to its being applied.",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
