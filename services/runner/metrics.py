"""The runner's metrics (see docs/metrics.md)."""

from prometheus_client import Counter, Gauge, Histogram

RUNS_STARTED = Counter("openfn_runner_runs_started", "Runs started.")
RUNS_FINISHED = Counter(
    "openfn_runner_runs_finished", "Runs finished, by exit code.", ["exit_code"]
)
RUN_DURATION = Histogram(
    "openfn_runner_run_duration_seconds",
    "Time from start to finish of a run.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
RUNS_IN_PROGRESS = Gauge("openfn_runner_runs_in_progress", "Runs executing now.")
WORKERS = Gauge("openfn_runner_workers", "Warm workers in the pool.")
CLAIMS_TAKEN_OVER = Counter(
    "openfn_runner_claims_taken_over",
    "Claims taken over from a runner that stopped renewing them, on runs never"
    " started.",
)
