"""The scheduler's metrics (see docs/metrics.md)."""

from prometheus_client import Counter, Histogram

TICKS_FIRED = Counter("openfn_scheduler_ticks_fired", "Cron ticks fired.")
TICKS_MISSED = Counter(
    "openfn_scheduler_ticks_missed", "Cron ticks skipped after downtime."
)
TICK_LATENESS = Histogram(
    "openfn_scheduler_tick_lateness_seconds",
    "How late a tick fired.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
RUNS_LOST = Counter("openfn_scheduler_runs_lost", "Runs recorded as lost.")
DELAYED_RUNS_SENT = Counter(
    "openfn_scheduler_delayed_runs_sent", "Delayed runs sent once their wait was over."
)
