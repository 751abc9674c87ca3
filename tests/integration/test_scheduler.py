"""The scheduler against the real broker and PostgreSQL: cron ticks fire once and
are never lost, cron runs carry their cursor, lost runs are reported once, and
delayed runs are sent when due.

Cron tests drive scheduler cores with their own clock, set in a year far
ahead: to the platform's scheduler, on the real clock, those ticks are not
due yet, so it leaves them alone.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from devstack.stack import LocalStack
from services.api.deploy import deploy_project
from services.dispatcher.planning import job_spec
from services.scheduler.cron_triggers import CronConfig, CronTriggers
from services.scheduler.delayed_runs import DelayedRuns
from services.scheduler.firing import cron_run_id
from services.scheduler.lost_runs import LOST_RUN_ERROR, LostRuns
from services.scheduler.service import Scheduler
from shared.catalog import CatalogSnapshot, ProjectCatalog, read_snapshot
from shared.db import apply_migrations
from shared.db.connection import connect
from shared.events import RUN_EVENT, RunFinished, RunRequest, TriggerRef
from shared.kafka import EventProducer, ensure_topics
from shared.kafka.producer import producer_config
from shared.model import Project, RunOrigin, RunStatus
from shared.settings import MiB
from shared.topics import Topics
from tests.conftest import VaultServer
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DEAD_RUNNER = "runner-that-died"
CRON = CronConfig(misfire_grace_s=120, cursor_max_bytes=50_000)

COUNTER = """\
jobs:
  count:
    trigger: every-minute
    expression: |
      fn(lambda state: {**state, "n": state.get("n", 0) + 1})
triggers:
  every-minute:
    cron: "* * * * *"
"""

ON_MESSAGE = """\
jobs:
  add-one:
    trigger: numbers
    expression: |
      fn(lambda state: {**state, "n": state.get("n", 0) + 1})
triggers:
  numbers:
    criteria: '{"form": "number"}'
"""

# A scheduler replica that dies once the broker has acknowledged the run
# requests of a tick, before it records the tick as fired.
DYING_REPLICA = """\
import sys, time
from datetime import datetime
from services.scheduler.cron_triggers import CronConfig, CronTriggers
from services.scheduler.service import Scheduler
from shared.catalog import ProjectCatalog
from shared.kafka import EventProducer
from shared.logging import configure_logging
from shared.topics import Topics

url, bootstrap, prefix, now = sys.argv[1:]
configure_logging()  # to stderr: stdout only says "acked"


class StallsAfterAck(EventProducer):
    def produce_all(self, records, timeout_s=30.0):
        super().produce_all(records, timeout_s)
        print("acked", flush=True)
        time.sleep(3600)


catalog = ProjectCatalog(url).start()
producer = StallsAfterAck({"bootstrap.servers": bootstrap})
cron = CronTriggers(
    catalog, producer, Topics.with_prefix(prefix), CronConfig(120, 50_000)
)
Scheduler(url, [cron], clock=lambda: datetime.fromisoformat(now)).run_once()
"""


class Clock:
    """A clock the test sets; the scheduler cores read it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def deploy(
    url: str, vault: VaultServer, text: str, last_tick: datetime | None = None
) -> Project:
    """Deploy a project in-process; with ``last_tick``, its cron triggers get that
    last tick in the same transaction, so no scheduler sees them without it."""
    name = f"sched-{uuid4().hex[:8]}"
    with connect(url, autocommit=True) as conn, conn.transaction():
        project_id, _ = deploy_project(
            conn,
            vault.client(),
            name,
            text,
            "p.yaml",
            authorize=lambda *_: None,
            actor="tests",
        )
        if last_tick is not None:
            conn.execute(
                "INSERT INTO cron_state (trigger_id, last_tick) SELECT id, %s"
                " FROM triggers WHERE project_id = %s AND kind = 'cron'",
                (last_tick, project_id),
            )
    project = read_snapshot_of(url).by_id.get(project_id)
    assert project is not None
    return project


def read_snapshot_of(url: str) -> CatalogSnapshot:
    with connect(url, autocommit=True) as conn:
        return read_snapshot(conn)


def fresh_prefix(bootstrap: str) -> str:
    """A topic prefix of this test's own, so only its cores write there."""
    prefix = f"sched-{uuid4().hex[:8]}."
    ensure_topics(
        {"bootstrap.servers": bootstrap},
        Topics.with_prefix(prefix).max_message_bytes(MiB, MiB),
        partitions=3,
        replication_factor=1,
    )
    return prefix


def producer_for(bootstrap: str) -> EventProducer:
    return EventProducer(producer_config({"bootstrap.servers": bootstrap}, MiB, 30))


def read_topic(bootstrap: str, topic: str, idle_s: float = 1.5) -> list[bytes]:
    """Every record value of a topic, read from the start until it stays idle."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid4()}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 20,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        )
        values: list[bytes] = []
        while True:
            record = consumer.poll(idle_s)
            if record is None:
                return values
            if record.error() is None:
                values.append(record.value() or b"")
    finally:
        consumer.close()


def run_ids_sent(bootstrap: str, prefix: str, trigger_id: UUID) -> Counter[UUID]:
    """How often each run id was asked for by the trigger's ticks."""
    values = read_topic(bootstrap, Topics.with_prefix(prefix).run_requests)
    requests = [RunRequest.model_validate_json(value) for value in values]
    return Counter(r.run_id for r in requests if r.trigger.id == trigger_id)


def last_tick(url: str, trigger_id: UUID) -> datetime | None:
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT last_tick FROM cron_state WHERE trigger_id = %s", (trigger_id,)
        ).fetchone()
    return row["last_tick"] if row else None


def wait_for_tick(url: str, trigger_id: UUID, tick: datetime) -> None:
    eventually(lambda: True if last_tick(url, trigger_id) == tick else None, 10)


def fire_until_recorded(
    core: Scheduler, url: str, trigger_id: UUID, tick: datetime
) -> None:
    """Run rounds until the tick is recorded: a dead replica's row locks last
    until PostgreSQL sees its connection close."""

    def fired() -> bool | None:
        core.run_once()
        return True if last_tick(url, trigger_id) == tick else None

    eventually(fired, 10)


def cron_core(
    catalog: ProjectCatalog, url: str, bootstrap: str, prefix: str, clock: Clock
) -> Scheduler:
    """A scheduler that only fires cron triggers, on the test's clock."""
    topics = Topics.with_prefix(prefix)
    cron = CronTriggers(catalog, producer_for(bootstrap), topics, CRON)
    return Scheduler(url, [cron], interval_s=0.01, clock=clock)


def finished_run(api: httpx.Client, run_id: UUID) -> dict[str, Any] | None:
    response = api.get(f"/api/runs/{run_id}")
    if response.status_code != 200 or response.json()["finished_at"] is None:
        return None
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def database(postgres_url: str) -> str:
    apply_migrations(postgres_url)
    return postgres_url


@pytest.fixture
def catalog(database: str) -> Iterator[ProjectCatalog]:
    catalog = ProjectCatalog(database, refresh_s=0.5).start()
    yield catalog
    catalog.stop()


def test_two_schedulers_over_ten_ticks_fire_each_tick_exactly_once(
    database: str, kafka_bootstrap: str, vault: VaultServer
) -> None:
    t0 = datetime(2101, 1, 1, tzinfo=UTC)
    project = deploy(database, vault, COUNTER, last_tick=t0)
    trigger, job = project.triggers[0], project.jobs[0]
    prefix = fresh_prefix(kafka_bootstrap)
    clock = Clock(t0)
    stop = threading.Event()
    catalogs = [ProjectCatalog(database).start() for _ in range(2)]
    replicas = [
        cron_core(c, database, kafka_bootstrap, prefix, clock) for c in catalogs
    ]
    threads = [threading.Thread(target=r.run, args=(stop,)) for r in replicas]
    for thread in threads:
        thread.start()
    try:
        for k in range(1, 11):
            clock.now = t0 + k * MINUTE + timedelta(seconds=1)
            wait_for_tick(database, trigger.id, t0 + k * MINUTE)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for c in catalogs:
            c.stop()

    sent = run_ids_sent(kafka_bootstrap, prefix, trigger.id)
    ticks = [t0 + k * MINUTE for k in range(1, 11)]
    assert sorted(sent) == sorted(cron_run_id(trigger.id, job.id, t) for t in ticks)
    assert set(sent.values()) == {1}
    assert last_tick(database, trigger.id) == ticks[-1]


def test_killing_a_scheduler_after_it_sent_a_tick_loses_no_tick_and_no_run_id(
    database: str, kafka_bootstrap: str, vault: VaultServer, catalog: ProjectCatalog
) -> None:
    """The worst moment to die: the broker has the tick's requests, the
    database does not know the tick fired. The survivor fires it again under
    the same run id, and every tick after it."""
    t0 = datetime(2102, 1, 1, tzinfo=UTC)
    project = deploy(database, vault, COUNTER, last_tick=t0)
    trigger, job = project.triggers[0], project.jobs[0]
    prefix = fresh_prefix(kafka_bootstrap)
    clock = Clock(t0)
    catalog.reload()
    survivor = cron_core(catalog, database, kafka_bootstrap, prefix, clock)
    ticks = [t0 + k * MINUTE for k in range(1, 11)]
    killed_at = ticks[3]
    try:
        for tick in ticks[:3]:
            clock.now = tick
            survivor.run_once()
        argv = [database, kafka_bootstrap, prefix, killed_at.isoformat()]
        with subprocess.Popen(
            [sys.executable, "-c", DYING_REPLICA, *argv],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        ) as replica:
            assert replica.stdout is not None
            ready, _, _ = select.select([replica.stdout], [], [], 30)
            assert ready, "the replica's requests were never acknowledged"
            assert replica.stdout.readline() == b"acked\n"
            replica.send_signal(signal.SIGKILL)
            replica.wait()
        assert last_tick(database, trigger.id) == ticks[2]
        for tick in ticks[3:]:
            clock.now = tick
            fire_until_recorded(survivor, database, trigger.id, tick)
    finally:
        survivor.close()

    sent = run_ids_sent(kafka_bootstrap, prefix, trigger.id)
    assert sorted(sent) == sorted(cron_run_id(trigger.id, job.id, t) for t in ticks)
    assert sent.pop(cron_run_id(trigger.id, job.id, killed_at)) == 2
    assert set(sent.values()) == {1}
    assert last_tick(database, trigger.id) == ticks[-1]


def test_a_cron_jobs_second_run_sees_the_first_runs_final_state(
    platform: LocalStack,
    database: str,
    vault: VaultServer,
    catalog: ProjectCatalog,
    api: httpx.Client,
) -> None:
    assert platform.servers is not None
    t0 = datetime(2103, 1, 1, tzinfo=UTC)
    project = deploy(database, vault, COUNTER, last_tick=t0)
    trigger, job = project.triggers[0], project.jobs[0]
    catalog.reload()
    clock = Clock(t0)
    core = cron_core(
        catalog,
        database,
        platform.servers.kafka_bootstrap,
        platform.topic_prefix,
        clock,
    )
    runs = []
    try:
        for k in (1, 2):
            clock.now = t0 + k * MINUTE
            core.run_once()
            run_id = cron_run_id(trigger.id, job.id, clock.now)
            runs.append(eventually(partial(finished_run, api, run_id), 20))
    finally:
        core.close()

    first, second = runs
    assert (first["status"], first["trigger_kind"]) == ("succeeded", "cron")
    assert (first["input_state"], first["final_state"]) == ({}, {"n": 1})
    assert (second["input_state"], second["final_state"]) == ({"n": 1}, {"n": 2})


def insert_started_run(
    conn: psycopg.Connection[DictRow], project: Project, started_at: datetime
) -> UUID:
    """A run as the recorder stores it from a start event, claimed by its runner."""
    run_id = uuid4()
    job, trigger = project.jobs[0], project.triggers[0]
    conn.execute(
        "INSERT INTO runs (id, project_id, job_id, job_name, trigger_id,"
        " trigger_kind, status, started_at, input_state, runner, origin, attempt)"
        " VALUES (%s, %s, %s, %s, %s, 'message', 'started', %s, %s, %s, 'message', 1)",
        (
            run_id,
            project.id,
            job.id,
            job.name,
            trigger.id,
            started_at,
            Jsonb({"data": {"n": 1}}),
            DEAD_RUNNER,
        ),
    )
    conn.execute(
        "INSERT INTO run_claims (run_id, runner, claimed_at) VALUES (%s, %s, %s)",
        (run_id, DEAD_RUNNER, started_at),
    )
    return run_id


def claim_of(conn: psycopg.Connection[DictRow], run_id: UUID) -> dict[str, Any]:
    row = conn.execute(
        "SELECT finished_at, lost FROM run_claims WHERE run_id = %s", (run_id,)
    ).fetchone()
    assert row is not None
    return row


def test_a_run_whose_runner_died_is_recorded_lost_once(
    platform: LocalStack, database: str, vault: VaultServer, api: httpx.Client
) -> None:
    assert platform.servers is not None
    bootstrap = platform.servers.kafka_bootstrap
    topics = Topics.with_prefix(platform.topic_prefix)
    project = deploy(database, vault, ON_MESSAGE)
    now = datetime.now(UTC)
    sweep = LostRuns(producer_for(bootstrap), topics, lost_after_s=130)
    with connect(database, autocommit=True) as conn:
        dead = insert_started_run(conn, project, now - timedelta(hours=1))
        alive = insert_started_run(conn, project, now - timedelta(seconds=5))
        # The platform's own scheduler competes for the dead run: one of the
        # two reports it.
        sweep.run(conn, now)
        run = eventually(lambda: finished_run(api, dead), 20)
        again = sweep.run(conn, now)
        dead_claim, alive_claim = claim_of(conn, dead), claim_of(conn, alive)
        conn.execute(
            "UPDATE run_claims SET finished_at = now() WHERE run_id = %s", (alive,)
        )

    assert (run["status"], run["exit_code"], run["error"]) == (
        "lost",
        4,
        LOST_RUN_ERROR,
    )
    assert run["input_state"] == {"data": {"n": 1}}
    assert dead_claim["finished_at"] is not None
    assert dead_claim["lost"] is True
    assert alive_claim["finished_at"] is None
    assert again == 0
    events = [
        event
        for value in read_topic(bootstrap, topics.run_events)
        if (event := RUN_EVENT.validate_json(value)).run_id == dead
    ]
    assert len(events) == 1
    assert isinstance(events[0], RunFinished)
    assert (events[0].status, events[0].runner) == (RunStatus.LOST, DEAD_RUNNER)


def test_a_claim_left_open_after_a_recorded_finish_is_closed_not_lost(
    platform: LocalStack, database: str, vault: VaultServer, api: httpx.Client
) -> None:
    assert platform.servers is not None
    topics = Topics.with_prefix(platform.topic_prefix)
    project = deploy(database, vault, ON_MESSAGE)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    sweep = LostRuns(producer_for(platform.servers.kafka_bootstrap), topics, 130)
    with connect(database, autocommit=True) as conn:
        run_id = insert_started_run(conn, project, long_ago)
        conn.execute(
            "UPDATE runs SET status = 'succeeded', exit_code = 0, finished_at = %s,"
            " final_state = '{}' WHERE id = %s",
            (long_ago + MINUTE, run_id),
        )
        assert sweep.run(conn, datetime.now(UTC)) == 0
        claim = eventually(
            lambda: (
                claim_of(conn, run_id)
                if claim_of(conn, run_id)["finished_at"]
                else None
            )
        )

    assert claim["lost"] is False
    assert api.get(f"/api/runs/{run_id}").json()["status"] == "succeeded"


def test_a_delayed_run_is_sent_once_its_time_comes(
    platform: LocalStack, database: str, vault: VaultServer, api: httpx.Client
) -> None:
    assert platform.servers is not None
    project = deploy(database, vault, ON_MESSAGE)
    job, trigger = project.jobs[0], project.triggers[0]
    now = datetime.now(UTC)
    due = RunRequest(
        run_id=uuid4(),
        project_id=project.id,
        job=job_spec(job),
        trigger=TriggerRef(id=trigger.id, name=trigger.name, kind=trigger.kind),
        message_id=None,
        input_state={"n": 41},
        requested_at=now,
        origin=RunOrigin.RETRY,
        attempt=2,
        retry_of=uuid4(),
    )
    later = due.model_copy(update={"run_id": uuid4()})
    delayed = DelayedRuns(
        producer_for(platform.servers.kafka_bootstrap),
        Topics.with_prefix(platform.topic_prefix),
    )
    with connect(database, autocommit=True) as conn:
        for request, due_at in ((due, now - timedelta(seconds=1)), (later, now + HOUR)):
            conn.execute(
                "INSERT INTO scheduled_runs (run_id, due_at, request)"
                " VALUES (%s, %s, %s)",
                (request.run_id, due_at, Jsonb(request.model_dump(mode="json"))),
            )
        delayed.run(conn, now)
        run = eventually(lambda: finished_run(api, due.run_id), 20)
        waiting = conn.execute(
            "SELECT run_id FROM scheduled_runs WHERE run_id = ANY(%s)",
            ([due.run_id, later.run_id],),
        ).fetchall()
        conn.execute("DELETE FROM scheduled_runs WHERE run_id = %s", (later.run_id,))

    assert (run["status"], run["final_state"]) == ("succeeded", {"n": 42})
    assert [row["run_id"] for row in waiting] == [later.run_id]
