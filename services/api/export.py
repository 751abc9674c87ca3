"""A deployed project written back as project.yaml, every credential value masked.

Deploying the export again changes nothing: a masked value keeps the stored one.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import yaml
from fastapi import APIRouter
from fastapi.responses import Response
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api.access import CurrentUser, require_project
from services.api.schemas import ErrorBody
from shared.auth import Role
from shared.project_file import MASK


class _Dumper(yaml.SafeDumper):
    """Writes expressions as literal blocks, as people write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def export_document(conn: Connection[Any], project: dict[str, Any]) -> str:
    """The project's jobs, triggers and credentials (masked) as project.yaml."""
    project_id: UUID = project["id"]
    jobs = conn.execute(
        "SELECT name, trigger_name, adaptor, credential, expression, enabled, retries"
        " FROM jobs WHERE project_id = %s ORDER BY name",
        (project_id,),
    ).fetchall()
    triggers = conn.execute(
        "SELECT name, kind, criteria, exclusion, cron, upstream_job, missed"
        " FROM triggers WHERE project_id = %s ORDER BY name",
        (project_id,),
    ).fetchall()
    credentials = conn.execute(
        "SELECT name, fields FROM credentials WHERE project_id = %s ORDER BY name",
        (project_id,),
    ).fetchall()
    document: dict[str, Any] = {"timezone": project["timezone"]}
    document["jobs"] = {row["name"]: _job(row) for row in jobs}
    document["triggers"] = {row["name"]: _trigger(row) for row in triggers}
    document["credentials"] = {
        row["name"]: dict.fromkeys(row["fields"], MASK) for row in credentials
    }
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def _job(row: dict[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = {"trigger": row["trigger_name"], "adaptor": row["adaptor"]}
    if row["credential"] is not None:
        job["credential"] = row["credential"]
    if not row["enabled"]:
        job["enabled"] = False
    if row["retries"]:
        job["retries"] = row["retries"]
    job["expression"] = row["expression"]
    return job


def _trigger(row: dict[str, Any]) -> dict[str, Any]:
    kind = row["kind"]
    if kind == "message":
        trigger = {"criteria": json.dumps(row["criteria"])}
        if row["exclusion"] is not None:
            trigger["exclusion"] = json.dumps(row["exclusion"])
        return trigger
    if kind == "cron":
        cron: dict[str, Any] = {"cron": row["cron"]}
        if row["missed"] != "skip":
            cron["missed"] = row["missed"]
        return cron
    return {kind: row["upstream_job"]}


def export_routes(pool: ConnectionPool[Connection[Any]]) -> APIRouter:
    """``GET /api/projects/{name}/project.yaml``."""
    router = APIRouter()

    @router.get(
        "/api/projects/{name}/project.yaml",
        response_class=Response,
        responses={
            200: {
                "description": "The project as project.yaml, secrets as ******.",
                # The YAML document is one mapping: timezone, jobs, triggers,
                # credentials.
                "content": {"application/yaml": {"schema": {"type": "object"}}},
            },
            401: {"model": ErrorBody, "description": "No valid API token."},
            404: {"model": ErrorBody, "description": "No such project of yours."},
        },
    )
    def export(name: str, user: CurrentUser) -> Response:
        """The project as project.yaml; every credential value is ``******``."""
        with pool.connection() as conn:
            project = require_project(conn, user, name, Role.VIEWER)
            full = conn.execute(
                "SELECT id, timezone FROM projects WHERE id = %s", (project["id"],)
            ).fetchone()
            assert full is not None  # require_project just found it
            text = export_document(conn, full)
        return Response(text, media_type="application/yaml")

    return router
