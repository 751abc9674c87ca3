"""The dispatcher's metrics (see docs/metrics.md)."""

from prometheus_client import Counter

MESSAGES = Counter(
    "openfn_dispatcher_messages",
    "Messages matched against message-filter triggers.",
    ["result"],
)
RUN_REQUESTS = Counter(
    "openfn_dispatcher_run_requests", "Run requests emitted.", ["origin"]
)
RUNS_REFUSED = Counter(
    "openfn_dispatcher_runs_refused", "Runs refused by the 10-second rule.", ["origin"]
)
RETRIES_SCHEDULED = Counter("openfn_dispatcher_retries_scheduled", "Retries queued.")
DEAD_LETTERS = Counter(
    "openfn_dispatcher_dead_letters", "Runs sent to the dead letters."
)
