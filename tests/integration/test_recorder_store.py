"""Run events applied in any order, any number of times, leave the same history."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.rows import dict_row

from services.recorder.store import apply_run_events, message_row, store_messages
from shared.db import apply_migrations
from shared.events import LogLine, Message, RunFinished, RunStarted, TriggerRef
from shared.model import RunStatus, TriggerKind

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
TRIGGER = TriggerRef(id=uuid4(), name="t", kind=TriggerKind.MESSAGE)


@pytest.fixture(scope="module")
def conn(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    apply_migrations(postgres_url)
    with psycopg.connect(
        postgres_url, autocommit=True, row_factory=dict_row
    ) as connection:
        yield connection


def started(run_id: UUID, message_id: UUID, job_id: UUID, at: int) -> RunStarted:
    return RunStarted(
        run_id=run_id,
        project_id=UUID(int=1),
        job_id=job_id,
        job_name="payment",
        trigger=TRIGGER,
        message_id=message_id,
        started_at=T0 + timedelta(seconds=at),
        runner="r1",
        input_state={"data": {"n": at}},
    )


def finished(run: RunStarted, at: int, exit_code: int) -> RunFinished:
    return RunFinished(
        **run.model_dump(exclude={"type", "input_state"}),
        finished_at=T0 + timedelta(seconds=at),
        exit_code=exit_code,
        status=RunStatus.SUCCEEDED if exit_code == 0 else RunStatus.FAILED,
        logs=[LogLine(at=T0, message=f"exit {exit_code}")],
        final_state={"exit": exit_code},
    )


def apply(
    conn: psycopg.Connection[Any], events: Sequence[RunStarted | RunFinished]
) -> None:
    with conn.transaction():
        apply_run_events(conn, events)


def history(conn: psycopg.Connection[Any], message_id: UUID) -> tuple[Any, ...]:
    runs = conn.execute(
        "SELECT id, status, exit_code, started_at, finished_at, input_state,"
        " final_state FROM runs WHERE message_id = %s ORDER BY id",
        (message_id,),
    ).fetchall()
    states = conn.execute(
        "SELECT job_id, run_id, status FROM job_states WHERE message_id = %s"
        " ORDER BY job_id",
        (message_id,),
    ).fetchall()
    return tuple(map(tuple, (r.values() for r in runs))), tuple(
        map(tuple, (s.values() for s in states))
    )


def test_every_order_and_duplication_of_events_gives_the_same_result(
    conn: psycopg.Connection[Any],
) -> None:
    job_id = uuid4()
    results = set()
    for seed in range(12):
        message_id = uuid4()
        first = started(uuid4(), message_id, job_id, at=0)
        rerun = started(uuid4(), message_id, job_id, at=20)
        events: list[RunStarted | RunFinished] = [
            first,
            finished(first, at=2, exit_code=1),
            rerun,
            finished(rerun, at=21, exit_code=0),
        ]
        shuffled = random.Random(seed).sample(
            events + events[: seed % 4], k=len(events) + seed % 4
        )
        for event in shuffled:
            apply(conn, [event])
        (runs, states) = history(conn, message_id)
        # Normalise the per-message ids away, keep everything else.
        results.add(
            (
                json.dumps(sorted(row[1:] for row in runs), default=str),
                tuple((row[2], row[1] == rerun.run_id) for row in states),
            )
        )
    assert len(results) == 1
    [(runs, states)] = results
    assert states == (("success", True),)
    assert [row[0] for row in json.loads(runs)] == ["failed", "succeeded"]


def test_a_finish_seen_before_its_start_keeps_the_input_state_and_the_result(
    conn: psycopg.Connection[Any],
) -> None:
    message_id = uuid4()
    run = started(uuid4(), message_id, uuid4(), at=0)

    apply(conn, [finished(run, at=1, exit_code=0)])
    apply(conn, [run])

    row = conn.execute(
        "SELECT status, input_state, final_state FROM runs WHERE id = %s", (run.run_id,)
    ).fetchone()
    assert row == {
        "status": "succeeded",
        "input_state": {"data": {"n": 0}},
        "final_state": {"exit": 0},
    }


def test_a_started_run_reads_in_progress(conn: psycopg.Connection[Any]) -> None:
    message_id = uuid4()
    apply(conn, [started(uuid4(), message_id, uuid4(), at=0)])
    [(_, _, status)] = history(conn, message_id)[1]
    assert status == "in progress"


def test_the_seed_example_two_job_states_and_three_runs(
    conn: psycopg.Connection[Any],
) -> None:
    message_id = uuid4()
    referral_job, payment_job = uuid4(), uuid4()
    referral = started(uuid4(), message_id, referral_job, at=0)
    payment = started(uuid4(), message_id, payment_job, at=0)
    rerun = started(uuid4(), message_id, payment_job, at=30)

    apply(conn, [referral, payment, finished(referral, 1, 0), finished(payment, 1, 1)])
    states_before = {row[0]: row[2] for row in history(conn, message_id)[1]}
    apply(conn, [rerun, finished(rerun, 31, 0)])
    runs, states = history(conn, message_id)

    assert states_before == {referral_job: "success", payment_job: "failure"}
    assert {row[0]: row[2] for row in states} == {
        referral_job: "success",
        payment_job: "success",
    }
    assert len(runs) == 3


def test_a_redelivered_message_is_stored_once(conn: psycopg.Connection[Any]) -> None:
    message = Message(
        id=uuid4(),
        project_id=uuid4(),
        received_at=T0,
        content_type="application/json",
        headers={"user-agent": "test"},
        body=b'{"a": 1}',
    )
    for _ in range(3):
        with conn.transaction():
            store_messages(conn, [message_row(message)])
    count = conn.execute(
        "SELECT count(*) AS n FROM messages WHERE id = %s", (message.id,)
    ).fetchone()
    assert count == {"n": 1}


def test_permutations_of_two_finishes_of_one_run_agree(
    conn: psycopg.Connection[Any],
) -> None:
    outcomes = set()
    for order in itertools.permutations([0, 1]):
        run = started(uuid4(), uuid4(), uuid4(), at=0)
        finishes = [finished(run, at=5, exit_code=1), finished(run, at=9, exit_code=0)]
        for index in order:
            apply(conn, [finishes[index]])
        row = conn.execute(
            "SELECT status, exit_code FROM runs WHERE id = %s", (run.run_id,)
        ).fetchone()
        assert row is not None
        outcomes.add(tuple(row.values()))
    assert outcomes == {("succeeded", 0)}


def test_a_real_finish_wins_over_the_run_being_declared_lost(
    conn: psycopg.Connection[Any],
) -> None:
    for order in ([0, 1], [1, 0]):
        run = started(uuid4(), uuid4(), uuid4(), at=0)
        real = finished(run, at=5, exit_code=0)
        lost = RunFinished(
            **real.model_dump(exclude={"status", "exit_code", "finished_at"}),
            status=RunStatus.LOST,
            exit_code=4,
            finished_at=T0 + timedelta(seconds=50),
        )
        for index in order:
            apply(conn, [(real, lost)[index]])
        row = conn.execute(
            "SELECT status, exit_code FROM runs WHERE id = %s", (run.run_id,)
        ).fetchone()
        assert row == {"status": "succeeded", "exit_code": 0}
