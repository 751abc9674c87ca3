"""Run claims against PostgreSQL: taken once, renewed, taken over only when safe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.runner.claims import Claim, ClaimStore
from shared.db import apply_migrations, open_pool

pytestmark = pytest.mark.integration

STALE_S = 30.0


@pytest.fixture(scope="module")
def pool(postgres_url: str) -> Iterator[ConnectionPool[Connection[Any]]]:
    apply_migrations(postgres_url)
    opened = open_pool(postgres_url, 2, "claims-test")
    yield opened
    opened.close()


def store(pool: ConnectionPool[Connection[Any]], runner: str) -> ClaimStore:
    return ClaimStore(pool, runner, STALE_S)


def age_claim(
    pool: ConnectionPool[Connection[Any]], run_id: UUID, age_s: float
) -> None:
    with pool.connection() as conn:
        conn.execute(
            "UPDATE run_claims SET heartbeat_at = now() - make_interval(secs => %s)"
            " WHERE run_id = %s",
            (age_s, run_id),
        )


def record_start(pool: ConnectionPool[Connection[Any]], run_id: UUID) -> None:
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO runs (id, project_id, job_id, job_name, trigger_kind, status,"
            " started_at, origin, attempt, chain_depth)"
            " VALUES (%s, %s, %s, 'job', 'message', 'started', now(), 'message', 1, 0)",
            (run_id, uuid4(), uuid4()),
        )


def holder(pool: ConnectionPool[Connection[Any]], run_id: UUID) -> str:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT runner FROM run_claims WHERE run_id = %s", (run_id,)
        ).fetchone()
    assert row is not None
    return str(row["runner"])


def test_a_run_is_taken_once_and_its_holder_may_take_it_again(
    pool: ConnectionPool[Connection[Any]],
) -> None:
    run_id = uuid4()
    first, second = store(pool, "first"), store(pool, "second")

    assert first.claim(run_id) is Claim.TAKEN
    assert second.claim(run_id) is Claim.ELSEWHERE
    assert first.claim(run_id) is Claim.TAKEN
    first.finish(run_id)
    assert second.claim(run_id) is Claim.FINISHED


def test_a_quiet_claim_on_a_run_never_started_is_taken_over(
    pool: ConnectionPool[Connection[Any]],
) -> None:
    run_id = uuid4()
    store(pool, "quiet").claim(run_id)
    age_claim(pool, run_id, STALE_S + 1)

    assert store(pool, "taker").claim(run_id) is Claim.TAKEN
    assert holder(pool, run_id) == "taker"
    # The old holder, had it only paused, now finds the run elsewhere.
    assert store(pool, "quiet").claim(run_id) is Claim.ELSEWHERE


def test_a_renewed_claim_is_not_taken_over(
    pool: ConnectionPool[Connection[Any]],
) -> None:
    run_id = uuid4()
    live = store(pool, "live")
    live.claim(run_id)
    age_claim(pool, run_id, STALE_S + 1)

    assert live.renew() >= 1
    assert store(pool, "taker").claim(run_id) is Claim.ELSEWHERE
    assert holder(pool, run_id) == "live"


def test_a_quiet_claim_on_a_started_run_is_left_to_the_lost_run_check(
    pool: ConnectionPool[Connection[Any]],
) -> None:
    run_id = uuid4()
    store(pool, "died-mid-run").claim(run_id)
    record_start(pool, run_id)
    age_claim(pool, run_id, STALE_S + 1)

    assert store(pool, "taker").claim(run_id) is Claim.ELSEWHERE
    assert holder(pool, run_id) == "died-mid-run"


def test_renewing_touches_only_the_runners_open_claims(
    pool: ConnectionPool[Connection[Any]],
) -> None:
    mine, done, theirs = uuid4(), uuid4(), uuid4()
    me, other = store(pool, "renewer"), store(pool, "bystander")
    me.claim(mine)
    me.claim(done)
    me.finish(done)
    other.claim(theirs)
    for run_id in (mine, done, theirs):
        age_claim(pool, run_id, 100)

    assert me.renew() == 1
    ages = heartbeat_ages(pool)
    assert ages[mine] < 5
    assert ages[done] >= 100
    assert ages[theirs] >= 100


def heartbeat_ages(pool: ConnectionPool[Connection[Any]]) -> dict[UUID, float]:
    """Each claim's heartbeat age in seconds, by run id."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT run_id, extract(epoch FROM now() - heartbeat_at) AS age"
            " FROM run_claims"
        ).fetchall()
    return {row["run_id"]: float(row["age"]) for row in rows}
