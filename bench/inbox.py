"""Throughput and latency of the inbox gateway beside its own no-op endpoint.

Drives a running gateway from separate client processes over HTTP/1.1
keep-alive and prints Markdown tables: durable 1 KB JSON messages at a fixed
offered rate and at saturation, the same signed (Standard Webhooks, each with
its own webhook-id) to an inbox that requires it, ``GET /healthz`` the same
way, and the time from posting a matching message to its job state
``success``. Without ``--inbox-url`` it starts a LocalStack of its own and
stops it afterwards.

    python bench/inbox.py [--duration-s 10] [--rate 500] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from devstack.processes import StackError
from devstack.stack import LocalStack
from shared.inbox_auth import parse_hmac_secret, sign

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "referrals" / "project.yaml"
LOG_DIR = ROOT / ".stack" / "bench-logs"

BODY_BYTES = 1024
# Matches no trigger of the example, so no runs compete with the gateway for CPU.
SURVEY = {"form": "survey", "pad": ""}
REFERRAL = {"form": "referral", "patient": {"name": "Amina"}, "facility": "Kisumu"}

REQUEST_TIMEOUT_S = 30.0
# Wait this long for the consumers to work through the backlog the load left.
CATCH_UP_TIMEOUT_S = 180.0
JOB_STATE_TIMEOUT_S = 30.0
JOB_STATE_POLL_S = 0.01
BETWEEN_MESSAGES_S = 0.1

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
# What a broken, closed or garbled connection raises; named in the errors column.
_TRANSPORT_ERRORS = (OSError, EOFError, TimeoutError, ValueError)
# A trailing colon right-aligns a column, as ``---:`` does in Markdown.
LOAD_COLUMNS = "endpoint|mode|offered/s:|achieved/s:|p50 ms:|p99 ms:|max ms:|errors"
END_TO_END_COLUMNS = "path|messages:|p50 ms:|p99 ms:|max ms:|failures"


@dataclass(frozen=True)
class Target:
    """An endpoint: where to connect, the request's bytes, the status that counts.

    With a ``signing_key``, each send is signed afresh under a new webhook-id.
    """

    name: str
    host: str
    port: int
    request: bytes
    ok_status: int
    signing_key: bytes | None = None

    def encoded(self) -> bytes:
        """The bytes of one send."""
        if self.signing_key is None:
            return self.request
        head, _, body = self.request.partition(b"\r\n\r\n")
        lines = "".join(
            f"\r\n{name}: {value}"
            for name, value in signature_headers(self.signing_key, body).items()
        )
        return head + lines.encode() + b"\r\n\r\n" + body


def signature_headers(key: bytes, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers signing ``body`` now, under a new webhook-id."""
    webhook_id = f"msg_{uuid.uuid4().hex}"
    timestamp_s = int(time.time())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": sign(key, webhook_id, timestamp_s, body),
    }


@dataclass(frozen=True)
class Load:
    """How one measurement drives its target; no rate means closed loop."""

    connections: int
    warmup_s: float
    duration_s: float
    rate_per_s: float | None = None


@dataclass(frozen=True)
class Window:
    """Client-local times of one measurement, from ``time.perf_counter``."""

    start_s: float
    measure_s: float
    end_s: float
    give_up_s: float

    @classmethod
    def starting_at(cls, wall_start_s: float, load: Load) -> Window:
        start_s = time.perf_counter() + (wall_start_s - time.time())
        measure_s = start_s + load.warmup_s
        end_s = measure_s + load.duration_s
        return cls(start_s, measure_s, end_s, end_s + load.duration_s)


@dataclass(frozen=True)
class WorkerJob:
    """One client process's share of a measurement."""

    target: Target
    load: Load
    index: int
    workers: int
    # Wall clock, so that every client process starts at the same moment.
    wall_start_s: float


@dataclass
class Outcome:
    """What one client process saw inside the measurement window."""

    measure_s: float
    ok_status: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    last_answer_s: float = 0.0

    def add(self, sent_s: float, answer: int | str) -> None:
        if sent_s < self.measure_s:
            return
        answered_s = time.perf_counter()
        self.last_answer_s = max(self.last_answer_s, answered_s)
        if answer == self.ok_status:
            self.latencies_ms.append((answered_s - sent_s) * 1000)
        else:
            self.errors[str(answer)] += 1

    @property
    def busy_s(self) -> float:
        return self.last_answer_s - self.measure_s


@dataclass(frozen=True)
class Result:
    """The merged outcome of every client process."""

    latencies_ms: list[float]
    errors: Counter[str]
    elapsed_s: float

    @classmethod
    def merge(cls, outcomes: Sequence[Outcome], duration_s: float) -> Result:
        # A server that falls behind stretches the window past its duration.
        elapsed_s = max(duration_s, *(outcome.busy_s for outcome in outcomes))
        return cls(
            [latency for outcome in outcomes for latency in outcome.latencies_ms],
            sum((outcome.errors for outcome in outcomes), Counter[str]()),
            elapsed_s,
        )


@dataclass(frozen=True)
class Endpoints:
    """Where the gateway's endpoints and, if known, the API answer; a signed
    inbox is one that requires signatures, with its ``whsec_`` secret."""

    inbox_url: str
    noop_url: str
    api_url: str | None
    api_token: str | None
    signed_inbox_url: str | None = None
    signing_secret: str | None = None


class Connection:
    """One keep-alive HTTP/1.1 connection that sends pre-encoded requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def send(self, request: bytes) -> int:
        """Write the request and read the whole answer; returns its status."""
        # No drain: one request is in flight, so the write buffer stays small.
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        await self.reader.readexactly(content_length(head))
        return int(head[9:12])

    def close(self) -> None:
        self.writer.close()


def content_length(head: bytes) -> int:
    found = _CONTENT_LENGTH.search(head)
    if found is None:
        raise ValueError(f"an answer without Content-Length: {head[:80]!r}")
    return int(found.group(1))


async def exchange(
    connection: Connection | None, target: Target
) -> tuple[Connection | None, int | str]:
    """One request; a broken connection is dropped and named as the answer."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            connection = connection or await Connection.open(target.host, target.port)
            return connection, await connection.send(target.encoded())
    except _TRANSPORT_ERRORS as exc:
        if connection is not None:
            connection.close()
        return None, type(exc).__name__


async def sleep_until(when_s: float) -> None:
    delay_s = when_s - time.perf_counter()
    if delay_s > 0:
        await asyncio.sleep(delay_s)


def evenly(first_s: float, interval_s: float, end_s: float) -> Iterator[float]:
    """Send times of an open loop, fixed in advance whatever the answers take."""
    sent_s = first_s
    while sent_s < end_s:
        yield sent_s
        sent_s += interval_s


def back_to_back(start_s: float, end_s: float) -> Iterator[float]:
    """Send times of a closed loop: the next request as soon as the answer is in."""
    yield start_s
    while (now_s := time.perf_counter()) < end_s:
        yield now_s


def send_schedules(job: WorkerJob, window: Window) -> list[Iterator[float]]:
    """One schedule per connection of this process, interleaved with the others'."""
    load = job.load
    indices = range(job.index, load.connections, job.workers)
    if load.rate_per_s is None:
        return [back_to_back(window.start_s, window.end_s) for _ in indices]
    interval_s = load.connections / load.rate_per_s
    return [
        evenly(window.start_s + k / load.rate_per_s, interval_s, window.end_s)
        for k in indices
    ]


async def drive_connection(
    target: Target, times: Iterator[float], give_up_s: float, outcome: Outcome
) -> None:
    """Send on schedule; latency counts from the planned send time.

    Counting from the plan, not from the actual write, keeps a slow answer's
    delay on the requests queued behind it (no coordinated omission).
    """
    connection: Connection | None = None
    for sent_s in times:
        await sleep_until(sent_s)
        if time.perf_counter() > give_up_s:
            outcome.add(sent_s, "not sent: client behind schedule")
            continue
        connection, answer = await exchange(connection, target)
        outcome.add(sent_s, answer)
    if connection is not None:
        connection.close()


async def drive_share(job: WorkerJob) -> Outcome:
    window = Window.starting_at(job.wall_start_s, job.load)
    outcome = Outcome(window.measure_s, job.target.ok_status)
    await asyncio.gather(
        *(
            drive_connection(job.target, times, window.give_up_s, outcome)
            for times in send_schedules(job, window)
        )
    )
    return outcome


def has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed, so that the client outpaces the server."""
    if not has_uvloop():
        return asyncio.new_event_loop()
    import uvloop

    return uvloop.new_event_loop()


def run_worker(job: WorkerJob) -> Outcome:
    """Entry point of a client process."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(drive_share(job))


def measure(
    pool: ProcessPoolExecutor, workers: int, target: Target, load: Load
) -> Result:
    """Run a load from every client process at once and merge what they saw."""
    # A second's head start lets every process be waiting before the load begins.
    wall_start_s = time.time() + 1.0
    futures = [
        pool.submit(run_worker, WorkerJob(target, load, index, workers, wall_start_s))
        for index in range(workers)
    ]
    return Result.merge([future.result() for future in futures], load.duration_s)


def percentile(sorted_ms: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_ms)))
    return sorted_ms[rank - 1]


def latency_cells(latencies_ms: Sequence[float]) -> list[str]:
    """p50, p99 and max, or dashes when nothing succeeded."""
    if not latencies_ms:
        return ["—", "—", "—"]
    ordered = sorted(latencies_ms)
    values = (percentile(ordered, 0.5), percentile(ordered, 0.99), ordered[-1])
    return [f"{value:.1f}" for value in values]


def errors_cell(errors: Counter[str]) -> str:
    if not errors:
        return "0"
    kinds = ", ".join(f"{kind}: {count}" for kind, count in errors.most_common())
    return f"{errors.total()} ({kinds})"


def mode_name(load: Load) -> str:
    return "saturation" if load.rate_per_s is None else "fixed rate"


def table_row(target: Target, load: Load, result: Result) -> list[str]:
    offered = "max" if load.rate_per_s is None else f"{load.rate_per_s:.0f}"
    return [
        target.name,
        f"{mode_name(load)}, {load.connections} conns",
        offered,
        f"{len(result.latencies_ms) / result.elapsed_s:.0f}",
        *latency_cells(result.latencies_ms),
        errors_cell(result.errors),
    ]


def markdown_table(columns: str, rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table of ``|``-separated columns, padded for a terminal too."""
    headers = [column.rstrip(":") for column in columns.split("|")]
    right = [column.endswith(":") for column in columns.split("|")]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if is_right else cell.ljust(width)
            for cell, width, is_right in zip(row, widths, right, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|".join(
        "-" * (width + 1) + (":" if is_right else "-")
        for width, is_right in zip(widths, right, strict=True)
    )
    return "\n".join([line(headers), f"|{rule}|", *map(line, rows)])


def survey_body() -> bytes:
    """A JSON document of exactly ``BODY_BYTES`` that matches no trigger."""
    empty = len(json.dumps(SURVEY).encode())
    return json.dumps({**SURVEY, "pad": "x" * (BODY_BYTES - empty)}).encode()


def to_target(
    name: str,
    url: str,
    ok_status: int,
    body: bytes = b"",
    signing_key: bytes | None = None,
) -> Target:
    """Pre-encode the one request a target is sent, POST with a body, else GET."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"expected an http:// URL, found {url!r}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"{'POST' if body else 'GET'} {path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
    ]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return Target(
        name, parts.hostname, parts.port or 80, request, ok_status, signing_key
    )


def wait_for_job_state(
    client: httpx.Client, receipt_url: str, api_token: str | None, deadline_s: float
) -> str:
    """The message's first settled job state, polled from the API."""
    headers = {"authorization": f"Bearer {api_token}"}
    while time.perf_counter() < deadline_s:
        response = client.get(receipt_url, headers=headers)
        states = response.json()["job_states"] if response.status_code == 200 else []
        settled = [s["state"] for s in states if s["state"] != "in progress"]
        if settled:
            return str(settled[0])
        time.sleep(JOB_STATE_POLL_S)
    return "no job state in time"


def post_and_wait(
    client: httpx.Client,
    endpoints: Endpoints,
    timeout_s: float,
    signing_key: bytes | None = None,
) -> tuple[str, float]:
    """Post a referral, signed with ``signing_key`` if given; returns its job
    state and milliseconds from post to state."""
    body = json.dumps(REFERRAL).encode()
    headers = {"content-type": "application/json"}
    if signing_key is not None:
        headers |= signature_headers(signing_key, body)
    started_s = time.perf_counter()
    try:
        posted = client.post(endpoints.inbox_url, content=body, headers=headers)
        if posted.status_code != 202:
            return f"post answered {posted.status_code}", 0.0
        receipt_url = f"{endpoints.api_url}/api/messages/{posted.json()['message_id']}"
        state = wait_for_job_state(
            client, receipt_url, endpoints.api_token, started_s + timeout_s
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__, 0.0
    return state, (time.perf_counter() - started_s) * 1000


def measure_end_to_end(endpoints: Endpoints, count: int) -> list[str] | None:
    """Post referrals one at a time; a table row, or None if the jobs never ran."""
    with httpx.Client(timeout=10.0) as client:
        progress("end to end: waiting for the consumers to work through the backlog")
        state, _ = post_and_wait(client, endpoints, CATCH_UP_TIMEOUT_S)
        if state != "success":
            progress(f"end to end: skipped, the first referral ended with {state!r}")
            return None
        progress(f"end to end: {count} referrals, one at a time")
        latencies_ms: list[float] = []
        failures: Counter[str] = Counter()
        for _ in range(count):
            state, elapsed_ms = post_and_wait(client, endpoints, JOB_STATE_TIMEOUT_S)
            if state == "success":
                latencies_ms.append(elapsed_ms)
            else:
                failures[state] += 1
            time.sleep(BETWEEN_MESSAGES_S)
    return [
        "inbox POST referral → job state success",
        str(count),
        *latency_cells(latencies_ms),
        errors_cell(failures),
    ]


def cpu_model() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return found.group(1).strip() if found else "unknown CPU"


def machine_line(workers: int) -> str:
    loop = "uvloop" if has_uvloop() else "asyncio"
    return (
        f"machine: nproc {len(os.sched_getaffinity(0))}, {cpu_model()}, "
        f"Python {platform.python_version()}; client processes: {workers}, {loop}"
    )


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def own_stack() -> Iterator[Endpoints]:
    """A LocalStack with the example deployed as project ``bench``."""
    stack = LocalStack(log_dir=LOG_DIR, log_format="json")
    try:
        progress("starting PostgreSQL, the broker, the Vault server and the services")
        stack.start_servers()
        stack.prepare()
        stack.start_services()
        project = stack.deploy(EXAMPLE, "bench")
        signed = stack.deploy(EXAMPLE, "bench-signed")
        yield Endpoints(
            project["inbox_url"],
            f"{stack.inbox_url}/healthz",
            stack.api_url,
            stack.admin_token,
            signed["inbox_url"],
            signing_secret_for(stack, "bench-signed", signed["inbox_url"]),
        )
    finally:
        progress("stopping the stack")
        stack.stop()


def signing_secret_for(stack: LocalStack, project: str, inbox_url: str) -> str:
    """A new signing secret of the project's inbox, once gateways require it."""
    with httpx.Client(
        base_url=stack.api_url, headers=stack.auth_headers(), timeout=30
    ) as api:
        answer = api.post(
            f"/api/projects/{project}/inbox-credentials",
            json={"kind": "hmac", "name": "bench"},
        )
        answer.raise_for_status()
    secret: str = answer.json()["secret"]
    # Gateways reload credentials within moments; an open inbox takes anything.
    deadline_s = time.monotonic() + 30
    while httpx.post(inbox_url, json={}).status_code != 401:
        if time.monotonic() > deadline_s:
            raise StackError(f"the inbox of {project} did not start requiring auth")
        time.sleep(0.2)
    return secret


def endpoints_for(args: argparse.Namespace) -> AbstractContextManager[Endpoints]:
    """The given running gateway, or else a stack of our own."""
    if args.inbox_url is None:
        return own_stack()
    parts = urlsplit(args.inbox_url)
    noop_url = args.noop_url or f"{parts.scheme}://{parts.netloc}/healthz"
    return nullcontext(
        Endpoints(
            args.inbox_url,
            noop_url,
            args.api_url,
            args.api_token,
            args.signed_inbox_url,
            args.signing_secret,
        )
    )


def run_loads(args: argparse.Namespace, endpoints: Endpoints) -> list[list[str]]:
    """The main table's rows, inbox first; the no-op runs first, on a quiet machine."""
    body = survey_body()
    inbox = to_target("inbox POST 1 KB JSON (durable)", endpoints.inbox_url, 202, body)
    signed = None
    if endpoints.signed_inbox_url and endpoints.signing_secret:
        signed = to_target(
            "inbox POST 1 KB JSON, signed (durable)",
            endpoints.signed_inbox_url,
            202,
            body,
            parse_hmac_secret(endpoints.signing_secret),
        )
    noop = to_target("no-op GET /healthz", endpoints.noop_url, 200)
    fixed = Load(args.connections, args.warmup_s, args.duration_s, args.rate)
    saturation = Load(args.connections, args.warmup_s, args.duration_s)
    # Fresh interpreters: the clients inherit none of the stack's processes.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.processes, mp_context=context) as pool:

        def row(target: Target, load: Load) -> list[str]:
            # Each row starts once the consumers have caught up with the
            # messages of the one before, which would otherwise share the CPU.
            drain(endpoints)
            progress(f"{target.name}: {mode_name(load)}")
            return table_row(target, load, measure(pool, args.processes, target, load))

        noop_rows = [row(noop, fixed), row(noop, saturation)]
        inbox_rows = [row(inbox, fixed), row(inbox, saturation)]
        if signed is not None:
            inbox_rows += [row(signed, fixed), row(signed, saturation)]
        return [*inbox_rows, *noop_rows]


def drain(endpoints: Endpoints) -> None:
    """Wait until the consumers have worked through what the gateway took;
    nothing to wait for without the API."""
    if endpoints.api_url is None:
        return
    with httpx.Client(timeout=10.0) as client:
        # Messages of one project share a partition: this one's job state
        # means every earlier message of the project has been consumed.
        post_and_wait(client, endpoints, CATCH_UP_TIMEOUT_S)
        if endpoints.signed_inbox_url and endpoints.signing_secret:
            signed = replace(endpoints, inbox_url=endpoints.signed_inbox_url)
            key = parse_hmac_secret(endpoints.signing_secret)
            post_and_wait(client, signed, CATCH_UP_TIMEOUT_S, key)


def report(
    args: argparse.Namespace, rows: list[list[str]], end_to_end: list[str] | None
) -> str:
    lines = [
        machine_line(args.processes),
        f"load: {args.warmup_s:g} s warm-up, then {args.duration_s:g} s per row; "
        "latency from the planned send time to the whole answer, of 202s (inbox) "
        "and 200s (no-op) only; every other answer is in errors",
        f"note: the inbox body is {BODY_BYTES} bytes of JSON with "
        '"form": "survey", which matches no trigger of examples/referrals, '
        "so no runs compete for CPU",
        "",
        markdown_table(LOAD_COLUMNS, rows),
    ]
    if end_to_end is not None:
        lines += [
            "",
            f"end to end: referrals one at a time, each receipt polled every "
            f"{JOB_STATE_POLL_S * 1000:g} ms; a first one that waits out the "
            "backlog of the load is not counted",
            "",
            markdown_table(END_TO_END_COLUMNS, [end_to_end]),
        ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--inbox-url", help="drive this running inbox; starts nothing")
    add("--noop-url", help="default: /healthz beside the inbox")
    add(
        "--signed-inbox-url",
        help="an inbox that requires signatures, driven with --signing-secret",
    )
    add(
        "--signing-secret",
        default=os.environ.get("OPENFN_BENCH_SIGNING_SECRET"),
        help="its whsec_ secret (default: $OPENFN_BENCH_SIGNING_SECRET)",
    )
    add("--api-url", help="the API's base URL, for the end-to-end latency")
    add(
        "--api-token",
        default=os.environ.get("OPENFN_API_TOKEN"),
        help="an API token for --api-url (default: $OPENFN_API_TOKEN)",
    )
    add("--rate", type=float, default=500.0, help="fixed offered rate, messages/s")
    add("--duration-s", type=float, default=10.0, help="measured seconds per row")
    add("--warmup-s", type=float, default=2.0, help="unmeasured seconds per row")
    add("--connections", type=int, default=32, help="concurrent connections")
    add("--processes", type=int, default=2, help="client processes")
    add("--end-to-end", type=int, default=50, help="referrals, one at a time")
    args = parser.parse_args(argv)
    if args.inbox_url is None and (
        args.noop_url or args.api_url or args.signed_inbox_url
    ):
        parser.error("--noop-url, --api-url and --signed-inbox-url need --inbox-url")
    if args.signed_inbox_url and not args.signing_secret:
        parser.error("--signed-inbox-url needs --signing-secret")
    for url in (args.inbox_url, args.noop_url, args.api_url, args.signed_inbox_url):
        if url is not None and not url.startswith("http://"):
            parser.error(f"expected an http:// URL, found {url!r}")
    return args


def run(args: argparse.Namespace) -> str:
    with endpoints_for(args) as endpoints:
        rows = run_loads(args, endpoints)
        end_to_end = None
        if endpoints.api_url is not None and args.end_to_end > 0:
            end_to_end = measure_end_to_end(endpoints, args.end_to_end)
    return report(args, rows, end_to_end)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(run(args))
    except StackError as exc:
        progress(f"bench: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
