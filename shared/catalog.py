"""The deployed projects, kept in memory and refreshed when a deploy happens.

A deploy commits its rows and sends a PostgreSQL notification; the catalog
listens for it and also re-reads the deployment counter every
``refresh_s`` seconds, so a missed notification delays a change, never loses it.
The gateway's catalog also holds each project's inbox credentials, reloaded the
same way when they change, and again every ``refresh_s`` while a signing
secret could not be opened.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from shared.db.connection import DEPLOY_CHANNEL, connect
from shared.inbox_auth import InboxAuth, SigningKeys, read_inbox_credentials
from shared.logging import get_logger
from shared.model import Job, Project, Trigger

log = get_logger(__name__)


@dataclass(frozen=True)
class CatalogSnapshot:
    """Every project at one deployment revision.

    ``inbox_auth`` holds the projects that have active inbox credentials, at
    ``auth_revision``; both stay empty unless the catalog was asked for them.
    """

    revision: int = 0
    by_id: dict[UUID, Project] = field(default_factory=dict)
    by_inbox: dict[UUID, Project] = field(default_factory=dict)
    auth_revision: int = 0
    inbox_auth: dict[UUID, InboxAuth] = field(default_factory=dict)

    @property
    def unopened_secrets(self) -> int:
        """Active signing secrets whose key could not be opened."""
        return sum(auth.unopened for auth in self.inbox_auth.values())


_REVISIONS = "SELECT coalesce(max(id), 0) AS r, 0 AS a FROM deployments"
_REVISIONS_WITH_AUTH = (
    "SELECT (SELECT coalesce(max(id), 0) FROM deployments) AS r,"
    " (SELECT revision FROM inbox_auth_revision) AS a"
)


def read_snapshot(
    conn: psycopg.Connection[Any], *, signing_keys: SigningKeys | None = None
) -> CatalogSnapshot:
    """Load every project, its jobs and its triggers in one consistent read.

    Args:
        conn: a connection with dict rows, not inside a transaction.
        signing_keys: given, inbox credentials are loaded too, their signing
            secrets opened through it; only the inbox gateway needs them.
    """
    with_inbox_auth = signing_keys is not None
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        revisions = conn.execute(
            _REVISIONS_WITH_AUTH if with_inbox_auth else _REVISIONS
        ).fetchone()
        projects = conn.execute(
            "SELECT id, name, inbox_id, revision, timezone FROM projects"
        ).fetchall()
        jobs = conn.execute(
            "SELECT id, project_id, name, trigger_name AS trigger, adaptor, expression,"
            " credential, enabled, version, retries FROM jobs ORDER BY name"
        ).fetchall()
        triggers = conn.execute(
            "SELECT id, project_id, name, kind, criteria, exclusion, cron,"
            " upstream_job, missed FROM triggers ORDER BY name"
        ).fetchall()
        credentials = read_inbox_credentials(conn) if with_inbox_auth else []
    # Vault is asked outside the transaction, which it would otherwise hold open.
    inbox_auth = signing_keys.inbox_auth(credentials) if signing_keys else {}
    jobs_of: dict[UUID, list[Job]] = {}
    for row in jobs:
        jobs_of.setdefault(row.pop("project_id"), []).append(Job.model_validate(row))
    triggers_of: dict[UUID, list[Trigger]] = {}
    for row in triggers:
        triggers_of.setdefault(row.pop("project_id"), []).append(
            Trigger.model_validate(row)
        )
    by_id = {
        row["id"]: Project(
            **row,
            jobs=tuple(jobs_of.get(row["id"], ())),
            triggers=tuple(triggers_of.get(row["id"], ())),
        )
        for row in projects
    }
    return CatalogSnapshot(
        revision=revisions["r"] if revisions else 0,
        by_id=by_id,
        by_inbox={project.inbox_id: project for project in by_id.values()},
        auth_revision=revisions["a"] if revisions else 0,
        inbox_auth=inbox_auth,
    )


def _summary(snapshot: CatalogSnapshot) -> tuple[int, int, int]:
    return snapshot.revision, snapshot.auth_revision, snapshot.unopened_secrets


class ProjectCatalog:
    """Thread-safe access to the latest snapshot, refreshed in the background."""

    def __init__(
        self,
        database_url: str,
        refresh_s: float = 5.0,
        *,
        signing_keys: SigningKeys | None = None,
    ) -> None:
        self._url = database_url
        self._refresh_s = refresh_s
        self._signing_keys = signing_keys
        self._snapshot = CatalogSnapshot()
        self._loaded = threading.Event()
        self._stop = threading.Event()
        self._reload_lock = threading.Lock()
        self._last_reload = 0.0
        self._thread = threading.Thread(target=self._watch, name="catalog", daemon=True)

    @property
    def snapshot(self) -> CatalogSnapshot:
        return self._snapshot

    @property
    def is_loaded(self) -> bool:
        return self._loaded.is_set()

    def start(self) -> ProjectCatalog:
        """Load the catalog, then keep it fresh; raises if the first load fails."""
        self.reload()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def project(self, project_id: UUID) -> Project | None:
        return self._snapshot.by_id.get(project_id)

    def project_for_inbox(self, inbox_id: UUID) -> Project | None:
        return self._snapshot.by_inbox.get(inbox_id)

    def inbox_auth(self, project_id: UUID) -> InboxAuth | None:
        """The project's active inbox credentials; None while its inbox is open."""
        return self._snapshot.inbox_auth.get(project_id)

    def reload(self, min_interval_s: float = 0.0) -> bool:
        """Re-read the catalog unless it was read less than ``min_interval_s`` ago."""
        with self._reload_lock:
            if time.monotonic() - self._last_reload < min_interval_s:
                return False
            with connect(self._url, autocommit=True) as conn:
                self._reload_from(conn)
            return True

    def _reload_from(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute(
            _REVISIONS_WITH_AUTH if self._signing_keys is not None else _REVISIONS
        ).fetchone()
        self._last_reload = time.monotonic()
        if (
            self._loaded.is_set()
            and row is not None
            and row["r"] == self._snapshot.revision
            and row["a"] == self._snapshot.auth_revision
            and not self._snapshot.unopened_secrets
        ):
            return
        before = self._snapshot if self._loaded.is_set() else None
        snapshot = read_snapshot(conn, signing_keys=self._signing_keys)
        self._snapshot = snapshot
        self._loaded.set()
        # Re-read while a secret stays unopened, it is logged only as it changes.
        if before is None or _summary(before) != _summary(snapshot):
            log.info(
                "catalog.loaded",
                revision=snapshot.revision,
                projects=len(snapshot.by_id),
                auth_revision=snapshot.auth_revision,
                unopened_secrets=snapshot.unopened_secrets,
            )

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                log.warning("catalog.connection_lost", error=str(exc))
                self._stop.wait(self._refresh_s)

    def _listen(self) -> None:
        with connect(self._url, autocommit=True) as conn:
            conn.execute(f"LISTEN {DEPLOY_CHANNEL}")
            while not self._stop.is_set():
                with self._reload_lock:
                    self._reload_from(conn)
                # A notification or the refresh interval passing: look again.
                for _ in conn.notifies(timeout=self._refresh_s, stop_after=1):
                    pass
