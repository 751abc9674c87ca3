"""Latency of the activity history and the inbox over a million messages.

Starts its own PostgreSQL, applies the migrations, loads 1,000,000 messages,
3,000,000 runs and their job states spread over 90 days (nine in ten in one
project), then times the SQL path of the history endpoints: the calls to
``services.api.history_queries`` that each route makes, after its project
lookup, on one connection as the API's pool gives them. Prints a Markdown
table of p50/p99 per case.

    python bench/history.py [--messages 1000000] [--requests 200]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

from devstack.postgres import remove_data, start_postgres
from services.api import history_queries, queries
from services.api.history_queries import MessageFilter, RunFilter, search_terms
from services.api.history_routes import csv_row
from services.api.reruns import history_window, statuses_for
from shared.db import apply_migrations, connect

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / ".stack" / "bench-logs"

RUNS_PER_MESSAGE = 3
HISTORY_SPAN = timedelta(days=90)
CHUNK_ROWS = 100_000
WARMUP_REQUESTS = 10
BIG_PROJECT = UUID("5a6f0000-0000-4000-8000-000000000001")
SMALL_PROJECT = UUID("5a6f0000-0000-4000-8000-000000000002")
# Tables loaded without their secondary indexes, which are rebuilt afterwards
# from their own definitions: far quicker than maintaining them row by row.
LOADED_TABLES = ("messages", "runs", "job_states")

# Words the data set is made of, given to PostgreSQL as text it splits.
FIRST_NAMES = (
    "amina otieno wanjiru kamau akinyi mwangi njeri ochieng achieng kiprono "
    "chebet wambui mutua nyambura omondi atieno kipchoge jepkosgei muthoni "
    "kariuki auma odhiambo wairimu kimani adhiambo langat cherono githinji "
    "wanjiku onyango awino korir jeptoo macharia nyokabi ouma akoth rotich "
    "chepkemoi gitau wangari owino anyango kirui jelagat ndungu wanjala okoth "
    "apiyo"
)
FACILITIES = (
    "Kisumu Nakuru Kitui Embu Nyeri Machakos Kakamega Eldoret Garissa Malindi "
    "Thika Meru"
)
WORDS = (
    "patient referred for follow up review of blood pressure and glucose results "
    "mother reports fever cough for three days child immunisation up to date "
    "advised to return if symptoms persist counselling given on nutrition and "
    "hygiene appointment booked with clinician at the district hospital lab "
    "sample collected malaria rapid test negative weight recorded height "
    "recorded next visit in two weeks transport voucher issued community health "
    "volunteer to visit household medication dispensed amoxicillin paracetamol "
    "oral rehydration salts zinc antenatal care first visit second visit"
)

_SETUP = (
    "CREATE SCHEMA bench",
    """CREATE TABLE bench.names AS
       SELECT row_number() OVER () - 1 AS k, f || ' ' || l AS name
       FROM unnest(%(first)s::text[]) f CROSS JOIN unnest(%(first)s::text[]) l""",
    """CREATE TABLE bench.notes AS
       SELECT k, array_to_string(ARRAY(
           SELECT (%(words)s::text[])[1 + (k * 7 + g * 13 + g * g) %% %(nwords)s]
           FROM generate_series(1, 36) g), ' ') AS notes
       FROM generate_series(0, 4095) k""",
    """CREATE TABLE bench.jobs AS SELECT * FROM (VALUES
       (0, 'register-referral', 'message', 'message', 'http',
        'POST https://openmrs.example.org/ws/rest/v1/patient'),
       (1, 'make-payment', 'message', 'message', 'http',
        'POST https://bank.example.org/payments'),
       (2, 'send-receipt', 'success', 'flow', 'http',
        'POST https://sms.example.org/v1/messages'),
       (3, 'notify-failure', 'failure', 'catch', 'common',
        'email to referrals-desk@example.org'),
       (4, 'nightly-sync', 'cron', 'cron', 'postgresql',
        'SELECT facilities from warehouse.example.org')
       ) AS jobs (k, name, trigger_kind, origin, adaptor, request)""",
    """INSERT INTO projects (id, name, inbox_id) VALUES
       (%(big)s, 'bench', gen_random_uuid()),
       (%(small)s, 'bench-small', gen_random_uuid())""",
)

# Message m was received (m / total) of the span before the anchor, so the
# newest come first and the last 30 days hold a third of everything.
_MESSAGES = """
INSERT INTO messages
    (id, project_id, received_at, content_type, headers, body, raw_body)
SELECT md5('message' || m)::uuid,
       CASE WHEN m %% 10 = 0 THEN %(small)s ELSE %(big)s END::uuid,
       %(anchor)s::timestamptz - %(span)s::interval * m / %(total)s,
       'application/json',
       jsonb_build_object('content-type', 'application/json',
                          'user-agent', 'CommCareHQ/2.53',
                          'x-forwarded-for', '10.20.' || m %% 250 || '.7'),
       jsonb_build_object(
           'form', 'referral',
           'patient', jsonb_build_object(
               'id', 'P' || lpad(m::text, 7, '0'),
               'name', n.name,
               'age', m %% 90,
               'sex', CASE WHEN m %% 2 = 0 THEN 'female' ELSE 'male' END,
               'phone', '+2547' || lpad(((m * 7919) %% 100000000)::text, 8, '0')),
           'facility', (%(facilities)s::text[])[1 + m %% %(nfacilities)s],
           'visit', jsonb_build_object(
               'number', 1 + m %% 6,
               'reason', CASE m %% 4 WHEN 0 THEN 'antenatal' WHEN 1 THEN 'fever'
                              WHEN 2 THEN 'immunisation' ELSE 'follow-up' END),
           'notes', t.notes),
       NULL
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) m
JOIN bench.names n ON n.k = m %% %(nnames)s
JOIN bench.notes t ON t.k = m %% 4096
"""

# Run r is slot r %% 3 of message r / 3: two jobs the message triggered, then a
# flow (8 in 10), catch (1 in 10) or cron (1 in 10, without a message) run.
_RUNS = """
INSERT INTO runs
    (id, project_id, job_id, job_name, trigger_id, trigger_kind, message_id,
     status, exit_code, started_at, finished_at, input_state, final_state, logs,
     error, runner, created_at, adaptor, adaptor_version, origin, attempt,
     chain_depth)
SELECT md5('run' || r)::uuid, x.project_id,
       md5(x.project_id::text || j.name)::uuid, j.name,
       md5(x.project_id::text || 'trigger' || j.name)::uuid, j.trigger_kind,
       CASE WHEN j.trigger_kind = 'cron' THEN NULL ELSE md5('message' || x.m)::uuid END,
       x.status,
       CASE x.status WHEN 'succeeded' THEN 0 WHEN 'failed' THEN 1
                     WHEN 'timed_out' THEN 2 END,
       x.created_at + interval '20 ms',
       CASE WHEN x.status <> 'started'
            THEN x.created_at + interval '1 ms' * (120 + x.h) END,
       jsonb_build_object('data', jsonb_build_object(
           'form', 'referral', 'patient', jsonb_build_object('id', x.pid, 'name',
           n.name), 'facility', x.facility, 'notes', t.notes)),
       CASE WHEN x.status = 'succeeded' THEN jsonb_build_object(
           'data', jsonb_build_object('patient', jsonb_build_object(
               'id', x.pid, 'uuid', md5('patient' || x.m)::uuid)),
           'references', jsonb_build_array(jsonb_build_object(
               'status', 201, 'elapsed_ms', x.h))) END,
       jsonb_build_array(
           jsonb_build_object('at', x.created_at + interval '21 ms',
               'message', 'Job ' || j.name || ' started with adaptor ' || j.adaptor),
           jsonb_build_object('at', x.created_at + interval '40 ms',
               'message', j.request || ' for patient ' || x.pid || ' (' || n.name
                          || ', ' || x.facility || ')'),
           jsonb_build_object('at', x.created_at + interval '1 ms' * (100 + x.h),
               'message', CASE WHEN x.status = 'succeeded'
                               THEN 'Response 201 Created in ' || x.h || ' ms'
                               ELSE 'Response 500 Internal Server Error' END),
           jsonb_build_object('at', x.created_at + interval '1 ms' * (110 + x.h),
               'message', 'Job ' || j.name || ' finished: ' || x.status)),
       CASE x.status
           WHEN 'failed' THEN 'HTTPError: 500 Internal Server Error from ' || j.request
           WHEN 'timed_out' THEN 'TimeoutError: the run took longer than 100 s'
           WHEN 'lost' THEN 'runner-' || x.h %% 4 || ' stopped answering' END,
       'runner-' || x.h %% 4, x.created_at, j.adaptor, '1.4.2', j.origin, 1,
       CASE WHEN j.trigger_kind IN ('success', 'failure') THEN 1 ELSE 0 END
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) r
CROSS JOIN LATERAL (
    SELECT r / 3 AS m, r %% 3 AS slot, (r * 2654435761) %% 1000 AS h
) k
CROSS JOIN LATERAL (
    SELECT k.m, k.h,
           CASE WHEN k.m %% 10 = 0 THEN %(small)s ELSE %(big)s END::uuid AS project_id,
           'P' || lpad(k.m::text, 7, '0') AS pid,
           (%(facilities)s::text[])[1 + k.m %% %(nfacilities)s] AS facility,
           %(anchor)s::timestamptz - %(span)s::interval * k.m / %(messages)s
               + interval '1 s' * k.slot AS created_at,
           CASE WHEN k.slot < 2 THEN k.slot
                WHEN k.m %% 10 < 8 THEN 2 WHEN k.m %% 10 = 8 THEN 3 ELSE 4 END AS job,
           CASE WHEN k.h < 930 THEN 'succeeded' WHEN k.h < 980 THEN 'failed'
                WHEN k.h < 990 THEN 'timed_out' WHEN k.h < 995 THEN 'lost'
                ELSE 'started' END AS status
) x
JOIN bench.jobs j ON j.k = x.job
JOIN bench.names n ON n.k = x.m %% %(nnames)s
JOIN bench.notes t ON t.k = x.m %% 4096
"""

_JOB_STATES = """
INSERT INTO job_states
    (message_id, job_id, project_id, job_name, run_id, status, updated_at)
SELECT message_id, job_id, project_id, job_name, id,
       CASE status WHEN 'succeeded' THEN 'success' WHEN 'started' THEN 'in progress'
                   ELSE 'failure' END,
       coalesce(finished_at, created_at)
FROM runs WHERE message_id IS NOT NULL
"""

_SECONDARY_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
ORDER BY i.indexname
"""


@dataclass(frozen=True)
class Case:
    """One kind of request: what the table calls it and how to make one."""

    name: str
    request: Callable[[Connection[Any], int], int]
    """Makes the ``i``-th request; returns how many rows it read."""


def main() -> None:
    """Load the data set, time each case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    process, url, root = start_postgres(LOG_DIR)
    try:
        apply_migrations(url)
        timings = load(url, args.messages, datetime.now(UTC))
        with connect(url, autocommit=True) as conn:
            sizes = table_sizes(conn)
            rows = [measure(conn, case, args.requests) for case in cases(conn)]
            version = _one(conn, sql.SQL("SHOW server_version"))["server_version"]
        print_report(timings, sizes, rows, version)
    finally:
        process.stop()
        remove_data(root)


def load(url: str, messages: int, anchor: datetime) -> dict[str, float]:
    """Load the data set as the anchor's past; returns seconds per step."""
    timings: dict[str, float] = {}
    runs = messages * RUNS_PER_MESSAGE
    params: dict[str, Any] = {
        "big": BIG_PROJECT,
        "small": SMALL_PROJECT,
        "anchor": anchor,
        "span": HISTORY_SPAN,
        "messages": messages,
        "facilities": FACILITIES.split(),
        "nfacilities": len(FACILITIES.split()),
        "first": FIRST_NAMES.split(),
        "nnames": len(FIRST_NAMES.split()) ** 2,
        "words": WORDS.split(),
        "nwords": len(WORDS.split()),
    }
    workers = os.cpu_count() or 2
    with connect(url, autocommit=True) as conn:
        for statement in _SETUP:
            conn.execute(statement.encode(), params if "%(" in statement else None)
        indexes = conn.execute(_SECONDARY_INDEXES, (list(LOADED_TABLES),)).fetchall()
        for index in indexes:
            conn.execute(f"DROP INDEX {index['indexname']}")

    with _timed(timings, "messages and runs"):
        chunks = [
            (_MESSAGES, {**params, "total": messages, "lo": lo, "hi": hi})
            for lo, hi in _ranges(messages)
        ] + [(_RUNS, {**params, "lo": lo, "hi": hi}) for lo, hi in _ranges(runs)]
        _run_all(url, chunks, workers)
    with _timed(timings, "job states"), connect(url, autocommit=True) as conn:
        conn.execute(_JOB_STATES)
    with _timed(timings, "indexes"):
        _run_all(url, [(index["indexdef"], {}) for index in indexes], workers)
    with _timed(timings, "vacuum analyze"), connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA bench CASCADE")
        conn.execute(f"VACUUM ANALYZE {', '.join(LOADED_TABLES)}")
    return timings


def cases(conn: Connection[Any]) -> list[Case]:
    """The requests timed, each as an endpoint would make it."""
    project_id = BIG_PROJECT
    window = RunFilter(*history_window(None, None, datetime.now(UTC)))
    inbox = MessageFilter(window.since, window.until)
    recent = [
        str(row["body"]["patient"]["id"])
        for row in conn.execute(
            "SELECT body FROM messages WHERE project_id = %s"
            " AND received_at >= now() - interval '30 days'"
            " ORDER BY random() LIMIT 200",
            (project_id,),
        ).fetchall()
    ]
    jobs = ["register-referral", "make-payment", "send-receipt", "notify-failure"]
    statuses = ["failed", "timed_out", "lost", "failure", "started"]
    tenth_page = _keyset_after(conn, project_id, window, pages=9)

    def runs(filters: RunFilter, after: Any = None) -> Callable[..., int]:
        def request(conn: Connection[Any], _i: int) -> int:
            queries.find_project(conn, "bench")
            return len(history_queries.run_page(conn, project_id, filters, 51, after))

        return request

    def varying(make: Callable[[int], RunFilter]) -> Callable[..., int]:
        def request(conn: Connection[Any], i: int) -> int:
            queries.find_project(conn, "bench")
            return len(history_queries.run_page(conn, project_id, make(i), 51))

        return request

    def csv_export(conn: Connection[Any], _i: int) -> int:
        queries.find_project(conn, "bench")
        rows = history_queries.run_page(conn, project_id, window, 1000)
        return len([csv_row(row) for row in rows])

    def inbox_page(search: Callable[[int], str | None]) -> Callable[..., int]:
        def request(conn: Connection[Any], i: int) -> int:
            queries.find_project(conn, "bench")
            words = search_terms(search(i))
            filters = MessageFilter(inbox.since, inbox.until, words)
            return len(history_queries.message_page(conn, project_id, filters, 51))

        return request

    def rare(i: int) -> str:
        return recent[i % len(recent)]

    def full_name(i: int) -> str:
        first = FIRST_NAMES.split()
        return f"{first[i % len(first)]} {first[i * 7 % len(first)]}"

    def common(i: int) -> str:
        facilities = FACILITIES.lower().split()
        return facilities[i % len(facilities)]

    return [
        Case("history, first page (last 30 days)", runs(window)),
        Case("history, 10th page (keyset)", runs(window, tenth_page)),
        Case(
            "history by job",
            varying(lambda i: _with(window, job=jobs[i % len(jobs)])),
        ),
        Case(
            "history by status (failed, …, `failure`)",
            varying(lambda i: _with(window, statuses=statuses_for(statuses[i % 5]))),
        ),
        Case(
            "history by trigger (message, success, failure, cron)",
            varying(
                lambda i: _with(
                    window, trigger=("message", "success", "failure", "cron")[i % 4]
                )
            ),
        ),
        Case(
            "history search, one patient id (logs + bodies)",
            varying(lambda i: _with(window, search=search_terms(rare(i)))),
        ),
        Case(
            "history search, a full name (1 message in 2,401)",
            varying(lambda i: _with(window, search=search_terms(full_name(i)))),
        ),
        Case(
            "history search, a facility (1 run in 12)",
            varying(lambda i: _with(window, search=search_terms(common(i)))),
        ),
        Case("history CSV, first 1,000 rows", csv_export),
        Case("inbox with job states, first page", inbox_page(lambda _i: None)),
        Case("inbox search, one patient id", inbox_page(rare)),
        Case("inbox search, a full name", inbox_page(full_name)),
        Case("inbox search, a facility", inbox_page(common)),
    ]


def measure(conn: Connection[Any], case: Case, requests: int) -> dict[str, Any]:
    """Time ``requests`` requests of a case after a warm-up."""
    for i in range(WARMUP_REQUESTS):
        case.request(conn, i)
    latencies_ms = []
    rows = 0
    for i in range(requests):
        started = time.perf_counter()
        rows += case.request(conn, i)
        latencies_ms.append((time.perf_counter() - started) * 1000)
    latencies_ms.sort()
    return {
        "case": case.name,
        "requests": requests,
        "rows": rows / requests,
        "p50": statistics.median(latencies_ms),
        "p99": latencies_ms[math.ceil(0.99 * requests) - 1],
        "max": latencies_ms[-1],
    }


def table_sizes(conn: Connection[Any]) -> dict[str, tuple[int, str]]:
    """Rows and total size (with indexes and TOAST) of each loaded table."""
    sizes = {}
    for table in LOADED_TABLES:
        row = _one(
            conn,
            sql.SQL(
                "SELECT count(*) AS n, pg_size_pretty(pg_total_relation_size({}))"
                " AS size FROM {}"
            ).format(sql.Literal(table), sql.Identifier(table)),
        )
        sizes[table] = (row["n"], row["size"])
    return sizes


def print_report(
    timings: dict[str, float],
    sizes: dict[str, tuple[int, str]],
    rows: list[dict[str, Any]],
    server_version: str,
) -> None:
    """The machine, the data set, how long it took to load, and the latencies."""
    print(
        f"\nMachine: {_cpu_model()}, nproc {os.cpu_count()}; PostgreSQL"
        f" {server_version}; Python {platform.python_version()}\n"
    )
    print("| table | rows | size with indexes |\n|---|--:|--:|")
    for table, (count, size) in sizes.items():
        print(f"| {table} | {count:,} | {size} |")
    load_s = " · ".join(f"{step} {seconds:.0f} s" for step, seconds in timings.items())
    print(f"\nLoad: {load_s} (total {sum(timings.values()):.0f} s)\n")
    print("| case | requests | rows/request | p50 ms | p99 ms | max ms |")
    print("|---|--:|--:|--:|--:|--:|")
    for row in rows:
        print(
            f"| {row['case']} | {row['requests']} | {row['rows']:.0f} |"
            f" {row['p50']:.2f} | {row['p99']:.2f} | {row['max']:.2f} |"
        )
    sys.stdout.flush()


def _one(conn: Connection[Any], query: sql.SQL | sql.Composed) -> dict[str, Any]:
    row = conn.execute(query).fetchone()
    assert row is not None
    return dict(row)


def _with(filters: RunFilter, **changes: Any) -> RunFilter:
    return RunFilter(**{**filters.__dict__, **changes})


def _keyset_after(
    conn: Connection[Any], project_id: UUID, filters: RunFilter, pages: int
) -> Any:
    after = None
    for _ in range(pages):
        rows = history_queries.run_page(conn, project_id, filters, 50, after)
        after = (rows[-1]["created_at"], rows[-1]["id"])
    return after


def _ranges(total: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, total, CHUNK_ROWS):
        yield lo, min(lo + CHUNK_ROWS, total)


def _run_all(
    url: str, statements: list[tuple[str, dict[str, Any]]], workers: int
) -> None:
    def run(statement: tuple[str, dict[str, Any]]) -> None:
        with connect(url, autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute(statement[0].encode(), statement[1] or None)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, statements))


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    print(f"loading: {step}…", file=sys.stderr, flush=True)
    started = time.monotonic()
    yield
    timings[step] = time.monotonic() - started


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
