"""Fires the due ticks of cron triggers, each tick once, whatever the replicas do.

``cron_state`` holds the last tick fired per trigger. A replica locks the
rows of due triggers with ``FOR UPDATE SKIP LOCKED``, sends their run
requests, waits for the broker's acknowledgement, and only then moves
``last_tick`` and commits. Another replica skips rows that are locked and sees
the moved ``last_tick`` once they are committed; if the firing replica dies
first, its transaction is rolled back and the tick fires again, under the same
run ids, so run claims let each run happen once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from services.scheduler import metrics
from services.scheduler.cron import InvalidCronError, Missed, due_ticks, tick_to_fire
from services.scheduler.firing import cron_run_id, cron_run_request, load_cursor
from services.scheduler.service import DELIVERY_TIMEOUT_S
from shared.catalog import CatalogSnapshot, ProjectCatalog
from shared.events import RunRequest
from shared.kafka import EventProducer, Record
from shared.logging import get_logger
from shared.model import Project, RunOrigin, Trigger, TriggerKind
from shared.topics import Topics

log = get_logger(__name__)

_CATALOG_MISS_INTERVAL_S = 1.0

# Counting the ticks missed in a long outage walks them one by one; past this
# many (a week of a minutely trigger), the count stops.
_MISSED_COUNT_LIMIT = 10_080

# A new trigger starts at the time it is first seen, so deploying never
# backfills; a trigger that is no longer a cron trigger loses its row.
_SYNC_STATES = """
WITH removed AS (
    DELETE FROM cron_state c USING triggers t
    WHERE t.id = c.trigger_id AND t.kind <> 'cron'
)
INSERT INTO cron_state (trigger_id, last_tick)
SELECT t.id, %s FROM triggers t
WHERE t.kind = 'cron'
  AND NOT EXISTS (SELECT 1 FROM cron_state c WHERE c.trigger_id = t.id)
ON CONFLICT (trigger_id) DO NOTHING
RETURNING trigger_id
"""

_LOCK_DUE = """
SELECT trigger_id, last_tick FROM cron_state
WHERE trigger_id = ANY(%s)
FOR UPDATE SKIP LOCKED
"""


@dataclass(frozen=True)
class CronConfig:
    """How cron triggers fire, from the scheduler's settings."""

    misfire_grace_s: float
    cursor_max_bytes: int


@dataclass(frozen=True)
class _Firing:
    """What one due trigger does this round: move to ``tick``, maybe ask for runs."""

    trigger_id: UUID
    tick: datetime
    fired: datetime | None
    missed: int
    requests: list[RunRequest]


class CronTriggers:
    """The scheduler's cron task: fires every cron trigger's due tick."""

    name = "cron"

    def __init__(
        self,
        catalog: ProjectCatalog,
        producer: EventProducer,
        topics: Topics,
        config: CronConfig,
    ) -> None:
        self._catalog = catalog
        self._producer = producer
        self._topics = topics
        self._config = config
        self._index_revision = -1
        self._index: dict[UUID, tuple[Project, Trigger]] = {}
        self._reported: set[tuple[UUID, str, str]] = set()

    def run(self, conn: Connection[Any], now: datetime) -> int:
        """Fire what is due at ``now``; returns the number of run requests sent."""
        self._start_new_triggers(conn, now)
        due = self._due_triggers(conn, now)
        if not due:
            return 0
        with conn.transaction():
            firings: list[_Firing] = []
            for row in conn.execute(_LOCK_DUE, (due,)).fetchall():
                firing = self._firing(conn, row["trigger_id"], row["last_tick"], now)
                if firing is not None:
                    firings.append(firing)
            requests = [request for firing in firings for request in firing.requests]
            if requests:
                self._producer.produce_all(
                    [self._record(r) for r in requests], DELIVERY_TIMEOUT_S
                )
            with conn.cursor() as cursor:
                cursor.executemany(
                    "UPDATE cron_state SET last_tick = %s, updated_at = now()"
                    " WHERE trigger_id = %s",
                    [(firing.tick, firing.trigger_id) for firing in firings],
                )
        for firing in firings:
            _report(firing, now)
        return len(requests)

    def _start_new_triggers(self, conn: Connection[Any], now: datetime) -> None:
        for row in conn.execute(_SYNC_STATES, (now,)).fetchall():
            log.info(
                "cron.schedule_started",
                trigger_id=str(row["trigger_id"]),
                first_tick_after=now.isoformat(),
            )

    def _due_triggers(self, conn: Connection[Any], now: datetime) -> list[UUID]:
        """Triggers with a tick due, read without locks to keep the locked set small."""
        states = conn.execute("SELECT trigger_id, last_tick FROM cron_state").fetchall()
        index = self._trigger_index()
        if any(row["trigger_id"] not in index for row in states):
            self._catalog.reload(_CATALOG_MISS_INTERVAL_S)
            index = self._trigger_index()
        return [
            row["trigger_id"]
            for row in states
            if row["trigger_id"] in index
            and self._due(*index[row["trigger_id"]], row["last_tick"], now, limit=1)
        ]

    def _firing(
        self,
        conn: Connection[Any],
        trigger_id: UUID,
        last_tick: datetime,
        now: datetime,
    ) -> _Firing | None:
        found = self._trigger_index().get(trigger_id)
        if found is None:
            return None
        project, trigger = found
        # Two ticks show whether any were missed; only then are they all counted.
        due = self._due(project, trigger, last_tick, now, limit=2)
        if len(due) > 1:
            due = self._due(project, trigger, last_tick, now, _MISSED_COUNT_LIMIT)
        if not due:
            return None
        missed = Missed(trigger.missed)
        fired = tick_to_fire(due, missed, now, self._config.misfire_grace_s)
        requests = (
            [] if fired is None else self._requests(conn, project, trigger, fired, now)
        )
        return _Firing(
            trigger_id=trigger_id,
            tick=due[-1],
            fired=fired,
            missed=len(due) - (fired is not None),
            requests=requests,
        )

    def _requests(
        self,
        conn: Connection[Any],
        project: Project,
        trigger: Trigger,
        tick: datetime,
        now: datetime,
    ) -> list[RunRequest]:
        """One run per enabled job of the trigger, each from its own cursor."""
        return [
            cron_run_request(
                project,
                job,
                load_cursor(conn, job.id, self._config.cursor_max_bytes, log),
                cron_run_id(trigger.id, job.id, tick),
                RunOrigin.CRON,
                now,
            )
            for job in project.jobs
            if job.enabled and job.trigger == trigger.name
        ]

    def _due(
        self,
        project: Project,
        trigger: Trigger,
        last_tick: datetime,
        now: datetime,
        limit: int,
    ) -> list[datetime]:
        """Due ticks, or none for a trigger that cannot be read (reported once)."""
        cron = trigger.cron or ""
        try:
            return due_ticks(cron, project.timezone, last_tick, now, limit)
        except InvalidCronError as exc:
            key = (trigger.id, cron, project.timezone)
            if key not in self._reported:
                self._reported.add(key)
                log.error(
                    "cron.invalid",
                    project=project.name,
                    trigger=trigger.name,
                    cron=cron,
                    timezone=project.timezone,
                    error=str(exc),
                )
            return []

    def _trigger_index(self) -> dict[UUID, tuple[Project, Trigger]]:
        snapshot = self._catalog.snapshot
        if snapshot.revision != self._index_revision:
            self._index = _cron_triggers(snapshot)
            self._index_revision = snapshot.revision
        return self._index

    def _record(self, request: RunRequest) -> Record:
        return Record(
            topic=self._topics.run_requests,
            key=request.run_id.bytes,
            value=request.model_dump_json().encode(),
        )


def _report(firing: _Firing, now: datetime) -> None:
    """Log and count a committed firing."""
    fields = {"trigger_id": str(firing.trigger_id), "tick": firing.tick.isoformat()}
    if firing.missed:
        metrics.TICKS_MISSED.inc(firing.missed)
        log.warning("cron.ticks_missed", missed=firing.missed, **fields)
    if firing.fired is not None and firing.requests:
        metrics.TICKS_FIRED.inc()
        metrics.TICK_LATENESS.observe((now - firing.fired).total_seconds())
        log.info(
            "cron.fired", run_ids=[str(r.run_id) for r in firing.requests], **fields
        )


def _cron_triggers(snapshot: CatalogSnapshot) -> dict[UUID, tuple[Project, Trigger]]:
    return {
        trigger.id: (project, trigger)
        for project in snapshot.by_id.values()
        for trigger in project.triggers
        if trigger.kind is TriggerKind.CRON
    }
