"""Signing in to the console, its session cookie and CSRF tokens, passwords, and
what each role sees there, against the running platform.

Each test drives the console as a browser would, with plain HTTP: it reads the
sign-in form, posts it, keeps the cookie, and reads the pages' HTML.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest

from devstack.stack import ADMIN_USERNAME, LocalStack
from shared.db import connect
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

SUFFIX = uuid4().hex[:6]
PROJECT = f"console-{SUFFIX}"
PROJECT_YAML = """\
jobs:
  tally:
    trigger: visit
    expression: |
      fn(lambda state: {**state, "n": 1})
triggers:
  visit:
    criteria: '{"kind": "visit"}'
"""
PASSWORD = "a long enough password"
WRONG = "The username or password is wrong."
OPENFN = Path(sys.executable).with_name("openfn")

_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_PROBLEM = re.compile(r'<p class="problem" role="alert">([^<]*)</p>')


def unique(name: str) -> str:
    return f"c{SUFFIX}-{name}"


def browser(platform: LocalStack, cookie: str | None = None) -> httpx.Client:
    """A client that keeps cookies and does not follow redirects."""
    return httpx.Client(
        base_url=platform.api_url,
        follow_redirects=False,
        timeout=30,
        cookies={"ofn_session": cookie} if cookie else None,
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def form_token(client: httpx.Client, next_url: str | None = None) -> str:
    """Open the sign-in page; the token its form carries back."""
    page = client.get("/console/sign-in", params={"next": next_url} if next_url else {})
    assert page.status_code == 200
    match = _FORM_TOKEN.search(page.text)
    assert match is not None
    return match.group(1)


def post_sign_in(client: httpx.Client, **fields: str) -> httpx.Response:
    """Sign in through the form, as the sign-in page would post it."""
    return client.post(
        "/console/sign-in", data={"csrf_token": form_token(client), **fields}
    )


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each cookie the response sets: its name and its whole Set-Cookie line."""
    lines = response.headers.get_list("set-cookie")
    return {line.split("=", 1)[0]: line for line in lines}


def session_cookie(response: httpx.Response) -> str | None:
    line = set_cookies(response).get("ofn_session")
    if line is None:
        return None
    value = line.split("=", 1)[1].split(";", 1)[0]
    return value.strip('"') or None


def attributes(set_cookie: str) -> set[str]:
    """The attributes of a Set-Cookie line, lower-cased, values kept."""
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


@contextmanager
def signed_in(
    platform: LocalStack, **fields: str
) -> Iterator[tuple[httpx.Client, str]]:
    """A browser signed in with ``fields``, and its session cookie."""
    with browser(platform) as client:
        response = post_sign_in(client, **fields)
        assert response.status_code == 303, response.text
        cookie = session_cookie(response)
        assert cookie is not None
        yield client, cookie


def page_csrf(client: httpx.Client) -> str:
    """The session's CSRF token, as a page's script reads it."""
    page = client.get("/console/account")
    assert page.status_code == 200
    match = _META_TOKEN.search(page.text)
    assert match is not None
    return match.group(1)


def problem(page: httpx.Response) -> str:
    match = _PROBLEM.search(page.text)
    assert match is not None, page.text
    return html.unescape(match.group(1))


def add_user(api: httpx.Client, username: str) -> str:
    """A new user's API token."""
    assert api.post("/api/users", json={"username": username}).status_code == 201
    issued = api.post("/api/tokens", json={"name": "tests", "username": username})
    assert issued.status_code == 201
    return str(issued.json()["token"])


def add_user_with_password(api: httpx.Client, name: str) -> tuple[str, str]:
    """A new user with ``PASSWORD``: their username and API token."""
    username = unique(name)
    token = add_user(api, username)
    given = api.put(f"/api/users/{username}/password", json={"new_password": PASSWORD})
    assert given.status_code == 204
    return username, token


@pytest.fixture(scope="module")
def admin(platform: LocalStack) -> Iterator[httpx.Client]:
    """The API as the local stack's site admin."""
    with httpx.Client(
        base_url=platform.api_url, headers=platform.auth_headers(), timeout=30
    ) as client:
        yield client


@dataclass(frozen=True)
class Team:
    """A project with one finished run, and its viewer, editor and an outsider."""

    tokens: dict[str, str]
    message_id: str
    run_id: str


@pytest.fixture(scope="module")
def team(
    platform: LocalStack, admin: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> Team:
    path = tmp_path_factory.mktemp("console") / "project.yaml"
    path.write_text(PROJECT_YAML)
    deployed = platform.deploy(path, PROJECT)
    tokens = {who: add_user(admin, unique(who)) for who in ("viewer", "editor", "x")}
    tokens["outsider"] = tokens.pop("x")
    for role in ("viewer", "editor"):
        seated = admin.put(
            f"/api/projects/{PROJECT}/collaborators/{unique(role)}",
            json={"role": role},
        )
        assert seated.status_code == 200
    posted = httpx.post(deployed["inbox_url"], json={"kind": "visit"}, timeout=30)
    message_id = str(posted.json()["message_id"])

    def finished_run() -> str | None:
        receipt = admin.get(f"/api/messages/{message_id}")
        runs = receipt.json()["runs"] if receipt.status_code == 200 else []
        done = [run["id"] for run in runs if run["finished_at"]]
        return str(done[0]) if done else None

    run_id = eventually(finished_run, timeout_s=60)
    return Team(tokens, message_id, run_id)


@contextmanager
def as_member(platform: LocalStack, team: Team, who: str) -> Iterator[httpx.Client]:
    with signed_in(platform, token=team.tokens[who]) as (client, _cookie):
        yield client


# --- Signing in ---------------------------------------------------------------


def test_the_sign_in_page_gives_its_form_a_token_and_the_browser_its_cookie(
    platform: LocalStack,
) -> None:
    with browser(platform) as client:
        page = client.get("/console/sign-in")

    cookie = set_cookies(page)["ofn_sign_in"]
    match = _FORM_TOKEN.search(page.text)
    assert page.status_code == 200
    assert match is not None
    assert cookie.startswith(f"ofn_sign_in={match.group(1)};")
    assert {"httponly", "path=/console/sign-in", "samesite=strict"} <= attributes(
        cookie
    )
    assert "secure" not in attributes(cookie)
    assert "ofn_session" not in set_cookies(page)
    assert '<meta name="csrf-token"' not in page.text


def test_a_password_signs_in_with_an_http_only_lax_cookie_and_goes_next(
    platform: LocalStack, admin: httpx.Client
) -> None:
    username, _token = add_user_with_password(admin, "pw")
    with browser(platform) as client:
        response = client.post(
            "/console/sign-in",
            data={
                "csrf_token": form_token(client),
                "next": "/console/account?tab=1",
                "username": username,
                "password": PASSWORD,
            },
        )
        account = client.get("/console/account")

    cookie = set_cookies(response)["ofn_session"]
    assert response.status_code == 303
    assert response.headers["location"] == "/console/account?tab=1"
    assert {"httponly", "path=/", "samesite=lax"} <= attributes(cookie)
    assert "secure" not in attributes(cookie)
    assert any(a.startswith("max-age=") for a in attributes(cookie))
    assert 'ofn_sign_in=""' in set_cookies(response)["ofn_sign_in"]
    assert account.status_code == 200
    assert f">{username}</a>" in account.text


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(
    platform: LocalStack, admin: httpx.Client
) -> None:
    username, _token = add_user_with_password(admin, "wrong")
    with browser(platform) as client:
        wrong = post_sign_in(client, username=username, password=PASSWORD + "x")
        unknown = post_sign_in(client, username=unique("nobody"), password=PASSWORD)
        empty = post_sign_in(client, username=username, password="")
        sneaky = post_sign_in(client, username="<b>x</b>", password=PASSWORD)
        after = client.get("/api/me")

    for refused in (wrong, unknown, empty, sneaky):
        assert refused.status_code == 401
        assert problem(refused) == WRONG
        assert "ofn_session" not in set_cookies(refused)
    assert "&lt;b&gt;x&lt;/b&gt;" in sneaky.text
    assert "<b>x</b>" not in sneaky.text
    assert after.status_code == 401


def test_a_sign_in_form_without_its_own_token_is_refused(
    platform: LocalStack, admin: httpx.Client
) -> None:
    username, _token = add_user_with_password(admin, "csrf")
    fields = {"username": username, "password": PASSWORD}
    with browser(platform) as client, browser(platform) as other:
        token = form_token(client)
        missing = client.post("/console/sign-in", data=fields)
        mismatched = client.post(
            "/console/sign-in", data={**fields, "csrf_token": form_token(other)}
        )
        empty = client.post("/console/sign-in", data={**fields, "csrf_token": ""})
    with browser(platform) as cookieless:
        no_cookie = cookieless.post(
            "/console/sign-in", data={**fields, "csrf_token": token}
        )

    for refused in (missing, mismatched, empty, no_cookie):
        assert refused.status_code == 400
        assert "expired" in problem(refused)
        assert "ofn_session" not in set_cookies(refused)


def test_an_api_token_signs_in_and_a_forged_one_does_not(
    platform: LocalStack, team: Team
) -> None:
    with (
        signed_in(platform, token=team.tokens["viewer"]) as (client, _cookie),
        browser(platform) as other,
    ):
        me = client.get("/api/me")
        forged = post_sign_in(other, token="ofn_0123456789ab_forged")

    assert me.json()["username"] == unique("viewer")
    assert forged.status_code == 401
    assert problem(forged) == "That API token is unknown or revoked."
    assert "ofn_session" not in set_cookies(forged)


def test_a_user_without_a_password_cannot_sign_in_with_any_password(
    platform: LocalStack, team: Team
) -> None:
    with browser(platform) as client:
        tries = [
            post_sign_in(client, username=unique("viewer"), password=password)
            for password in ("", PASSWORD, "none", "null", "$argon2id$")
        ]

    assert [t.status_code for t in tries] == [401] * len(tries)
    assert all("ofn_session" not in set_cookies(t) for t in tries)


def test_sign_in_sends_a_browser_only_to_a_console_page_of_this_site(
    platform: LocalStack, team: Team
) -> None:
    with browser(platform) as client:
        offered = client.get("/console/sign-in", params={"next": "//evil.example/"})
        injected = client.get(
            "/console/sign-in", params={"next": '/console/x"><script>alert(1)</script>'}
        )
        landings = [
            client.post(
                "/console/sign-in",
                data={
                    "csrf_token": form_token(client),
                    "token": team.tokens["viewer"],
                    "next": target,
                },
            ).headers["location"]
            for target in (
                "https://evil.example/",
                "//evil.example/console/x",
                "/\\evil.example",
                "/api/me",
                "/console/runs/x?y=1",
            )
        ]

    assert 'name="next" value="/console/projects"' in offered.text
    assert "evil" not in offered.text
    assert 'value="/console/x&#34;&gt;&lt;script&gt;alert(1)' in injected.text
    assert "<script>alert" not in injected.text
    assert landings == ["/console/projects"] * 4 + ["/console/runs/x?y=1"]


def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(
    platform: LocalStack,
) -> None:
    wanted = "/console/projects/clinic/history?status=failed&q=a b"
    with browser(platform) as client, browser(platform, "made-up") as forged:
        answers = [client.get(wanted), forged.get(wanted)]
        account = client.get("/console/account")

    for answer in answers:
        location = urlsplit(answer.headers["location"])
        assert answer.status_code == 303
        assert location.path == "/console/sign-in"
        assert parse_qs(location.query) == {
            "next": ["/console/projects/clinic/history?status=failed&q=a%20b"]
        }
    assert account.headers["location"] == "/console/sign-in?next=%2Fconsole%2Faccount"


# --- The session cookie and the JSON API ---------------------------------------


def test_the_session_cookie_reads_the_json_api_and_changes_need_the_csrf_token(
    platform: LocalStack, admin: httpx.Client
) -> None:
    username, _token = add_user_with_password(admin, "api")
    with signed_in(platform, username=username, password=PASSWORD) as (client, _):
        csrf = page_csrf(client)
        me = client.get("/api/me")
        refused = [
            client.post("/api/tokens", json={"name": "laptop"}),
            client.put("/api/me/password", json={"new_password": PASSWORD + "2"}),
            client.delete("/api/tokens/0123456789ab"),
            client.post(
                "/api/tokens", json={"name": "laptop"}, headers={"x-csrf-token": "x"}
            ),
            client.post(
                "/api/tokens", json={"name": "laptop"}, headers={"x-csrf-token": ""}
            ),
        ]
        issued = client.post(
            "/api/tokens", json={"name": "laptop"}, headers={"x-csrf-token": csrf}
        )
        revoked = client.delete(
            f"/api/tokens/{issued.json()['id']}", headers={"x-csrf-token": csrf}
        )
        listed = client.get("/api/tokens")

    assert me.status_code == 200
    assert me.json()["username"] == username
    for answer in refused:
        assert answer.status_code == 403
        assert answer.json()["code"] == "csrf_token_missing"
    assert issued.status_code == 201
    assert revoked.status_code == 204
    assert [t["name"] for t in listed.json()] == ["tests"]


def test_the_csrf_token_of_one_session_does_not_serve_another(
    platform: LocalStack, admin: httpx.Client
) -> None:
    username, _token = add_user_with_password(admin, "two")
    with (
        signed_in(platform, username=username, password=PASSWORD) as (first, _),
        signed_in(platform, username=username, password=PASSWORD) as (second, _),
    ):
        first_csrf, second_csrf = page_csrf(first), page_csrf(second)
        crossed = second.post(
            "/api/tokens", json={"name": "x"}, headers={"x-csrf-token": first_csrf}
        )

    assert first_csrf != second_csrf
    assert crossed.status_code == 403
    assert crossed.json()["code"] == "csrf_token_missing"


def test_signing_out_needs_the_form_token_and_ends_only_that_session(
    platform: LocalStack, admin: httpx.Client
) -> None:
    username, _token = add_user_with_password(admin, "out")
    with (
        signed_in(platform, username=username, password=PASSWORD) as (client, cookie),
        signed_in(platform, username=username, password=PASSWORD) as (other, _),
    ):
        csrf = page_csrf(client)
        kept = client.post("/console/sign-out", data={"csrf_token": "wrong"})
        still = client.get("/api/me")
        out = client.post("/console/sign-out", data={"csrf_token": csrf})
        other_me = other.get("/api/me")
    with browser(platform, cookie) as replay:
        page = replay.get("/console/projects")
        me = replay.get("/api/me")
        change = replay.post(
            "/api/tokens", json={"name": "x"}, headers={"x-csrf-token": csrf}
        )

    assert kept.status_code == 403
    assert still.status_code == 200
    assert out.status_code == 303
    assert out.headers["location"] == "/console/sign-in"
    assert set_cookies(out)["ofn_session"].startswith('ofn_session="";')
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/sign-in?next=")
    assert me.status_code == 401
    assert change.status_code == 401
    assert other_me.status_code == 200


def test_signing_in_as_someone_else_ends_the_browsers_earlier_session(
    platform: LocalStack, admin: httpx.Client
) -> None:
    first, _ = add_user_with_password(admin, "earlier")
    second, _ = add_user_with_password(admin, "later")
    with signed_in(platform, username=first, password=PASSWORD) as (client, earlier):
        again = post_sign_in(client, username=second, password=PASSWORD)
        me = client.get("/api/me")
    with browser(platform, earlier) as replay:
        stale = replay.get("/api/me")

    assert again.status_code == 303
    assert me.json()["username"] == second
    assert stale.status_code == 401


# --- Passwords ----------------------------------------------------------------


def test_changing_your_password_needs_the_current_one_and_ends_your_sessions(
    platform: LocalStack, admin: httpx.Client
) -> None:
    username, token = add_user_with_password(admin, "change")
    new = PASSWORD + " changed"
    with (
        signed_in(platform, username=username, password=PASSWORD) as (client, cookie),
        signed_in(platform, username=username, password=PASSWORD) as (_, other_cookie),
    ):
        headers = {"x-csrf-token": page_csrf(client)}
        missing = client.put(
            "/api/me/password", json={"new_password": new}, headers=headers
        )
        wrong = client.put(
            "/api/me/password",
            json={"new_password": new, "current_password": PASSWORD + "?"},
            headers=headers,
        )
        too_short = client.put(
            "/api/me/password",
            json={"new_password": "short", "current_password": PASSWORD},
            headers=headers,
        )
        changed = client.put(
            "/api/me/password",
            json={"new_password": new, "current_password": PASSWORD},
            headers=headers,
        )
    ended = []
    for old in (cookie, other_cookie):
        with browser(platform, old) as replay:
            ended.append((replay.get("/api/me"), replay.get("/console/account")))
    with browser(platform) as fresh:
        old_password = post_sign_in(fresh, username=username, password=PASSWORD)
        new_password = post_sign_in(fresh, username=username, password=new)
    by_token = httpx.get(f"{platform.api_url}/api/me", headers=bearer(token))

    for refused in (missing, wrong):
        assert refused.status_code == 403
        assert refused.json()["code"] == "current_password_wrong"
    assert too_short.status_code == 422
    assert changed.status_code == 204
    for me, page in ended:
        assert me.status_code == 401
        assert page.status_code == 303
    assert old_password.status_code == 401
    assert new_password.status_code == 303
    assert by_token.status_code == 200


def test_a_user_signed_in_by_token_sets_a_first_password_without_a_current_one(
    platform: LocalStack, admin: httpx.Client
) -> None:
    username = unique("first")
    token = add_user(admin, username)
    with signed_in(platform, token=token) as (client, _cookie):
        set_first = client.put(
            "/api/me/password",
            json={"new_password": PASSWORD},
            headers={"x-csrf-token": page_csrf(client)},
        )
        after = client.get("/api/me")
    with browser(platform) as fresh:
        by_password = post_sign_in(fresh, username=username, password=PASSWORD)

    assert set_first.status_code == 204
    assert after.status_code == 401
    assert by_password.status_code == 303


def test_a_site_admin_sets_another_users_password_and_others_may_not(
    platform: LocalStack, admin: httpx.Client
) -> None:
    assert platform.admin_password is not None
    username, token = add_user_with_password(admin, "target")
    _other, other_token = add_user_with_password(admin, "meddler")
    with signed_in(platform, username=username, password=PASSWORD) as (_, cookie):
        pass
    new = PASSWORD + " by admin"
    path = f"/api/users/{username}/password"
    with httpx.Client(base_url=platform.api_url, timeout=30) as api:
        by_other = api.put(
            path, json={"new_password": new}, headers=bearer(other_token)
        )
        by_self = api.put(path, json={"new_password": new}, headers=bearer(token))
    unknown = admin.put(
        f"/api/users/{unique('ghost')}/password", json={"new_password": new}
    )
    too_short = admin.put(path, json={"new_password": "x" * 9})
    with browser(platform, cookie) as still:
        unchanged = still.get("/api/me")
    with signed_in(
        platform, username=ADMIN_USERNAME, password=platform.admin_password
    ) as (console, _):
        by_admin = console.put(
            path,
            json={"new_password": new},
            headers={"x-csrf-token": page_csrf(console)},
        )
    with browser(platform, cookie) as replay:
        ended = replay.get("/api/me")
    with browser(platform) as fresh:
        old_password = post_sign_in(fresh, username=username, password=PASSWORD)
        new_password = post_sign_in(fresh, username=username, password=new)

    for refused in (by_other, by_self):
        assert refused.status_code == 403
        assert refused.json()["code"] == "forbidden"
    assert unknown.status_code == 404
    assert too_short.status_code == 422
    assert unchanged.status_code == 200
    assert by_admin.status_code == 204
    assert ended.status_code == 401
    assert old_password.status_code == 401
    assert new_password.status_code == 303


def test_openfn_admin_set_password_sets_a_password_that_signs_in(
    platform: LocalStack, admin: httpx.Client
) -> None:
    assert platform.servers is not None
    username = unique("cli")
    add_user(admin, username)
    env = {**os.environ, "OPENFN_DATABASE_URL": platform.servers.database_url}

    def set_password(name: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(OPENFN), "admin", "set-password", name],
            input=f"{password}\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    short = set_password(username, "short")
    nobody = set_password(unique("nobody"), PASSWORD)
    done = set_password(username, PASSWORD)
    with browser(platform) as client:
        signed = post_sign_in(client, username=username, password=PASSWORD)

    assert short.returncode == 1
    assert "at least 10 characters" in short.stderr
    assert nobody.returncode == 1
    assert "no user" in nobody.stderr
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert signed.status_code == 303
    assert session_cookie(signed) is not None


def test_the_database_keeps_neither_a_password_nor_a_cookie_in_clear(
    platform: LocalStack, admin: httpx.Client
) -> None:
    assert platform.servers is not None
    username, _token = add_user_with_password(admin, "clear")
    with signed_in(platform, username=username, password=PASSWORD) as (_, cookie):
        pass
    with connect(platform.servers.database_url, autocommit=True) as conn:
        user = conn.execute(
            "SELECT id, password_hash FROM users WHERE username = %s", (username,)
        ).fetchone()
        assert user is not None
        sessions = conn.execute(
            "SELECT * FROM console_sessions WHERE user_id = %s", (user["id"],)
        ).fetchall()
        raw = conn.execute(
            "SELECT count(*) AS n FROM console_sessions WHERE id_hash = %s",
            (cookie.encode(),),
        ).fetchone()

    assert user["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in user["password_hash"]
    assert len(sessions) == 1
    assert raw is not None
    assert raw["n"] == 0
    assert bytes(sessions[0]["id_hash"]) == hashlib.sha256(cookie.encode()).digest()
    assert cookie not in repr(sessions)


# --- Roles ------------------------------------------------------------------


def test_a_viewer_reads_the_project_but_is_offered_no_change(
    platform: LocalStack, team: Team
) -> None:
    with as_member(platform, team, "viewer") as viewer:
        run = viewer.get(f"/console/runs/{team.run_id}")
        jobs = viewer.get(f"/console/projects/{PROJECT}/jobs")
        receipt = viewer.get(f"/console/messages/{team.message_id}")
        inbox = viewer.get(f"/console/projects/{PROJECT}/inbox")
        history = viewer.get(f"/console/projects/{PROJECT}/history")
        credentials = viewer.get(f"/console/projects/{PROJECT}/credentials")
        collaborators = viewer.get(f"/console/projects/{PROJECT}/collaborators")
        rerun = viewer.post(
            f"/api/runs/{team.run_id}/rerun",
            headers={"x-csrf-token": page_csrf(viewer)},
        )

    for page in (run, jobs, receipt, inbox, history):
        assert page.status_code == 200
        assert f'<a href="/console/projects/{PROJECT}/jobs"' in page.text
        assert f"/console/projects/{PROJECT}/credentials" not in page.text
        assert f"/console/projects/{PROJECT}/collaborators" not in page.text
        assert "data-api=" not in page.text
    assert 'title="Your role in this project">viewer<' in run.text
    assert f'data-url="/api/runs/{team.run_id}/rerun"' not in run.text
    assert ">Re-run<" not in run.text
    assert 'id="job-tally"' in jobs.text
    assert f'data-url="/api/projects/{PROJECT}/jobs/tally"' not in jobs.text
    assert ">Disable<" not in jobs.text
    assert team.run_id in history.text
    assert "data-rerun-selected" not in history.text
    for refused in (credentials, collaborators):
        assert refused.status_code == 403
        assert "Not allowed" in refused.text
        assert "you are viewer" in refused.text
    assert rerun.status_code == 403
    assert rerun.json()["code"] == "forbidden"


def test_an_editor_is_offered_a_re_run_and_the_jobs_switch(
    platform: LocalStack, team: Team
) -> None:
    with as_member(platform, team, "editor") as editor:
        run = editor.get(f"/console/runs/{team.run_id}")
        jobs = editor.get(f"/console/projects/{PROJECT}/jobs")
        credentials = editor.get(f"/console/projects/{PROJECT}/credentials")

    assert run.status_code == 200
    assert f'<form data-api="POST" data-url="/api/runs/{team.run_id}/rerun"' in run.text
    assert f'data-url="/api/projects/{PROJECT}/jobs/tally"' in jobs.text
    assert ">Disable<" in jobs.text
    assert f"/console/projects/{PROJECT}/credentials" not in run.text
    assert credentials.status_code == 403


def test_an_outsider_cannot_tell_the_project_from_one_that_does_not_exist(
    platform: LocalStack, team: Team
) -> None:
    made_up = unique("no-such-project")
    made_up_id = str(uuid4())
    with as_member(platform, team, "outsider") as outsider:
        listed = outsider.get("/console/projects")
        project_pages = [
            (
                outsider.get(f"/console/projects/{PROJECT}{page}"),
                outsider.get(f"/console/projects/{made_up}{page}"),
            )
            for page in ("", "/inbox", "/history", "/jobs", "/credentials")
        ]
        receipt = (
            outsider.get(f"/console/messages/{team.message_id}"),
            outsider.get(f"/console/messages/{made_up_id}"),
        )
        run = (
            outsider.get(f"/console/runs/{team.run_id}"),
            outsider.get(f"/console/runs/{made_up_id}"),
        )

    assert listed.status_code == 200
    assert PROJECT not in listed.text
    for hidden, missing in project_pages:
        assert hidden.status_code == missing.status_code == 404
        assert "<h1>Not found</h1>" in hidden.text
        assert hidden.text.replace(PROJECT, "NAME") == missing.text.replace(
            made_up, "NAME"
        )
        assert hidden.text.count(PROJECT) == missing.text.count(made_up)
    for (hidden, missing), real_id in (
        (receipt, team.message_id),
        (run, team.run_id),
    ):
        assert hidden.status_code == missing.status_code == 404
        assert hidden.text.replace(real_id, "ID") == missing.text.replace(
            made_up_id, "ID"
        )
        assert PROJECT not in hidden.text


def test_console_pages_send_headers_that_stop_injected_scripts_and_framing(
    platform: LocalStack, team: Team
) -> None:
    with browser(platform) as anonymous:
        sign_in = anonymous.get("/console/sign-in")
        refused = post_sign_in(anonymous, token="ofn_0123456789ab_forged")
    with as_member(platform, team, "viewer") as viewer:
        pages = [
            sign_in,
            refused,
            viewer.get("/console/projects"),
            viewer.get(f"/console/runs/{team.run_id}"),
            viewer.get(f"/console/projects/{PROJECT}/credentials"),
            viewer.get("/console/projects/no-such-project/inbox"),
            viewer.get("/console/runs/not-a-uuid"),
        ]

    assert [page.status_code for page in pages] == [200, 401, 200, 200, 403, 404, 404]
    for page in pages:
        policy = page.headers["content-security-policy"]
        assert "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in page.text
        assert " style=" not in page.text
