"""Throughput and latency of the runner's engine, with isolation and limits on.

One ``ProcessEngine`` with as many warm workers as there are callers, every
limit at its default (512 MiB of memory, 10 MiB of state, 1 MiB of log, a
worker replaced every 1000 runs), drives a fixed number of runs after a
warm-up and prints a Markdown table of runs/s and per-run latency:

- a trivial job, ``fn(lambda state: state)``, on a small state;
- five operations (map, filter, sum, upper-case, count) over a ~10 KB state of
  200 people records, of whom exactly 93 are adults.

    python bench/runner.py [--runs 2000] [--warmup 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.runner.engine import ProcessEngine
from shared.events import JobSpec
from shared.logging import configure_logging
from shared.model import ExitCode

TIMEOUT_S = 100.0
SEED = 20240611
PEOPLE = 200
ADULTS = 93
DISTRICTS = ("Kisumu", "Nakuru", "Kitui", "Embu", "Nyeri")
NAMES = ("amina", "otieno", "wanjiru", "kamau", "akinyi", "mwangi", "njeri", "ochieng")

TRIVIAL = "fn(lambda state: state)\n"
FIVE_OPERATIONS = """\
fn(lambda state: {**state, "people": [
    {**person, "adult": person["age"] >= 18} for person in state["data"]["people"]
]})
fn(lambda state: {**state, "people": [p for p in state["people"] if p["adult"]]})
fn(lambda state: {**state, "total": sum(p["amount"] for p in state["people"])})
fn(lambda state: {**state, "people": [
    {**person, "name": person["name"].upper()} for person in state["people"]
]})
fn(lambda state: {**state, "count": len(state["people"])})
"""


@dataclass(frozen=True)
class Case:
    """A job and the state it starts from."""

    name: str
    expression: str
    state: dict[str, Any]


@dataclass(frozen=True)
class Measurement:
    """What one case came to."""

    runs: int
    elapsed_s: float
    latencies_ms: list[float]
    failures: int
    final_state: dict[str, Any] | None


def people_state() -> dict[str, Any]:
    """200 seeded people records, exactly 93 of them adults; about 10 KB of JSON."""
    rng = random.Random(SEED)
    ages = [rng.randint(18, 90) for _ in range(ADULTS)]
    ages += [rng.randint(1, 17) for _ in range(PEOPLE - ADULTS)]
    rng.shuffle(ages)
    people = [
        {
            "name": rng.choice(NAMES),
            "age": age,
            "amount": rng.randint(100, 9999),
            "district": rng.choice(DISTRICTS),
        }
        for age in ages
    ]
    return {"data": {"people": people}}


def measure(engine: ProcessEngine, case: Case, runs: int, callers: int) -> Measurement:
    """Run ``case`` ``runs`` times from ``callers`` threads at once."""
    job = JobSpec(
        id=uuid.uuid4(),
        name=case.name,
        version="1",
        adaptor="common",
        expression=case.expression,
    )
    latencies_ms: list[float] = []
    failures = [0]
    last_state: list[dict[str, Any] | None] = [None]
    remaining = iter(range(runs))
    lock = threading.Lock()

    def call() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            started = time.perf_counter()
            execution = engine.execute(job, case.state, TIMEOUT_S)
            elapsed_ms = (time.perf_counter() - started) * 1000
            with lock:
                latencies_ms.append(elapsed_ms)
                if execution.exit_code != ExitCode.SUCCESS:
                    failures[0] += 1
                last_state[0] = execution.final_state

    threads = [threading.Thread(target=call) for _ in range(callers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed_s = time.perf_counter() - started
    return Measurement(runs, elapsed_s, latencies_ms, failures[0], last_state[0])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def row(case: Case, measurement: Measurement) -> str:
    state = measurement.final_state or {}
    check = f"count = {state['count']}" if "count" in state else "-"
    cells = [
        case.name,
        f"{len(json.dumps(case.state, separators=(',', ':'))):,} B",
        str(measurement.runs),
        f"{measurement.runs / measurement.elapsed_s:,.0f}",
        f"{statistics.median(measurement.latencies_ms):.2f}",
        f"{percentile(measurement.latencies_ms, 0.99):.2f}",
        str(measurement.failures),
        check,
    ]
    return "| " + " | ".join(cells) + " |"


def cpu_model() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return found.group(1).strip() if found else "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args()
    configure_logging("WARNING", "console")

    cases = [
        Case("trivial: fn(lambda state: state)", TRIVIAL, {"data": {"id": 1}}),
        Case("five operations over 200 people", FIVE_OPERATIONS, people_state()),
    ]
    print(
        f"machine: nproc {len(os.sched_getaffinity(0))}, {cpu_model()}, "
        f"Python {platform.python_version()} on {platform.system()}"
    )
    print(
        f"engine: {arguments.workers} warm workers and as many callers; memory "
        "512 MiB, state 10 MiB, log 1 MiB a run; a worker replaced every 1000 runs; "
        f"{arguments.warmup} warm-up runs, then {arguments.runs} measured\n"
    )
    print("| job | input state | runs | runs/s | p50 ms | p99 ms | failures | check |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    with ProcessEngine(workers=arguments.workers) as engine:
        for case in cases:
            measure(engine, case, arguments.warmup, arguments.workers)
            measurement = measure(engine, case, arguments.runs, arguments.workers)
            print(row(case, measurement), flush=True)
            if "count" in (measurement.final_state or {}):
                assert measurement.final_state is not None
                if measurement.final_state["count"] != ADULTS:
                    sys.exit(f"expected a count of {ADULTS}")


if __name__ == "__main__":
    main()
