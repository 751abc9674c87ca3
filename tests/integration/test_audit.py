"""The audit log names who changed what, and credential values never leak.

Every kind of change (deploy, credentials, access, tokens, users, inbox
credentials, re-runs, reprocessing, run now, redrive, transfer, delete) is
made by a user of its own, and the log is read back through the API. A canary
credential value is then looked for in the log, the API's answers and every
log file the stack wrote.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from cli.main import main as openfn
from devstack.stack import LocalStack
from shared.db import connect
from shared.vault import CredentialNotFoundError
from tests.conftest import LOG_DIR, VaultServer
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

CANARY = "canary-audit-Zq81-value"
CLI_CANARY = "canary-cli-Vb27-value"

PROJECT = f"""\
jobs:
  tally:
    trigger: visit
    credential: store
    expression: |
      fn(lambda state: {{**state, "n": 1}})
  nightly:
    trigger: night
    expression: |
      fn(lambda state: state)
triggers:
  visit:
    criteria: '{{"kind": "visit"}}'
  night:
    cron: "0 0 1 1 *"
credentials:
  store:
    token: {CANARY}
"""
WITHOUT_STORE = """\
jobs:
  nightly:
    trigger: night
    expression: |
      fn(lambda state: state)
triggers:
  night:
    cron: "0 0 1 1 *"
"""
GATE_WINDOW_S = 10
"""The 10-second rule: a run's message/job pair is re-run only after this."""
TEAM = ("owner", "admin", "editor", "viewer", "outsider", "extra")


@dataclass
class Audited:
    """A team of users with tokens and a project they hold roles in."""

    tokens: dict[str, str]
    project: str
    project_id: str
    inbox_url: str


def as_user(platform: LocalStack, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=platform.api_url,
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )


def add_user(api: httpx.Client, username: str) -> str:
    assert api.post("/api/users", json={"username": username}).status_code == 201
    issued = api.post("/api/tokens", json={"name": "tests", "username": username})
    assert issued.status_code == 201
    return str(issued.json()["token"])


def put_project(
    platform: LocalStack, token: str, name: str, text: str
) -> httpx.Response:
    with as_user(platform, token) as client:
        return client.put(
            f"/api/projects/{name}",
            content=text.encode(),
            headers={"content-type": "application/yaml"},
        )


def finished_run(api: httpx.Client, message_id: str) -> str:
    def probe() -> str | None:
        receipt = api.get(f"/api/messages/{message_id}")
        runs = receipt.json()["runs"] if receipt.status_code == 200 else []
        done = [run["id"] for run in runs if run["finished_at"]]
        return str(done[0]) if done else None

    return eventually(probe, timeout_s=60)


def events(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    answer = client.get(path, params={"limit": 500})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["events"])


@pytest.fixture(scope="module")
def audited(platform: LocalStack) -> Iterator[Audited]:
    with httpx.Client(
        base_url=platform.api_url, headers=platform.auth_headers(), timeout=30
    ) as api:
        tokens = {who: add_user(api, f"au-{who}") for who in TEAM}
        created = put_project(platform, tokens["owner"], "audited", PROJECT)
        assert created.status_code == 201, created.text
        with as_user(platform, tokens["owner"]) as owner:
            for role in ("admin", "editor", "viewer"):
                seated = owner.put(
                    f"/api/projects/audited/collaborators/au-{role}",
                    json={"role": role},
                )
                assert seated.status_code == 200
        yield Audited(
            tokens, "audited", created.json()["id"], created.json()["inbox_url"]
        )


def test_each_kind_of_change_is_recorded_with_its_actor_and_no_value(
    platform: LocalStack,
    api: httpx.Client,
    audited: Audited,
    postgres_url: str,
) -> None:
    p, tokens = audited.project, audited.tokens
    first = httpx.post(audited.inbox_url, json={"kind": "visit"}).json()
    second = httpx.post(audited.inbox_url, json={"kind": "visit"}).json()
    rerun_of = finished_run(api, first["message_id"])
    letter = finished_run(api, second["message_id"])
    _record_dead_letter(postgres_url, letter)
    time.sleep(GATE_WINDOW_S)

    with as_user(platform, tokens["admin"]) as admin:
        assert (
            admin.put(
                f"/api/projects/{p}/credentials/store", json={"token": CANARY}
            ).status_code
            == 200
        )
        assert (
            admin.put(
                f"/api/projects/{p}/credentials/spare", json={"token": CANARY}
            ).status_code
            == 200
        )
        assert admin.delete(f"/api/projects/{p}/credentials/spare").status_code == 204
        for role in ("viewer", "editor"):
            assert (
                admin.put(
                    f"/api/projects/{p}/collaborators/au-extra", json={"role": role}
                ).status_code
                == 200
            )
        assert (
            admin.delete(f"/api/projects/{p}/collaborators/au-extra").status_code == 204
        )
        inbox_key = admin.post(
            f"/api/projects/{p}/inbox-credentials",
            json={"kind": "api_key", "name": "sender"},
        ).json()
        assert (
            admin.delete(
                f"/api/projects/{p}/inbox-credentials/{inbox_key['id']}"
            ).status_code
            == 204
        )
    with as_user(platform, tokens["editor"]) as editor:
        assert editor.post(f"/api/dead-letters/{letter}/redrive").status_code == 202
        assert editor.post(f"/api/runs/{rerun_of}/rerun").status_code == 202
        assert (
            editor.post(
                f"/api/projects/{p}/runs/rerun", json={"job": "tally"}
            ).status_code
            == 202
        )
        assert (
            editor.post(
                f"/api/projects/{p}/messages/reprocess",
                json={"ids": [first["message_id"]]},
            ).status_code
            == 202
        )
        assert editor.post(f"/api/projects/{p}/jobs/nightly/run").status_code == 202
    token_id = api.post("/api/tokens", json={"name": "audit"}).json()["id"]
    assert api.delete(f"/api/tokens/{token_id}").status_code == 204
    gone_token = add_user(api, "au-leaver")
    assert put_project(platform, gone_token, "au-gone", PROJECT).status_code == 201
    with as_user(platform, gone_token) as leaver:
        assert (
            leaver.post(
                "/api/projects/au-gone/transfer", json={"username": "au-admin"}
            ).status_code
            == 200
        )
    with as_user(platform, tokens["admin"]) as new_owner:
        assert new_owner.delete("/api/projects/au-gone").status_code == 204

    with as_user(platform, tokens["admin"]) as admin:
        project_log = events(admin, f"/api/projects/{p}/audit")
        credentials = admin.get(f"/api/projects/{p}/credentials")
    site_log = events(api, "/api/audit")
    seen = {(e["actor"], e["action"], e["subject"]) for e in project_log + site_log}

    assert {
        ("au-owner", "project.deployed", p),
        ("au-owner", "collaborator.added", "au-viewer"),
        ("au-admin", "credential.written", "store"),
        ("au-admin", "credential.deleted", "spare"),
        ("au-admin", "collaborator.added", "au-extra"),
        ("au-admin", "collaborator.changed", "au-extra"),
        ("au-admin", "collaborator.removed", "au-extra"),
        ("au-admin", "inbox_credential.created", inbox_key["id"]),
        ("au-admin", "inbox_credential.revoked", inbox_key["id"]),
        ("au-editor", "run.rerun_requested", rerun_of),
        ("au-editor", "runs.rerun_requested", p),
        ("au-editor", "messages.reprocess_requested", p),
        ("au-editor", "run.run_now_requested", "nightly"),
        ("au-editor", "dead_letter.redriven", letter),
        ("admin", "token.issued", token_id),
        ("admin", "token.revoked", token_id),
        ("admin", "user.created", "au-leaver"),
        ("au-leaver", "project.transferred", "au-admin"),
        ("au-admin", "project.deleted", "au-gone"),
    } <= seen
    deployed = next(e for e in project_log if e["action"] == "project.deployed")
    assert deployed["details"]["credentials_set"] == ["store"]
    assert [e["id"] for e in project_log] == sorted(
        (e["id"] for e in project_log), reverse=True
    )
    assert {e["project_id"] for e in project_log} == {audited.project_id}
    assert credentials.json()[0]["updated_by"] == "au-admin"
    for answer in (credentials.text, json.dumps(project_log), json.dumps(site_log)):
        assert CANARY not in answer
    assert CANARY not in _audit_table_text(postgres_url)
    assert CANARY not in _log_files_text()


def test_only_admins_read_a_projects_log_and_only_site_admins_everyones(
    platform: LocalStack, audited: Audited
) -> None:
    path = f"/api/projects/{audited.project}/audit"
    expected = {"owner": 200, "admin": 200, "editor": 403, "viewer": 403}

    got = {}
    for who in (*expected, "outsider"):
        with as_user(platform, audited.tokens[who]) as client:
            got[who] = client.get(path).status_code
    with as_user(platform, audited.tokens["owner"]) as owner:
        site = owner.get("/api/audit").status_code

    assert got == expected | {"outsider": 404}
    assert site == 403


def test_the_audit_log_pages_newest_first_by_event_id(
    platform: LocalStack, audited: Audited
) -> None:
    path = f"/api/projects/{audited.project}/audit"
    with as_user(platform, audited.tokens["owner"]) as owner:
        whole = events(owner, path)
        first = owner.get(path, params={"limit": 1}).json()
        second = owner.get(
            path, params={"limit": 1, "before": first["next_before"]}
        ).json()

    assert [e["id"] for e in first["events"] + second["events"]] == [
        e["id"] for e in whole[:2]
    ]


def test_a_credential_is_deleted_only_once_no_deployed_job_names_it(
    platform: LocalStack, audited: Audited, vault: VaultServer
) -> None:
    token = audited.tokens["owner"]
    assert put_project(platform, token, "au-creds", PROJECT).status_code == 201
    path = "/api/projects/au-creds/credentials/store"

    with as_user(platform, token) as owner:
        in_use = owner.delete(path)
        redeployed = put_project(platform, token, "au-creds", WITHOUT_STORE)
        deleted = owner.delete(path)
        again = owner.delete(path)
        listed = owner.get("/api/projects/au-creds/credentials").json()
        project_id = UUID(owner.get("/api/projects/au-creds").json()["id"])

    assert in_use.status_code == 409
    assert in_use.json()["jobs"] == ["tally"]
    assert redeployed.status_code == 200
    assert deleted.status_code == 204
    assert again.status_code == 404
    assert listed == []
    with pytest.raises(CredentialNotFoundError):
        vault.client().read_credential(project_id=project_id, name="store")


def test_the_cli_sets_lists_and_deletes_a_credential_without_showing_it(
    platform: LocalStack,
    audited: Audited,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = tmp_path / "cred.json"
    body.write_text(json.dumps({"token": CLI_CANARY, "user": "clinic"}))
    common = ["--project", audited.project, "--api", platform.api_url]
    common += ["--token", audited.tokens["admin"]]

    written = openfn(["credentials", "set", "cli-cred", "--file", str(body), *common])
    listed = openfn(["credentials", "list", *common])
    deleted = openfn(["credentials", "delete", "cli-cred", *common])
    logged = openfn(["audit", *common])
    out = capsys.readouterr()

    assert (written, listed, deleted, logged) == (0, 0, 0, 0)
    assert "credential cli-cred written: token, user" in out.out
    assert "cli-cred  fields token, user  by au-admin" in out.out
    assert "credential cli-cred deleted" in out.out
    assert "credential.deleted  cli-cred" in out.out
    assert CLI_CANARY not in out.out + out.err
    assert CLI_CANARY not in _log_files_text()


def _record_dead_letter(postgres_url: str, run_id: str) -> None:
    """Record the run as a dead letter, as the dispatcher would have."""
    with connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO dead_letters (run_id, project_id, job_id, job_name,"
            " message_id, trigger, input_state, exit_code, attempts)"
            " SELECT id, project_id, job_id, job_name, message_id, '{}', '{}', 1, 3"
            " FROM runs WHERE id = %s",
            (run_id,),
        )


def _audit_table_text(postgres_url: str) -> str:
    with connect(postgres_url, autocommit=True) as conn:
        rows = conn.execute("SELECT to_jsonb(a)::text AS row FROM audit_events a")
        return "\n".join(row["row"] for row in rows)


def _log_files_text() -> str:
    return "\n".join(
        path.read_text(errors="replace")
        for path in LOG_DIR.rglob("*")
        if path.is_file()
    )
