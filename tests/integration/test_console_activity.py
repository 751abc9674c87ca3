"""The console's activity stream: open pages hear that their project changed.

The feed is tested on its own against PostgreSQL, then end to end: a message
posted to a project's inbox reaches a signed-in viewer's stream as a change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from devstack.stack import LocalStack
from services.api.console.activity import ActivityFeed
from shared.db.connection import connect, notify_activity
from tests.integration.test_console_access import PROJECT_YAML, add_user, signed_in

pytestmark = pytest.mark.integration

READY = "retry: 1000\nevent: ready\ndata: \n\n"
CHANGE = "event: change\ndata: \n\n"
KEEP_ALIVE = ": keep-alive\n\n"


def notify(url: str, project_id: UUID) -> None:
    with connect(url, autocommit=True) as conn:
        notify_activity(conn, [project_id])


async def next_event(stream: AsyncIterator[str], timeout_s: float = 10.0) -> str:
    return await asyncio.wait_for(anext(stream), timeout_s)


async def next_change(stream: AsyncIterator[str]) -> str:
    """The next event that is not a keep-alive."""
    while (event := await next_event(stream)) == KEEP_ALIVE:
        pass
    return event


def test_a_stream_hears_its_own_projects_changes_only(postgres_url: str) -> None:
    changed, quiet = uuid4(), uuid4()

    async def scenario() -> list[str]:
        feed = ActivityFeed(postgres_url, keepalive_s=0.5, lifetime_s=60)
        mine, other = feed.stream(changed), feed.stream(quiet)
        seen = [await next_event(mine), await next_event(other)]
        await asyncio.to_thread(notify, postgres_url, changed)
        seen += [await next_change(mine), await next_event(other)]
        feed.close()
        for stream in (mine, other):
            with pytest.raises(StopAsyncIteration):
                await next_event(stream)
        return seen

    assert asyncio.run(scenario()) == [READY, READY, CHANGE, KEEP_ALIVE]


def test_many_changes_while_a_page_is_busy_are_one_change(postgres_url: str) -> None:
    project = uuid4()

    async def scenario() -> list[str]:
        feed = ActivityFeed(postgres_url, keepalive_s=0.5, lifetime_s=60)
        stream = feed.stream(project)
        seen = [await next_event(stream)]
        for _ in range(3):
            await asyncio.to_thread(notify, postgres_url, project)
        await asyncio.sleep(0.3)  # the three are in before the page reads again
        seen += [await next_change(stream), await next_event(stream)]
        feed.close()
        return seen

    assert asyncio.run(scenario()) == [READY, CHANGE, KEEP_ALIVE]


def test_a_stream_ends_after_its_lifetime(postgres_url: str) -> None:
    async def scenario() -> None:
        # Had it not ended, a keep-alive would come next, after 5 s.
        feed = ActivityFeed(postgres_url, keepalive_s=5, lifetime_s=0.5)
        stream = feed.stream(uuid4())
        assert await next_event(stream) == READY
        with pytest.raises(StopAsyncIteration):
            await next_event(stream)
        feed.close()

    asyncio.run(scenario())


def test_a_viewer_hears_a_posted_message_and_an_outsider_gets_nothing(
    platform: LocalStack, tmp_path: Path
) -> None:
    name = f"activity-{uuid4().hex[:6]}"
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT_YAML)
    deployed = platform.deploy(path, name)
    with httpx.Client(
        base_url=platform.api_url, headers=platform.auth_headers(), timeout=30
    ) as admin:
        viewer = add_user(admin, f"{name}-viewer")
        outsider = add_user(admin, f"{name}-outsider")
        seated = admin.put(
            f"/api/projects/{name}/collaborators/{name}-viewer", json={"role": "viewer"}
        )
        assert seated.status_code == 200
    url = f"/console/projects/{name}/activity"

    with signed_in(platform, token=outsider) as (client, _cookie):
        refused = client.get(url)
    with signed_in(platform, token=viewer) as (client, _cookie):
        events: list[str] = []
        with client.stream("GET", url) as stream:
            kind = stream.headers["content-type"]
            for line in stream.iter_lines():
                if not line.startswith("event: "):
                    continue
                events.append(line)
                if line == "event: ready":
                    posted = httpx.post(deployed["inbox_url"], json={"kind": "visit"})
                    assert posted.status_code == 202
                if line == "event: change":
                    break
    signed_out = httpx.get(f"{platform.api_url}{url}", follow_redirects=False)

    assert kind.startswith("text/event-stream")
    assert events[:2] == ["event: ready", "event: change"]
    assert refused.status_code == 404
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/console/sign-in")
