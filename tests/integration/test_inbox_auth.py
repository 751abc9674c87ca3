"""Inboxes with credentials let in only senders that prove who they are."""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from devstack.stack import LocalStack
from services.api.inbox_auth_routes import seal_stored_secrets_in_background
from services.inbox_gateway.replays import ReplayGuard, Sighting
from shared.db import connect, open_pool
from shared.inbox_auth import (
    create_api_key,
    create_basic_credential,
    create_hmac_secret,
    parse_hmac_secret,
    revoke,
    sign,
)
from shared.vault import VaultClient
from tests.conftest import VaultServer
from tests.integration.conftest import EXAMPLE, Inbox, eventually

pytestmark = pytest.mark.integration

SURVEY = b'{"form": "survey"}'
JSON = {"content-type": "application/json"}


class SecuredProject:
    """A freshly deployed project, its inbox and a database connection."""

    def __init__(self, project_id: UUID, inbox: Inbox, database_url: str) -> None:
        self.id = project_id
        self.inbox = inbox
        self.database_url = database_url

    def post(self, headers: dict[str, str] | None = None, **kwargs: Any) -> int:
        response = self.inbox.post(
            content=SURVEY, headers={**JSON, **(headers or {})}, **kwargs
        )
        return response.status_code

    def wait_for(self, status: int, **kwargs: Any) -> None:
        """Post until the gateway answers ``status``: it has reloaded."""
        eventually(lambda: True if self.post(**kwargs) == status else None, 10)


@pytest.fixture
def sealer(vault: VaultServer) -> VaultClient:
    """Seals signing secrets as the API does (with the root token)."""
    return vault.client()


@pytest.fixture
def project(
    platform: LocalStack, postgres_url: str, tmp_path: Path
) -> Iterator[SecuredProject]:
    name = f"inbox-auth-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "project.yaml"
    path.write_text(EXAMPLE.read_text())
    deployed = platform.deploy(path, name)
    with connect(postgres_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT id FROM projects WHERE name = %s", (name,)
        ).fetchone()
    assert row is not None
    with httpx.Client(timeout=30) as client:
        yield SecuredProject(
            row["id"], Inbox(client, deployed["inbox_url"]), postgres_url
        )


def signed(
    secret: str, webhook_id: str, timestamp_s: int | None = None
) -> dict[str, str]:
    timestamp_s = int(time.time()) if timestamp_s is None else timestamp_s
    signature = sign(parse_hmac_secret(secret), webhook_id, timestamp_s, SURVEY)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": signature,
    }


def test_an_api_key_lets_messages_in(project: SecuredProject) -> None:
    with connect(project.database_url, autocommit=True) as conn:
        key = create_api_key(conn, project.id, "commcare").secret
    project.wait_for(401)

    missing = project.inbox.post(content=SURVEY, headers=JSON)
    wrong = project.inbox.post(content=SURVEY, headers={**JSON, "x-api-key": "nope"})

    assert project.post({"x-api-key": key}) == 202
    assert missing.json()["code"] == "unauthenticated"
    assert "www-authenticate" not in missing.headers
    assert wrong.status_code == 404
    assert wrong.json()["code"] == "inbox_not_found"


def test_http_basic_lets_messages_in(project: SecuredProject) -> None:
    with connect(project.database_url, autocommit=True) as conn:
        password = create_basic_credential(conn, project.id, "dhis2").secret
    project.wait_for(401)

    missing = project.inbox.post(content=SURVEY, headers=JSON)

    assert project.post(auth=("dhis2", password)) == 202
    assert missing.headers["www-authenticate"] == 'Basic realm="inbox"'
    assert project.post(auth=("dhis2", password + "x")) == 404
    assert project.post(auth=("openmrs", password)) == 404


def test_a_signed_request_is_let_in_once(
    project: SecuredProject, sealer: VaultClient
) -> None:
    with connect(project.database_url, autocommit=True) as conn:
        secret = create_hmac_secret(conn, project.id, "salesforce", sealer).secret
    project.wait_for(401)
    first = signed(secret, f"msg_{uuid.uuid4().hex}")
    since = datetime.now(UTC)

    accepted = project.inbox.post(content=SURVEY, headers={**JSON, **first})
    repeated = project.inbox.post(content=SURVEY, headers={**JSON, **first})
    other = project.inbox.post(
        content=SURVEY, headers={**JSON, **signed(secret, f"msg_{uuid.uuid4().hex}")}
    )

    assert accepted.status_code == 202
    # A sender retrying after a lost answer, or anyone replaying the request,
    # gets the first delivery's answer, and no second message is stored.
    assert repeated.status_code == 202
    assert repeated.json() == accepted.json()
    assert other.status_code == 202
    assert other.json() != accepted.json()
    eventually(lambda: stored_messages(project, since) == 2 or None)
    time.sleep(1)
    assert stored_messages(project, since) == 2


def stored_messages(project: SecuredProject, since: datetime) -> int:
    with connect(project.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM messages WHERE project_id = %s"
            " AND received_at >= %s",
            (project.id, since),
        ).fetchone()
    assert row is not None
    return int(row["n"])


def test_a_repeat_while_the_first_delivery_is_being_stored_is_asked_to_wait(
    project: SecuredProject, sealer: VaultClient
) -> None:
    with connect(project.database_url, autocommit=True) as conn:
        secret = create_hmac_secret(conn, project.id, "salesforce", sealer).secret
    project.wait_for(401)
    headers = signed(secret, f"msg_{uuid.uuid4().hex}")
    # A first delivery still on its way to the broker, as another replica
    # would leave it.
    with connect(project.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO inbox_replays (project_id, webhook_id, expires_at, message_id)"
            " VALUES (%s, %s, now() + interval '5 minutes', %s)",
            (project.id, headers["webhook-id"], uuid.uuid4()),
        )

    waiting = project.inbox.post(content=SURVEY, headers={**JSON, **headers})

    assert waiting.status_code == 503
    assert waiting.json()["code"] == "first_delivery_in_progress"
    assert int(waiting.headers["retry-after"]) >= 1


def test_a_signature_outside_the_tolerance_or_with_another_secret_is_404(
    project: SecuredProject, sealer: VaultClient
) -> None:
    with connect(project.database_url, autocommit=True) as conn:
        secret = create_hmac_secret(conn, project.id, "salesforce", sealer).secret
    project.wait_for(401)
    other = "whsec_" + base64.b64encode(b"not the project's key").decode()
    stale_s = int(time.time()) - 301

    assert project.post(signed(secret, "msg_stale", stale_s)) == 404
    assert project.post(signed(other, "msg_other")) == 404
    assert project.post(signed(secret, "msg_fresh")) == 202


def test_two_live_keys_both_work_until_one_is_revoked(project: SecuredProject) -> None:
    with connect(project.database_url, autocommit=True) as conn:
        old = create_api_key(conn, project.id, "2024")
        new = create_api_key(conn, project.id, "2025")
    project.wait_for(401)

    assert project.post({"x-api-key": old.secret}) == 202
    assert project.post({"x-api-key": new.secret}) == 202
    with connect(project.database_url, autocommit=True) as conn:
        assert revoke(conn, old.id)
        assert not revoke(conn, old.id)
    project.wait_for(404, headers={"x-api-key": old.secret})
    assert project.post({"x-api-key": new.secret}) == 202


def test_revoking_every_credential_opens_the_inbox_again(
    project: SecuredProject,
) -> None:
    with connect(project.database_url, autocommit=True) as conn:
        key = create_api_key(conn, project.id, "commcare")
    project.wait_for(401)
    with connect(project.database_url, autocommit=True) as conn:
        revoke(conn, key.id)
    project.wait_for(202)


def test_other_inboxes_stay_open_while_one_is_probed(
    project: SecuredProject, inbox: Inbox
) -> None:
    with connect(project.database_url, autocommit=True) as conn:
        create_api_key(conn, project.id, "commcare")
    project.wait_for(401)

    for attempt in range(50):
        assert project.post({"x-api-key": f"guess-{attempt}"}) == 404
        assert inbox.post(content=SURVEY, headers=JSON).status_code == 202


def test_replay_records_are_shared_and_expire(
    project: SecuredProject,
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()

    async def scenario() -> list[Sighting]:
        guards = [ReplayGuard(project.database_url, 2, 5, 0).open() for _ in range(2)]
        try:
            later_s = time.time() + 60
            seen = [
                await guards[0].remember(project.id, "msg_a", later_s, first),
                await guards[1].remember(project.id, "msg_a", later_s, second),
            ]
            await guards[0].stored(project.id, "msg_a")
            return [
                *seen,
                await guards[1].remember(project.id, "msg_a", later_s, second),
                await guards[1].remember(project.id, "msg_b", time.time() - 1, first),
                await guards[0].remember(project.id, "msg_b", later_s, second),
                await _forgotten_then_remembered(guards[0], project.id, later_s),
            ]
        finally:
            for guard in guards:
                guard.close()

    assert asyncio.run(scenario()) == [
        Sighting(first=True),
        # Seen on another replica while its message is being stored,
        Sighting(first=False, message_id=first, stored=False),
        # then once it is: the first delivery's message.
        Sighting(first=False, message_id=first, stored=True),
        Sighting(first=True),
        # An expired record does not count.
        Sighting(first=True),
        Sighting(first=True),
    ]


async def _forgotten_then_remembered(
    guard: ReplayGuard, project_id: UUID, until_s: float
) -> Sighting:
    await guard.forget(project_id, "msg_a")
    return await guard.remember(project_id, "msg_a", until_s, uuid.uuid4())


def test_a_signing_secret_is_stored_only_sealed(
    project: SecuredProject, sealer: VaultClient
) -> None:
    with connect(project.database_url, autocommit=True) as conn:
        issued = create_hmac_secret(conn, project.id, "salesforce", sealer)
        row = conn.execute(
            "SELECT secret FROM inbox_credentials WHERE id = %s", (issued.id,)
        ).fetchone()
    project.wait_for(401)

    assert row is not None
    assert row["secret"].startswith("vault:v")
    assert issued.secret.removeprefix("whsec_") not in row["secret"]
    assert project.post(signed(issued.secret, f"msg_{uuid.uuid4().hex}")) == 202


def test_a_secret_stored_before_sealing_keeps_working_and_is_sealed_in_place(
    project: SecuredProject, sealer: VaultClient
) -> None:
    plain = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    credential_id = uuid.uuid4()
    with connect(project.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO inbox_credentials (id, project_id, kind, name, secret)"
            " VALUES (%s, %s, 'hmac', 'legacy', %s)",
            (credential_id, project.id, plain),
        )
        conn.execute("UPDATE inbox_auth_revision SET revision = revision + 1")
    project.wait_for(401)
    before = project.post(signed(plain, f"msg_{uuid.uuid4().hex}"))

    with open_pool(project.database_url, 1, "sealing") as pool:
        seal_stored_secrets_in_background(pool, sealer, retry_s=0.1).join(30)
    with connect(project.database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT secret FROM inbox_credentials WHERE id = %s", (credential_id,)
        ).fetchone()
    # Through the gateway's reload of the sealed form, and after it.
    deadline = time.monotonic() + 5
    after = set()
    while time.monotonic() < deadline:
        after.add(project.post(signed(plain, f"msg_{uuid.uuid4().hex}")))

    assert before == 202
    assert row is not None
    assert row["secret"].startswith("vault:v")
    assert after == {202}


def test_a_secret_vault_will_not_open_makes_signed_requests_wait_not_fail(
    platform: LocalStack, project: SecuredProject, sealer: VaultClient
) -> None:
    with connect(project.database_url, autocommit=True) as conn:
        kept = create_hmac_secret(conn, project.id, "salesforce", sealer)
        moved = create_hmac_secret(conn, project.id, "stripe", sealer)
        # A sealed secret copied onto another credential's row: it is bound
        # to its own credential, so Vault refuses to open it there.
        conn.execute(
            "UPDATE inbox_credentials SET secret ="
            " (SELECT secret FROM inbox_credentials WHERE id = %s) WHERE id = %s",
            (kept.id, moved.id),
        )
        conn.execute("UPDATE inbox_auth_revision SET revision = revision + 1")
    eventually(lambda: unopened_secrets(platform) == 1 or None)

    waiting = project.inbox.post(
        content=SURVEY,
        headers={**JSON, **signed(moved.secret, f"msg_{uuid.uuid4().hex}")},
    )
    let_in = project.post(signed(kept.secret, f"msg_{uuid.uuid4().hex}"))
    with connect(project.database_url, autocommit=True) as conn:
        revoke(conn, moved.id)
    eventually(lambda: unopened_secrets(platform) == 0 or None)

    assert waiting.status_code == 503
    assert waiting.json()["code"] == "inbox_auth_unavailable"
    assert int(waiting.headers["retry-after"]) >= 1
    assert let_in == 202
    assert project.post(signed(moved.secret, f"msg_{uuid.uuid4().hex}")) == 404


def unopened_secrets(platform: LocalStack) -> float:
    port = platform.ops_ports["inbox_gateway"]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("openfn_inbox_signing_secrets_unopened "):
            return float(line.split()[1])
    raise AssertionError("the gateway does not export its unopened secrets")
