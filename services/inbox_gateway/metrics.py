"""The gateway's metrics (see docs/metrics.md)."""

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)

REQUESTS = Counter(
    "openfn_inbox_requests", "Inbox requests by how they were answered.", ["outcome"]
)
REQUEST_DURATION = Histogram(
    "openfn_inbox_request_duration_seconds",
    "Time from an inbox request to its answer.",
    ["outcome"],
    buckets=_LATENCY_BUCKETS,
)
ACCEPTED_BYTES = Counter(
    "openfn_inbox_accepted_bytes", "Body bytes of accepted messages."
)
PRODUCE_DURATION = Histogram(
    "openfn_inbox_produce_duration_seconds",
    "Time for the broker to acknowledge a message.",
    buckets=_LATENCY_BUCKETS,
)
SIGNING_SECRETS_UNOPENED = Gauge(
    "openfn_inbox_signing_secrets_unopened",
    "Active inbox signing secrets the gateway could not open through Vault.",
)
