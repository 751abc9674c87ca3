"""Server time of each console page, over HTTP, with a signed-in session.

Starts its own PostgreSQL and loads the activity history's data set with
``bench/history.py``'s loader (200,000 messages, 600,000 runs and their job
states over 90 days by default, nine in ten in one project), deploys a
project.yaml over its big project so that it has jobs and triggers, and
creates a site admin with a password. It then serves the API's application
(``create_app``) with uvicorn on a free port, in a thread of this process,
signs in through the sign-in form as a browser does, and times each page from
request to last byte: one ``httpx.Client``, cookies kept, one keep-alive
connection, requests one after another after a warm-up. Every answer must be
a 200 showing the signed-in user and what the page is for (its rows, log,
states, jobs), or the run stops: a broken page cannot look fast. Signing in
(an Argon2id password check) is timed on its own.

The pages read only PostgreSQL. The application gets a ``VaultClient``, which
connects to nothing until used, and no Kafka producer, since one made without
a broker keeps trying to reach it in the background: it is served without its
lifespan, whose only work is closing the producer and the pool, and the pool
is closed here. No page route touches either.

    python bench/console.py [--messages 200000] [--requests 200] [--sign-ins 20]
"""

from __future__ import annotations

import argparse
import html
import math
import os
import platform
import re
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlencode, urljoin
from uuid import UUID

import httpx
import uvicorn
from fastapi import FastAPI
from psycopg import Connection
from pydantic import SecretStr

from bench.history import (
    BIG_PROJECT,
    FIRST_NAMES,
    LOG_DIR,
    WARMUP_REQUESTS,
    _cpu_model,
    load,
    table_sizes,
)
from devstack.postgres import remove_data, start_postgres
from devstack.processes import free_port
from services.api.app import create_app
from services.api.deploy import deploy_project
from services.api.settings import ApiSettings
from shared.auth import create_user, set_password
from shared.db import apply_migrations, connect, open_pool
from shared.kafka import AsyncProducer
from shared.logging import configure_logging
from shared.vault import VaultClient

PROJECT = "bench"
"""The big project of ``bench/history.py``'s data set."""
SMALL_PROJECT_NAME = "bench-small"
USERNAME = "bench-admin"
PASSWORD = "a long bench password"
SIGN_IN_WARMUP = 2
HISTORY_JOBS = ("register-referral", "make-payment", "send-receipt", "notify-failure")

# The jobs the loaded runs are named after, with the triggers they run on.
PROJECT_YAML = """\
jobs:
  register-referral:
    trigger: referral-received
    adaptor: http
    expression: |
      post("https://openmrs.example.org/ws/rest/v1/patient",
           json=data_value("$.patient"))
      log("referral registered for", data_value("$.patient.id"))
  make-payment:
    trigger: referral-received
    adaptor: http
    retries: 2
    expression: |
      post("https://bank.example.org/payments",
           json={"patient": data_value("$.patient.id"), "amount": 350})
  send-receipt:
    trigger: payment-made
    adaptor: http
    expression: |
      post("https://sms.example.org/v1/messages",
           json={"to": data_value("$.patient.phone"), "text": "Payment sent"})
  notify-failure:
    trigger: payment-failed
    adaptor: common
    expression: |
      log("payment failed for", data_value("$.patient.id"))
  nightly-sync:
    trigger: nightly
    adaptor: postgresql
    enabled: false
    expression: |
      sql("SELECT name, county FROM facilities")
triggers:
  referral-received:
    criteria: '{"form": "referral"}'
    exclusion: '{"test": true}'
  payment-made:
    success: make-payment
  payment-failed:
    failure: make-payment
  nightly:
    cron: "0 2 * * *"
"""

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_OLDER_LINK = re.compile(r'<p class="pager"><a href="([^"]+)">Older')


class PageError(RuntimeError):
    """A page answered, but not with what it should show."""


@dataclass(frozen=True)
class Visit:
    """One request of a page, and what its answer must hold."""

    path: str
    contains: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    rows: range = range(0, 1 << 30)
    """How many listed rows (``<tr data-id=…>``) the page may have."""
    counts: tuple[tuple[str, int], ...] = ()
    """Texts that must occur exactly so many times."""


@dataclass(frozen=True)
class Page:
    """A kind of page: what the table calls it and the requests made of it."""

    name: str
    visits: list[Visit]
    """Requested in turn, request ``i`` taking visit ``i`` modulo their number."""


def main() -> None:
    """Load the data set, serve the API, time each page and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sign-ins", type=int, default=20)
    args = parser.parse_args()

    configure_logging("WARNING", "console")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    process, url, root = start_postgres(LOG_DIR)
    try:
        apply_migrations(url)
        timings = load(url, args.messages, datetime.now(UTC))
        settings = ApiSettings(database_url=SecretStr(url))
        vault = VaultClient(settings)
        with connect(url, autocommit=True) as conn:
            prepare(conn, vault)
            sizes = table_sizes(conn)
            version = _server_version(conn)
            samples = sample(conn, args.requests + WARMUP_REQUESTS)
        pool = open_pool(url, settings.database_pool_size, "api")
        app = create_app(settings, pool, vault, cast(AsyncProducer, None))
        try:
            with serving(app) as base_url:
                with httpx.Client(base_url=base_url, timeout=60) as client:
                    sign_in(client)
                    pages = console_pages(client, *samples)
                    rows = [measure(client, page, args.requests) for page in pages]
                with httpx.Client(base_url=base_url, timeout=60) as client:
                    rows.append(measure_sign_in(client, args.sign_ins))
        finally:
            pool.close()
        print_report(timings, sizes, rows, version)
    finally:
        process.stop()
        remove_data(root)


def prepare(conn: Connection[Any], vault: VaultClient) -> None:
    """Give the big project its jobs and triggers, and create the site admin."""

    def anyone(*_args: Any) -> None:
        """Every deploy is allowed: the bench deploys as the platform itself."""

    project_id, created = deploy_project(
        conn, vault, PROJECT, PROJECT_YAML, "project.yaml", anyone, actor=USERNAME
    )
    assert project_id == BIG_PROJECT
    assert not created
    user = create_user(conn, USERNAME, is_admin=True)
    set_password(conn, user.id, PASSWORD)


def sample(
    conn: Connection[Any], count: int
) -> tuple[list[dict[str, Any]], list[UUID]]:
    """Messages of the big project's last 30 days, and a succeeded run of each."""
    messages = conn.execute(
        "SELECT id, body->'patient'->>'id' AS patient FROM messages"
        " WHERE project_id = %s AND received_at >= now() - interval '30 days'"
        " ORDER BY random() LIMIT %s",
        (BIG_PROJECT, count),
    ).fetchall()
    runs = conn.execute(
        "SELECT DISTINCT ON (message_id) id FROM runs"
        " WHERE message_id = ANY(%s) AND status = 'succeeded'"
        " ORDER BY message_id, created_at",
        ([row["id"] for row in messages],),
    ).fetchall()
    return [dict(row) for row in messages], [row["id"] for row in runs]


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free port from a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def sign_in(client: httpx.Client) -> None:
    """Sign in as a browser does: be sent to the form, fill it in, come back."""
    form = client.get("/console/projects", follow_redirects=True)
    _require(form.status_code == 200, "sign-in", f"form answered {form.status_code}")
    _require(
        form.url.path == "/console/sign-in", "sign-in", f"landed on {form.url.path}"
    )
    home = client.post(
        "/console/sign-in",
        data={
            "csrf_token": _form_token(form.text),
            "next": "/console/projects",
            "username": USERNAME,
            "password": PASSWORD,
        },
        follow_redirects=True,
    )
    _require(
        home.status_code == 200 and home.url.path == "/console/projects",
        "sign-in",
        f"ended on {home.url.path} with {home.status_code}",
    )


def console_pages(
    client: httpx.Client, messages: list[dict[str, Any]], runs: list[UUID]
) -> list[Page]:
    """The pages timed, each with the requests made of it."""
    inbox = f"/console/projects/{PROJECT}/inbox"
    history = f"/console/projects/{PROJECT}/history"
    first = FIRST_NAMES.split()
    full_names = [
        f"{first[i % len(first)]} {first[i * 7 % len(first)]}"
        for i in range(len(first))
    ]
    tenth = inbox
    for _ in range(9):
        tenth = _older(client, tenth)

    def job_cell(job: str) -> str:
        return f'<td data-label="Job">{job}</td>'

    def status(value: str) -> str:
        return f'data-status="{value}"'

    return [
        Page(
            "projects",
            [
                Visit(
                    "/console/projects",
                    contains=(
                        f'href="/console/projects/{PROJECT}/inbox"',
                        f'href="/console/projects/{SMALL_PROJECT_NAME}/inbox"',
                        '<td data-label="Jobs">5</td>',
                    ),
                )
            ],
        ),
        Page(
            "inbox, first page",
            [Visit(inbox, contains=("Older messages",), rows=range(50, 51))],
        ),
        Page(
            "inbox search, one patient id",
            [
                Visit(
                    f"{inbox}?{urlencode({'q': m['patient']})}",
                    contains=(f'href="/console/messages/{m["id"]}"',),
                    rows=range(1, 2),
                )
                for m in messages
            ],
        ),
        Page(
            "inbox search, a full name",
            [
                Visit(f"{inbox}?{urlencode({'q': name})}", rows=range(1, 51))
                for name in full_names
            ],
        ),
        Page(
            "inbox, 10th page (Older messages link)",
            [Visit(tenth, contains=("Older messages",), rows=range(50, 51))],
        ),
        Page(
            "receipt of a message",
            [
                Visit(
                    f"/console/messages/{m['id']}",
                    contains=(
                        f"&#34;id&#34;: &#34;{m['patient']}&#34;",
                        "<h2>Runs</h2>",
                        '<td data-label="Run"><a class="mono" href="/console/runs/',
                    ),
                )
                for m in messages
            ],
        ),
        Page(
            "history, first page",
            [Visit(history, contains=("Older runs",), rows=range(50, 51))],
        ),
        Page(
            "history, status=failure",
            [
                Visit(
                    f"{history}?status=failure",
                    absent=(status("succeeded"), status("started")),
                    rows=range(50, 51),
                )
            ],
        ),
        Page(
            "history by job",
            [
                Visit(
                    f"{history}?{urlencode({'job': job})}",
                    counts=((job_cell(job), 50),),
                    rows=range(50, 51),
                )
                for job in HISTORY_JOBS
            ],
        ),
        Page(
            "run with logs and states",
            [
                Visit(
                    f"/console/runs/{run_id}",
                    contains=(str(run_id), '<ol class="log">', "Response 201 Created"),
                    counts=(('<pre class="json">', 2), (status("succeeded"), 1)),
                )
                for run_id in runs
            ],
        ),
        Page(
            "jobs & triggers",
            [
                Visit(
                    f"/console/projects/{PROJECT}/jobs",
                    contains=(
                        '<td data-label="Trigger">nightly</td>',
                        "job <strong>make-payment</strong> fails",
                    ),
                    counts=(('class="card job-card"', 5),),
                )
            ],
        ),
    ]


def measure(client: httpx.Client, page: Page, requests: int) -> dict[str, Any]:
    """Time ``requests`` requests of a page after a warm-up, checking each answer.

    The warm-up takes the visits after those the measured requests take.
    """
    for i in range(WARMUP_REQUESTS):
        _get(client, page, page.visits[(requests + i) % len(page.visits)])
    latencies_ms = []
    size = 0
    for i in range(requests):
        visit = page.visits[i % len(page.visits)]
        started = time.perf_counter()
        response = client.get(visit.path)
        latencies_ms.append((time.perf_counter() - started) * 1000)
        _check(page.name, visit, response)
        size += len(response.content)
    return _row(page.name, latencies_ms, size / requests)


def measure_sign_in(client: httpx.Client, requests: int) -> dict[str, Any]:
    """Time posting the sign-in form; fetching the form is not timed."""
    name = "sign-in (form POST, Argon2id check)"
    latencies_ms = []
    size = 0
    for i in range(SIGN_IN_WARMUP + requests):
        form = client.get("/console/sign-in")
        _require(form.status_code == 200, name, f"form answered {form.status_code}")
        fields = {
            "csrf_token": _form_token(form.text),
            "next": "/console/projects",
            "username": USERNAME,
            "password": PASSWORD,
        }
        started = time.perf_counter()
        response = client.post("/console/sign-in", data=fields)
        elapsed_ms = (time.perf_counter() - started) * 1000
        _require(
            response.status_code == 303
            and response.headers.get("location") == "/console/projects"
            and "ofn_session" in response.cookies,
            name,
            f"answered {response.status_code}, not a signed-in redirect",
        )
        if i >= SIGN_IN_WARMUP:
            latencies_ms.append(elapsed_ms)
            size += len(response.content)
    return _row(name, latencies_ms, size / requests)


def print_report(
    timings: dict[str, float],
    sizes: dict[str, tuple[int, str]],
    rows: list[dict[str, Any]],
    server_version: str,
) -> None:
    """The machine, the data set, how long it took to load, and the latencies."""
    print(
        f"\nMachine: {_cpu_model()}, nproc {os.cpu_count()}; PostgreSQL"
        f" {server_version}; Python {platform.python_version()};"
        f" uvicorn {uvicorn.__version__}, httpx {httpx.__version__}\n"
    )
    print("| table | rows | size with indexes |\n|---|--:|--:|")
    for table, (count, size) in sizes.items():
        print(f"| {table} | {count:,} | {size} |")
    load_s = " · ".join(f"{step} {seconds:.0f} s" for step, seconds in timings.items())
    print(f"\nLoad: {load_s} (total {sum(timings.values()):.0f} s)\n")
    print("| page | requests | p50 ms | p99 ms | max ms | page size KB |")
    print("|---|--:|--:|--:|--:|--:|")
    for row in rows:
        print(
            f"| {row['page']} | {row['requests']} | {row['p50']:.2f} |"
            f" {row['p99']:.2f} | {row['max']:.2f} | {row['kb']:.1f} |"
        )
    sys.stdout.flush()


def _row(name: str, latencies_ms: list[float], mean_bytes: float) -> dict[str, Any]:
    latencies_ms = sorted(latencies_ms)
    count = len(latencies_ms)
    return {
        "page": name,
        "requests": count,
        "p50": statistics.median(latencies_ms),
        "p99": latencies_ms[math.ceil(0.99 * count) - 1],
        "max": latencies_ms[-1],
        "kb": mean_bytes / 1024,
    }


def _get(client: httpx.Client, page: Page, visit: Visit) -> None:
    _check(page.name, visit, client.get(visit.path))


def _check(name: str, visit: Visit, response: httpx.Response) -> None:
    """Stop the run unless the answer is the page the visit asked for."""
    where = f"{name} ({visit.path})"
    _require(response.status_code == 200, where, f"answered {response.status_code}")
    text = response.text
    _require(
        f'<a href="/console/account">{USERNAME}</a>' in text, where, "not signed in"
    )
    for expected in visit.contains:
        _require(expected in text, where, f"lacks {expected!r}")
    for unexpected in visit.absent:
        _require(unexpected not in text, where, f"shows {unexpected!r}")
    for counted, times in visit.counts:
        found = text.count(counted)
        _require(found == times, where, f"has {found} of {counted!r}, not {times}")
    rows = text.count('<tr data-id="')
    _require(rows in visit.rows, where, f"lists {rows} rows, not {visit.rows}")


def _require(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise PageError(f"{where}: {problem}")


def _older(client: httpx.Client, path: str) -> str:
    """The path of the page an "Older messages" link leads to."""
    page = client.get(path)
    link = _OLDER_LINK.search(page.text)
    _require(page.status_code == 200 and link is not None, path, "no older page")
    assert link is not None
    return urljoin(path, html.unescape(link[1]))


def _form_token(text: str) -> str:
    token = _CSRF_FIELD.search(text)
    _require(token is not None, "sign-in", "the form has no csrf_token")
    assert token is not None
    return token[1]


def _server_version(conn: Connection[Any]) -> str:
    row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    return str(row["server_version"])


if __name__ == "__main__":
    main()
