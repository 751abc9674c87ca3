"""Every API call is authenticated, and each role reaches exactly what it should.

The access matrix calls every endpoint of one project's messages, runs, jobs,
credentials and collaborators as its owner, an admin, an editor, a viewer and
an outsider, and compares each answer with the role table in the README.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest

from cli.main import main as openfn
from devstack.stack import LocalStack
from shared.db import connect
from shared.vault import CredentialNotFoundError
from tests.conftest import VaultServer
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

ROLES = ("owner", "admin", "editor", "viewer")
ALLOWED = "allowed"
"""Past the access check: a 2xx, or a refusal only a permitted caller can get
(409 already redriven, 429 inside the 10-second window)."""

PROJECT = """\
jobs:
  tally:
    trigger: visit
    credential: store
    expression: |
      fn(lambda state: {**state, "n": 1})
  nightly:
    trigger: night
    expression: |
      fn(lambda state: state)
triggers:
  visit:
    criteria: '{"kind": "visit"}'
  night:
    cron: "0 0 1 1 *"
credentials:
  store:
    token: VALUE
"""
MASKED = PROJECT.replace("VALUE", '"******"')


@dataclass
class World:
    """Users with tokens, and a project they hold roles in, with history."""

    tokens: dict[str, str]
    project: str
    inbox_url: str
    message_id: str
    run_id: str


def headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def add_user(api: httpx.Client, username: str) -> str:
    """A new user's token, issued by the site admin."""
    assert api.post("/api/users", json={"username": username}).status_code == 201
    issued = api.post("/api/tokens", json={"name": "tests", "username": username})
    assert issued.status_code == 201
    return str(issued.json()["token"])


def put_project(
    platform: LocalStack, token: str, name: str, text: str
) -> httpx.Response:
    return httpx.put(
        f"{platform.api_url}/api/projects/{name}",
        content=text.encode(),
        headers={"content-type": "application/yaml", **headers(token)},
        timeout=30,
    )


def make_team(api: httpx.Client, prefix: str) -> dict[str, str]:
    return {who: add_user(api, f"{prefix}-{who}") for who in (*ROLES, "outsider")}


def seat_team(
    platform: LocalStack, tokens: dict[str, str], project: str, prefix: str
) -> None:
    with httpx.Client(base_url=platform.api_url, timeout=10) as client:
        for role in ("admin", "editor", "viewer"):
            seated = client.put(
                f"/api/projects/{project}/collaborators/{prefix}-{role}",
                json={"role": role},
                headers=headers(tokens["owner"]),
            )
            assert seated.status_code == 200


@pytest.fixture(scope="module")
def world(platform: LocalStack) -> Iterator[World]:
    with httpx.Client(
        base_url=platform.api_url, headers=platform.auth_headers(), timeout=10
    ) as api:
        tokens = make_team(api, "m")
        add_user(api, "m-bystander")
        created = put_project(
            platform, tokens["owner"], "matrix", PROJECT.replace("VALUE", "s3cret")
        )
        assert created.status_code == 201
        seat_team(platform, tokens, "matrix", "m")
        posted = httpx.post(created.json()["inbox_url"], json={"kind": "visit"})
        message_id = posted.json()["message_id"]

        def finished_run() -> str | None:
            receipt = api.get(f"/api/messages/{message_id}")
            runs = receipt.json()["runs"] if receipt.status_code == 200 else []
            done = [run["id"] for run in runs if run["finished_at"]]
            return str(done[0]) if done else None

        run_id = eventually(finished_run, timeout_s=60)
        yield World(tokens, "matrix", created.json()["inbox_url"], message_id, run_id)


def letter_for(postgres_url: str, run_id: str) -> None:
    """Record the run as a dead letter, as the dispatcher would have."""
    with connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO dead_letters (run_id, project_id, job_id, job_name,"
            " message_id, trigger, input_state, exit_code, attempts)"
            " SELECT id, project_id, job_id, job_name, message_id, '{}', '{}', 1, 3"
            " FROM runs WHERE id = %s ON CONFLICT DO NOTHING",
            (run_id,),
        )


# (method, path, body, what each role gets). Paths name {p}roject, {m}essage,
# {r}un. Within a role the calls run in this order, so a collaborator added
# by the PUT is there for the DELETE.
def matrix(w: World) -> list[tuple[str, str, Any, dict[str, str | int]]]:
    def at_least(minimum: str) -> dict[str, str | int]:
        rank = ROLES.index(minimum)
        return {
            role: ALLOWED if ROLES.index(role) <= rank else 403 for role in ROLES
        } | {"outsider": 404}

    p, m, r = w.project, w.message_id, w.run_id
    return [
        ("GET", f"/api/projects/{p}", None, at_least("viewer")),
        ("GET", f"/api/projects/{p}/messages", None, at_least("viewer")),
        ("GET", f"/api/messages/{m}", None, at_least("viewer")),
        ("GET", f"/api/runs/{r}", None, at_least("viewer")),
        ("GET", f"/api/dead-letters?project={p}", None, at_least("viewer")),
        ("PUT", f"/api/projects/{p}", MASKED, at_least("editor")),
        (
            "PUT",
            f"/api/projects/{p}",
            PROJECT.replace("VALUE", "new"),
            at_least("admin"),
        ),
        ("POST", f"/api/runs/{r}/rerun", None, at_least("editor")),
        ("POST", f"/api/projects/{p}/runs/rerun", {"job": "tally"}, at_least("editor")),
        (
            "POST",
            f"/api/projects/{p}/messages/reprocess",
            {"ids": [m]},
            at_least("editor"),
        ),
        ("POST", f"/api/projects/{p}/jobs/nightly/run", None, at_least("editor")),
        ("POST", f"/api/dead-letters/{r}/redrive", None, at_least("editor")),
        ("POST", f"/api/runs/{r}/abort", None, at_least("admin")),
        ("GET", f"/api/projects/{p}/credentials", None, at_least("admin")),
        (
            "PUT",
            f"/api/projects/{p}/credentials/store",
            {"token": "t"},
            at_least("admin"),
        ),
        ("GET", f"/api/projects/{p}/collaborators", None, at_least("admin")),
        (
            "PUT",
            f"/api/projects/{p}/collaborators/m-bystander",
            {"role": "viewer"},
            at_least("admin"),
        ),
        (
            "DELETE",
            f"/api/projects/{p}/collaborators/m-bystander",
            None,
            at_least("admin"),
        ),
        (
            "POST",
            f"/api/projects/{p}/transfer",
            {"username": "m-owner"},
            at_least("owner"),
        ),
        (
            "DELETE",
            f"/api/projects/{p}",
            None,
            {"admin": 403, "editor": 403, "viewer": 403, "outsider": 404},
        ),
    ]


def call(
    platform: LocalStack, token: str, method: str, path: str, body: Any
) -> httpx.Response:
    """One request as ``token``; a string body is sent as a project.yaml."""
    yaml = {"content": body.encode()} if isinstance(body, str) else {"json": body}
    return httpx.request(
        method,
        f"{platform.api_url}{path}",
        headers=headers(token),
        timeout=30,
        **yaml,
    )


def outcome(response: httpx.Response) -> str | int:
    if response.is_success or response.status_code in (409, 429):
        return ALLOWED
    return response.status_code


def test_each_role_and_an_outsider_get_what_the_role_table_says(
    platform: LocalStack, world: World, postgres_url: str
) -> None:
    letter_for(postgres_url, world.run_id)
    differences = []
    for who in (*ROLES, "outsider"):
        for method, path, body, expected in matrix(world):
            if who not in expected:
                continue
            response = call(platform, world.tokens[who], method, path, body)
            if outcome(response) != expected[who]:
                differences.append(
                    f"{who} {method} {path}: {response.status_code} {response.text}"
                )
    assert differences == []


def test_an_outsider_cannot_tell_a_hidden_project_from_a_missing_one(
    platform: LocalStack, world: World
) -> None:
    outsider = world.tokens["outsider"]
    hidden = call(platform, outsider, "GET", f"/api/projects/{world.project}", None)
    missing = call(platform, outsider, "GET", "/api/projects/no-such-project", None)
    run = call(platform, outsider, "GET", f"/api/runs/{world.run_id}", None)
    listed = call(platform, outsider, "GET", "/api/projects", None)
    letters = call(platform, outsider, "GET", "/api/dead-letters", None)

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["code"] == missing.json()["code"] == "project_not_found"
    assert run.json() == {"code": "run_not_found", "message": f"no run {world.run_id}"}
    assert listed.json() == []
    assert letters.json() == []


def test_a_member_lacking_the_role_gets_one_error_shape(
    platform: LocalStack, world: World
) -> None:
    refused = call(
        platform,
        world.tokens["viewer"],
        "POST",
        f"/api/runs/{world.run_id}/rerun",
        None,
    )

    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert refused.json()["role"] == "viewer"
    assert refused.json()["required_role"] == "editor"


def test_a_site_admin_sees_every_project_and_a_user_only_theirs(
    platform: LocalStack, world: World, api: httpx.Client
) -> None:
    viewer = call(platform, world.tokens["viewer"], "GET", "/api/projects", None)
    admin = api.get("/api/projects")
    me = call(platform, world.tokens["viewer"], "GET", "/api/me", None)

    assert [p["name"] for p in viewer.json()] == [world.project]
    assert world.project in [p["name"] for p in admin.json()]
    assert me.json()["projects"] == [{"project": world.project, "role": "viewer"}]
    assert me.json()["is_admin"] is False


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/projects"),
        ("GET", "/api/me"),
        ("PUT", "/api/projects/anything"),
        ("GET", "/api/dead-letters"),
        ("POST", "/api/tokens"),
    ],
)
def test_a_call_without_a_valid_token_is_unauthenticated(
    platform: LocalStack, method: str, path: str
) -> None:
    url = f"{platform.api_url}{path}"
    for sent in ({}, headers("ofn_0123456789ab_forged"), {"authorization": "Basic x"}):
        response = httpx.request(method, url, headers=sent)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == "unauthenticated"


def test_health_and_the_openapi_document_stay_public(platform: LocalStack) -> None:
    document = httpx.get(f"{platform.api_url}/openapi.json")

    assert httpx.get(f"{platform.api_url}/healthz").status_code == 200
    assert httpx.get(f"{platform.api_url}/readyz").status_code == 200
    assert httpx.get(f"{platform.api_url}/docs").status_code == 200
    assert document.json()["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document.json()["components"]["securitySchemes"]["HTTPBearer"][
            "description"
        ],
    }


def test_a_token_is_shown_once_stored_as_a_hash_and_revocable(
    platform: LocalStack, api: httpx.Client, postgres_url: str
) -> None:
    first = add_user(api, "t-user")
    issued = call(platform, first, "POST", "/api/tokens", {"name": "laptop"})
    token = issued.json()["token"]
    me = call(platform, token, "GET", "/api/me", None)
    listed = call(platform, token, "GET", "/api/tokens", None)
    with connect(postgres_url, autocommit=True) as conn:
        rows = conn.execute("SELECT * FROM api_tokens").fetchall()
    stored = next(row for row in rows if row["id"] == issued.json()["id"])
    revoked = call(
        platform, first, "DELETE", f"/api/tokens/{issued.json()['id']}", None
    )
    after = call(platform, token, "GET", "/api/me", None)

    assert issued.status_code == 201
    assert token.startswith(f"ofn_{issued.json()['id']}_")
    assert me.json()["username"] == "t-user"
    assert [t["name"] for t in listed.json()] == ["tests", "laptop"]
    assert token not in listed.text
    assert all("token" not in t for t in listed.json())
    assert token not in repr(rows)
    assert first not in repr(rows)
    assert bytes(stored["token_hash"]) == hashlib.sha256(token.encode()).digest()
    assert stored["last_used_at"] is not None
    assert revoked.status_code == 204
    assert after.status_code == 401


def test_users_and_tokens_of_others_are_for_site_admins(
    platform: LocalStack, api: httpx.Client
) -> None:
    token = add_user(api, "plain")
    other = add_user(api, "other")
    other_id = call(platform, other, "GET", "/api/tokens", None).json()[0]["id"]

    new_user = call(platform, token, "POST", "/api/users", {"username": "sneaky"})
    for_other = call(
        platform, token, "POST", "/api/tokens", {"name": "x", "username": "other"}
    )
    revoke_other = call(platform, token, "DELETE", f"/api/tokens/{other_id}", None)
    taken = api.post("/api/users", json={"username": "plain"})

    assert new_user.status_code == 403
    assert for_other.status_code == 403
    assert revoke_other.status_code == 404
    assert taken.status_code == 409
    assert call(platform, other, "GET", "/api/me", None).status_code == 200


def test_only_the_owner_transfers_or_deletes_a_project(
    platform: LocalStack, api: httpx.Client, vault: VaultServer
) -> None:
    tokens = make_team(api, "h")
    created = put_project(
        platform, tokens["owner"], "handover", PROJECT.replace("VALUE", "s3cret")
    )
    project_id = created.json()["id"]
    seat_team(platform, tokens, "handover", "h")
    path = "/api/projects/handover"

    demote = call(
        platform,
        tokens["admin"],
        "PUT",
        f"{path}/collaborators/h-owner",
        {"role": "viewer"},
    )
    by_admin = call(
        platform, tokens["admin"], "POST", f"{path}/transfer", {"username": "h-admin"}
    )
    handed = call(
        platform, tokens["owner"], "POST", f"{path}/transfer", {"username": "h-admin"}
    )
    old_owner_deletes = call(platform, tokens["owner"], "DELETE", path, None)
    deleted = call(platform, tokens["admin"], "DELETE", path, None)

    assert demote.status_code == 409
    assert by_admin.status_code == 403
    assert {c["username"]: c["role"] for c in handed.json()} == {
        "h-admin": "owner",
        "h-owner": "admin",
        "h-editor": "editor",
        "h-viewer": "viewer",
    }
    assert old_owner_deletes.status_code == 403
    assert deleted.status_code == 204
    assert api.get(path).status_code == 404
    with pytest.raises(CredentialNotFoundError):
        vault.client().read_credential(project_id=UUID(project_id), name="store")
    assert eventually(
        lambda: (
            httpx.post(created.json()["inbox_url"], json={}).status_code == 404 or None
        )
    )


def test_the_cli_bootstraps_an_admin_and_hints_at_tokens(
    platform: LocalStack,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENFN_DATABASE_URL", postgres_url)
    monkeypatch.delenv("OPENFN_API_TOKEN", raising=False)

    created = openfn(["admin", "create-user", "bootstrap", "--admin"])
    issued = openfn(["admin", "create-token", "bootstrap", "--name", "ops"])
    token = capsys.readouterr().out.splitlines()[-1]
    without = openfn(["dead-letters", "--api", platform.api_url])
    hint = capsys.readouterr().err
    with_token = openfn(["dead-letters", "--api", platform.api_url, "--token", token])

    assert (created, issued) == (0, 0)
    assert call(platform, token, "GET", "/api/me", None).json()["is_admin"] is True
    assert without == 1
    assert "OPENFN_API_TOKEN" in hint
    assert with_token == 0
