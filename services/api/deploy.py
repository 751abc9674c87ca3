"""Deploys a project.yaml: writes its jobs and triggers and tells running services."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

import yaml
from psycopg import Connection
from psycopg.types.json import Jsonb

from services.api.audit import record_audit
from shared.adaptors import load_adaptor
from shared.db.connection import DEPLOY_CHANNEL
from shared.errors import InvalidProjectError, PlatformError
from shared.model import TriggerKind, project_scoped_id
from shared.project_file import MASK, JobDocument, ProjectDocument, parse_project
from shared.vault import CredentialNotFoundError, VaultClient

Authorize = Callable[[Connection[Any], UUID, bool, ProjectDocument], None]
"""Called in the deploy's transaction with the project id, whether the deploy
creates the project, and the document; raises to refuse the deploy."""


def check_adaptors(document: ProjectDocument, filename: str) -> None:
    """Refuse a project whose jobs name adaptors that are not installed."""
    problems = []
    for name, job in document.jobs.items():
        try:
            load_adaptor(job.adaptor)
        except PlatformError as exc:
            problems.append(f"{filename}: job {name!r}: {exc}")
    if problems:
        raise InvalidProjectError(problems)


def job_version(job: JobDocument) -> str:
    """Changes exactly when what the job runs changes."""
    payload = json.dumps([job.adaptor, job.expression, job.credential], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def sets_credentials(document: ProjectDocument) -> bool:
    """Whether a document writes credential values, rather than keeping them."""
    return bool(_credentials_set(document))


def _credentials_set(document: ProjectDocument) -> set[str]:
    """The credentials a document gives a value to, not just the mask."""
    return {
        name
        for name, body in document.credentials.items()
        if any(value != MASK for value in body.values())
    }


def deploy_project(
    conn: Connection[Any],
    vault: VaultClient,
    name: str,
    text: str,
    filename: str,
    authorize: Authorize,
    *,
    actor: str,
) -> tuple[UUID, bool]:
    """Create or update project ``name`` from project.yaml text.

    Returns the project id and whether it was created. Jobs and triggers that
    the document no longer names are removed; ids of the rest are kept.
    ``authorize`` decides, before anything but the project row is written,
    whether the caller may deploy; the audit log names ``actor`` as the deployer.
    """
    document = parse_project(text, filename)
    if document.name is not None and document.name != name:
        raise InvalidProjectError(
            [f"{filename}: names project {document.name!r}, not {name!r}"]
        )
    check_adaptors(document, filename)
    with conn.transaction():
        # The upsert locks the project's row, so two first deploys of one
        # name cannot both see themselves as its creator.
        project_id, revision = _upsert_project(conn, name, document.timezone)
        created = revision == 1
        authorize(conn, project_id, created, document)
        _check_credentials(conn, project_id, document, filename)
        # Written before the rows commit: a job never names a credential
        # that Vault does not hold yet.
        _store_credentials(conn, vault, project_id, document, filename, actor)
        _replace_triggers(conn, project_id, document)
        _replace_jobs(conn, project_id, document)
        conn.execute(
            "INSERT INTO deployments (project_id, document) VALUES (%s, %s)",
            (project_id, text),
        )
        record_audit(
            conn,
            actor,
            "project.deployed",
            project_id,
            name,
            {
                "created": created,
                "revision": revision,
                "credentials_set": sorted(_credentials_set(document)),
            },
        )
        conn.execute("SELECT pg_notify(%s, %s)", (DEPLOY_CHANNEL, str(project_id)))
    return project_id, created


def _upsert_project(
    conn: Connection[Any], name: str, timezone: str
) -> tuple[UUID, int]:
    row = conn.execute(
        "INSERT INTO projects (id, name, inbox_id, timezone) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE"
        " SET revision = projects.revision + 1, updated_at = now(),"
        " timezone = EXCLUDED.timezone"
        " RETURNING id, revision",
        (uuid.uuid4(), name, uuid.uuid4(), timezone),
    ).fetchone()
    assert row is not None  # RETURNING always yields the row
    return row["id"], row["revision"]


def _replace_triggers(
    conn: Connection[Any], project_id: UUID, document: ProjectDocument
) -> None:
    conn.execute(
        "DELETE FROM triggers WHERE project_id = %s AND NOT (name = ANY(%s))",
        (project_id, list(document.triggers)),
    )
    for name, trigger in document.triggers.items():
        conn.execute(
            "INSERT INTO triggers (id, project_id, name, kind, criteria, exclusion,"
            " cron, upstream_job, missed) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (project_id, name) DO UPDATE SET kind = EXCLUDED.kind,"
            " criteria = EXCLUDED.criteria, exclusion = EXCLUDED.exclusion,"
            " cron = EXCLUDED.cron, upstream_job = EXCLUDED.upstream_job,"
            " missed = EXCLUDED.missed",
            (
                project_scoped_id(project_id, "trigger", name),
                project_id,
                name,
                trigger.kind.value,
                _jsonb(trigger.criteria),
                _jsonb(trigger.exclusion),
                trigger.cron,
                trigger.upstream_job
                if trigger.kind is not TriggerKind.MESSAGE
                else None,
                trigger.missed,
            ),
        )


def _replace_jobs(
    conn: Connection[Any], project_id: UUID, document: ProjectDocument
) -> None:
    conn.execute(
        "DELETE FROM jobs WHERE project_id = %s AND NOT (name = ANY(%s))",
        (project_id, list(document.jobs)),
    )
    for name, job in document.jobs.items():
        conn.execute(
            "INSERT INTO jobs (id, project_id, name, trigger_name, adaptor, credential,"
            " expression, enabled, version, retries)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (project_id, name) DO UPDATE"
            " SET trigger_name = EXCLUDED.trigger_name,"
            " adaptor = EXCLUDED.adaptor, credential = EXCLUDED.credential,"
            " expression = EXCLUDED.expression, enabled = EXCLUDED.enabled,"
            " version = EXCLUDED.version, retries = EXCLUDED.retries",
            (
                project_scoped_id(project_id, "job", name),
                project_id,
                name,
                job.trigger,
                job.adaptor,
                job.credential,
                job.expression,
                job.enabled,
                job_version(job),
                job.retries,
            ),
        )


def masked_document(document: ProjectDocument) -> str:
    """The deployed project as YAML, every credential value replaced by the mask."""
    data = document.model_dump(mode="json", exclude_none=True)
    data["credentials"] = {
        name: dict.fromkeys(body, MASK) for name, body in document.credentials.items()
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _check_credentials(
    conn: Connection[Any], project_id: UUID, document: ProjectDocument, filename: str
) -> None:
    stored = {
        row["name"]
        for row in conn.execute(
            "SELECT name FROM credentials WHERE project_id = %s", (project_id,)
        )
    }
    known = stored | set(document.credentials)
    problems = [
        f"{filename}: job {name!r}: no credential named {job.credential!r}"
        for name, job in document.jobs.items()
        if job.credential is not None and job.credential not in known
    ]
    if problems:
        raise InvalidProjectError(problems)


def _store_credentials(
    conn: Connection[Any],
    vault: VaultClient,
    project_id: UUID,
    document: ProjectDocument,
    filename: str,
    actor: str,
) -> None:
    """Write credential bodies to Vault; a masked value keeps the stored one."""
    bodies: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for name, body in document.credentials.items():
        masked = [key for key, value in body.items() if value == MASK]
        existing = _stored_body(vault, project_id, name) if masked else {}
        missing = [key for key in masked if key not in existing]
        if missing:
            problems.append(
                f"{filename}: credential {name!r}: {', '.join(missing)} is {MASK}"
                " but no value is stored yet"
            )
        bodies[name] = {k: existing.get(k) if v == MASK else v for k, v in body.items()}
    if problems:
        raise InvalidProjectError(problems)
    for name, body in bodies.items():
        vault.write_credential(project_id, name, body)
        conn.execute(
            "INSERT INTO credentials (project_id, name, fields, updated_by)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (project_id, name)"
            " DO UPDATE SET fields = EXCLUDED.fields, updated_at = now(),"
            " updated_by = EXCLUDED.updated_by",
            (project_id, name, sorted(body), actor),
        )


def _stored_body(vault: VaultClient, project_id: UUID, name: str) -> dict[str, Any]:
    try:
        return vault.read_credential(project_id, name)
    except CredentialNotFoundError:
        return {}


def _jsonb(value: Any) -> Jsonb | None:
    return Jsonb(value) if value is not None else None
