"""The console in a real browser: Debian's Chromium driven by Playwright.

The tests follow one project through a working day: sign in, post a message
with the command the empty inbox shows, watch its job states arrive without a
reload, read its receipt, fix a failing job and re-run its failed run, and
abort a run that takes too long. Each page is photographed into
``docs/screenshots/`` (or ``OPENFN_SCREENSHOT_DIR``), which the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from devstack.stack import LocalStack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("OPENFN_SCREENSHOT_DIR", ROOT / "docs" / "screenshots"))
CHROMIUM = os.environ.get("OPENFN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROJECT = "clinic"
ZONE = "Africa/Nairobi"
PASSWORD = "a long console password"

JOBS = """
jobs:
  register-referral:
    trigger: referral-received
    adaptor: common
    expression: |
      fn(lambda state: {**state, "patient": state["data"]["patient"]["name"]})
      log("referral registered for", data_value("$.patient.name"))
  notify-facility:
    trigger: referral-received
    adaptor: common
    expression: |
      fn(lambda state: {**state, "code": state["data"]["facility"]["code"]})
      log("facility notified")
triggers:
  referral-received:
    criteria: '{"form": "referral"}'
"""
# Sleeps for most of the test stack's run timeout (8 s): long enough to abort.
OVERNIGHT = """
jobs:
  long-sync:
    trigger: nightly
    expression: |
      import time
      fn(lambda state: print("syncing", flush=True) or time.sleep(7) or state)
triggers:
  nightly:
    cron: "0 2 * * *"
"""
FIXED_JOB = JOBS.replace(
    'state["data"]["facility"]["code"]', 'state["data"]["facility"].upper()'
)


@dataclass
class Console:
    """The stack, the project under test and a browser to look at it with."""

    platform: LocalStack
    browser: Browser
    inbox_url: str
    tmp: Path

    def deploy(self, text: str) -> None:
        path = self.tmp / "project.yaml"
        path.write_text(text)
        self.platform.deploy(path, PROJECT)

    def url(self, path: str) -> str:
        return f"{self.platform.api_url}{path}"

    def sign_in(self, username: str, password: str, **options: Any) -> Page:
        context = self.browser.new_context(
            timezone_id=ZONE, viewport={"width": 1280, "height": 860}, **options
        )
        page = context.new_page()
        page.goto(self.url("/console"))
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url("**/console/projects")
        return page


def shot(page: Page, name: str) -> None:
    """Photograph the whole page for the README."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: `make test` installs Debian's chromium"
        )
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def console(
    platform: LocalStack, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Console:
    expect.set_options(timeout=30_000)
    tmp = tmp_path_factory.mktemp("console")
    path = tmp / "project.yaml"
    path.write_text(JOBS)
    created = platform.deploy(path, PROJECT)
    return Console(platform, browser, created["inbox_url"], tmp)


@pytest.fixture(scope="module")
def admin(console: Console) -> Iterator[Page]:
    """The site admin, signed in with the password the stack gave them."""
    assert console.platform.admin_password is not None
    page = console.sign_in("admin", console.platform.admin_password)
    yield page
    page.context.close()


def make_user(console: Console, username: str, role: str | None) -> None:
    """A user with ``PASSWORD`` and, unless None, a role in the project."""
    with httpx.Client(
        base_url=console.platform.api_url,
        headers=console.platform.auth_headers(),
        timeout=10,
    ) as api:
        assert api.post("/api/users", json={"username": username}).status_code == 201
        answer = api.put(
            f"/api/users/{username}/password", json={"new_password": PASSWORD}
        )
        assert answer.status_code == 204
        if role is not None:
            answer = api.put(
                f"/api/projects/{PROJECT}/collaborators/{username}",
                json={"role": role},
            )
            assert answer.status_code == 200


def test_signing_in_with_a_password_lists_the_projects(console: Console) -> None:
    context = console.browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(console.url(f"/console/projects/{PROJECT}/inbox"))
    page.wait_for_url("**/console/sign-in?next=*")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("The username or password is wrong.")
    shot(page, "sign-in")
    assert console.platform.admin_password is not None
    page.get_by_label("Password").fill(console.platform.admin_password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    # Back where the browser was going before it had to sign in.
    page.wait_for_url(f"**/console/projects/{PROJECT}/inbox")
    cookie = next(c for c in context.cookies() if c["name"] == "ofn_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"
    page.goto(console.url("/console/projects"))
    expect(page.get_by_role("link", name=PROJECT)).to_be_visible()
    shot(page, "projects")
    context.close()


def test_an_empty_inbox_shows_a_curl_command_that_posts_to_it(
    console: Console, admin: Page
) -> None:
    admin.goto(console.url(f"/console/projects/{PROJECT}/inbox"))
    expect(admin.get_by_role("heading", name="No messages yet")).to_be_visible()
    shot(admin, "inbox-empty")
    # The server pushes changes, so the page does not poll while it waits.
    expect(admin.locator("html")).to_have_attribute("data-updates", "push")
    admin.evaluate("window.notReloaded = true")
    command = admin.locator("#curl-example").inner_text()
    assert console.inbox_url in command
    command = command.replace('"Amina"}}', '"Amina"}, "facility": "kisumu-east"}')
    subprocess.run(["bash", "-c", command], check=True, capture_output=True)

    # The message and both job states arrive without a reload.
    row = admin.locator("[data-live=inbox] tbody tr").first
    expect(row.locator(".job-state", has_text="register-referral")).to_contain_text(
        "success"
    )
    expect(row.locator(".job-state", has_text="notify-facility")).to_contain_text(
        "failure"
    )
    assert admin.evaluate("window.notReloaded") is True
    shot(admin, "inbox")


def set_visibility(page: Page, state: str) -> None:
    """Tell the page its tab was hidden or shown, as the browser would."""
    page.evaluate(
        """state => {
            Object.defineProperty(document, "visibilityState", {
                value: state, configurable: true,
            });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def test_a_hidden_tab_lets_its_stream_go_and_takes_it_again_when_shown(
    admin: Page,
) -> None:
    page = admin.locator("html")
    expect(page).to_have_attribute("data-updates", "push")

    set_visibility(admin, "hidden")
    expect(page).to_have_attribute("data-updates", "paused")
    set_visibility(admin, "visible")
    expect(page).to_have_attribute("data-updates", "push")


def test_times_show_in_the_viewers_zone_with_utc_on_hover(admin: Page) -> None:
    received = admin.locator("[data-live=inbox] tbody tr time").first
    expect(received).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+3"))
    assert (received.get_attribute("title") or "").endswith(" UTC")


def test_the_copy_button_copies_the_inbox_url(console: Console, admin: Page) -> None:
    admin.context.grant_permissions(["clipboard-read", "clipboard-write"])
    admin.get_by_role("button", name="Copy the inbox URL").click()
    assert admin.evaluate("navigator.clipboard.readText()") == console.inbox_url


def test_the_inbox_filters_by_words_and_by_day(console: Console, admin: Page) -> None:
    rows = admin.locator("[data-live=inbox] tbody tr")
    search = admin.get_by_label("Search bodies")
    search.fill("kisumu")
    admin.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    assert "q=kisumu" in admin.url
    # Empty fields stay out of the address; the viewer's zone goes in.
    assert "since=" not in admin.url
    assert "tz=Africa%2FNairobi" in admin.url

    search.fill("nakuru")
    admin.get_by_role("button", name="Filter").click()
    expect(admin.get_by_text("No message matches these filters.")).to_be_visible()

    search.fill("")
    tomorrow = admin.evaluate(
        "new Date(Date.now() + 86400000).toLocaleDateString('sv')"
    )
    admin.get_by_label("From").fill(tomorrow)
    admin.get_by_role("button", name="Filter").click()
    expect(admin.get_by_text("No message matches these filters.")).to_be_visible()
    admin.get_by_label("From").fill(
        admin.evaluate("new Date().toLocaleDateString('sv')")
    )
    admin.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    admin.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(1)


def test_the_receipt_shows_the_body_headers_and_every_run(admin: Page) -> None:
    admin.locator("[data-live=inbox] tbody tr a.mono").first.click()
    admin.wait_for_url("**/console/messages/*")
    expect(admin.locator("pre.json")).to_contain_text('"facility": "kisumu-east"')
    expect(admin.locator("table.kv")).to_contain_text("content-type")
    runs = admin.locator("[data-live=receipt] table.list tbody tr")
    expect(runs).to_have_count(2)
    expect(runs.filter(has_text="notify-facility")).to_contain_text("failed")
    expect(runs.filter(has_text="register-referral")).to_contain_text("succeeded")
    shot(admin, "receipt")


def test_a_fixed_job_re_runs_its_failed_run_after_the_ten_second_rule(
    console: Console, admin: Page
) -> None:
    admin.locator("[data-live=receipt] tbody tr", has_text="notify-facility").locator(
        "a.mono"
    ).click()
    admin.wait_for_url("**/console/runs/*")
    failed_url = admin.url
    expect(admin.locator("[data-live=run] .status").first).to_contain_text("failed")
    expect(admin.locator(".error-text")).to_be_visible()
    shot(admin, "run-failed")
    console.deploy(FIXED_JOB)

    button = admin.get_by_role("button", name="Re-run")
    button.click()
    # Within ten seconds of the pair's last run the platform refuses, and
    # says when to ask again.
    refusal = admin.locator("[data-problem]")
    expect(refusal).to_contain_text("try again in", timeout=5000)
    wait = re.search(r"try again in (\d+) s", refusal.inner_text())
    assert wait is not None
    time.sleep(int(wait.group(1)))
    button.click()
    admin.wait_for_url(lambda url: "/console/runs/" in url and url != failed_url)
    expect(admin.locator("[data-live=run] .status").first).to_contain_text("succeeded")
    expect(admin.locator("ol.log")).to_contain_text("facility notified")
    shot(admin, "run")

    admin.get_by_role("link", name="Inbox", exact=True).click()
    row = admin.locator("[data-live=inbox] tbody tr").first
    expect(row.locator(".job-state", has_text="notify-facility")).to_contain_text(
        "success"
    )


def test_selected_runs_re_run_from_the_activity_history(
    console: Console, admin: Page
) -> None:
    admin.goto(
        console.url(f"/console/projects/{PROJECT}/history?job=register-referral")
    )
    rows = admin.locator("[data-live=history] tbody tr")
    expect(rows).to_have_count(1)
    admin.evaluate("window.notReloaded = true")
    rows.first.get_by_role("checkbox").check()
    expect(admin.locator("[data-selected-count]")).to_have_text("1 run selected.")
    admin.get_by_role("button", name="Re-run selected").click()
    expect(admin.locator("[data-bulk-result]")).to_have_text("1 re-run started.")
    # The new run appears in the list by itself.
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("rerun")
    expect(rows.first.locator(".status")).to_contain_text("succeeded")
    assert admin.evaluate("window.notReloaded") is True
    admin.goto(console.url(f"/console/projects/{PROJECT}/history"))
    expect(admin.locator("[data-live=history] tbody tr")).to_have_count(4)
    shot(admin, "history")
    with admin.expect_download() as download:
        admin.get_by_role("link", name="Export CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("run_id,job,trigger")
    assert len(lines) == 1 + 4


def test_a_job_is_disabled_and_enabled_from_its_page(
    console: Console, admin: Page
) -> None:
    admin.goto(console.url(f"/console/projects/{PROJECT}/jobs"))
    card = admin.locator("#job-notify-facility")
    expect(card.locator("pre.code .ln")).to_have_count(2)
    expect(card).to_contain_text("common")
    card.get_by_role("button", name="Disable").click()
    expect(card.locator(".status").first).to_have_text("○ disabled")
    card.get_by_role("button", name="Enable").click()
    expect(card.locator(".status").first).to_have_text("● enabled")
    shot(admin, "jobs")


def test_a_credential_is_set_and_replaced_but_never_shown(
    console: Console, admin: Page
) -> None:
    admin.goto(console.url(f"/console/projects/{PROJECT}/credentials"))
    admin.get_by_label("Name").fill("dhis2")
    admin.get_by_label("Values, as JSON").fill(
        '{"username": "clinic", "password": "first-secret-value"}'
    )
    admin.get_by_role("button", name="Save credential").click()
    card = admin.locator(".card", has=admin.get_by_role("heading", name="dhis2"))
    expect(card.get_by_label("password")).to_be_visible()
    card.get_by_label("username").fill("clinic")
    card.get_by_label("password").fill("second-secret-value")
    with admin.expect_navigation():
        # The page reloads once the values are stored.
        card.get_by_role("button", name="Replace values").click()
    expect(card).to_contain_text("by admin")
    html = admin.content()
    assert "first-secret-value" not in html
    assert "second-secret-value" not in html
    shot(admin, "credentials")


def test_collaborators_are_added_with_a_role(console: Console, admin: Page) -> None:
    make_user(console, "grace", None)
    admin.goto(console.url(f"/console/projects/{PROJECT}/collaborators"))
    form = admin.locator("form", has=admin.get_by_label("Username"))
    form.get_by_label("Username").fill("grace")
    form.get_by_label("Role").select_option("editor")
    form.get_by_role("button", name="Add").click()
    row = admin.locator("tbody tr", has_text="grace")
    expect(row.get_by_label("Role of grace")).to_have_value("editor")
    shot(admin, "collaborators")


def test_a_viewer_sees_no_editor_action_and_cannot_take_one(
    console: Console, admin: Page
) -> None:
    make_user(console, "vera", "viewer")
    page = console.sign_in("vera", PASSWORD)
    try:
        page.goto(console.url(f"/console/projects/{PROJECT}/history"))
        expect(page.locator("[data-live=history] tbody tr").first).to_be_visible()
        assert page.get_by_role("button", name="Re-run selected").count() == 0
        assert page.get_by_role("checkbox").count() == 0
        assert page.get_by_role("link", name="Credentials").count() == 0
        page.locator("[data-live=history] tbody tr a.mono").first.click()
        page.wait_for_url("**/console/runs/*")
        assert page.get_by_role("button", name="Re-run").count() == 0
        # Calling the API from the page, as a forged button would, is refused.
        run_id = page.url.rsplit("/", 1)[1]
        status = page.evaluate(
            """async (id) => (await fetch(`/api/runs/${id}/rerun`, {
                method: "POST",
                headers: {"x-csrf-token":
                    document.querySelector('meta[name="csrf-token"]').content},
            })).status""",
            run_id,
        )
        assert status == 403
        page.goto(console.url(f"/console/projects/{PROJECT}/jobs"))
        assert page.get_by_role("button", name="Disable").count() == 0
        page.goto(console.url(f"/console/projects/{PROJECT}/credentials"))
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    finally:
        page.context.close()


def test_an_outsider_sees_no_trace_of_the_project(
    console: Console, admin: Page
) -> None:
    admin.goto(console.url(f"/console/projects/{PROJECT}/history"))
    run_link = admin.locator("[data-live=history] tbody tr a.mono").first
    run_path = run_link.get_attribute("href")
    make_user(console, "otto", None)
    page = console.sign_in("otto", PASSWORD)
    try:
        expect(page.get_by_text("You are not in any project yet.")).to_be_visible()

        def refusal(path: str, name: str) -> str:
            page.goto(console.url(path))
            expect(page.get_by_role("heading", name="Not found")).to_be_visible()
            return page.locator("main").inner_text().replace(name, "…")

        # Each page of the project reads exactly as for one that does not exist.
        for tab in ("inbox", "history", "jobs"):
            assert refusal(f"/console/projects/{PROJECT}/{tab}", PROJECT) == refusal(
                f"/console/projects/no-such-project/{tab}", "no-such-project"
            )
        run_id = str(run_path).rsplit("/", 1)[1]
        missing_id = str(uuid.uuid4())
        assert refusal(str(run_path), run_id) == refusal(
            f"/console/runs/{missing_id}", missing_id
        )
    finally:
        page.context.close()


def test_the_inbox_reads_well_on_a_phone(console: Console) -> None:
    assert console.platform.admin_password is not None
    page = console.sign_in(
        "admin",
        console.platform.admin_password,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(console.url(f"/console/projects/{PROJECT}/inbox"))
        expect(page.locator("[data-live=inbox] tbody tr").first).to_be_visible()
        overflow = page.evaluate(
            "document.scrollingElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        shot(page, "inbox-phone")
    finally:
        page.context.close()


def test_an_api_token_is_issued_once_and_revoked_on_the_account_page(
    console: Console, admin: Page
) -> None:
    admin.goto(console.url("/console/account"))
    admin.get_by_label("What the new token is for").fill("reports")
    admin.get_by_role("button", name="Issue a token").click()
    issued = admin.locator("[data-revealed]")
    expect(issued).to_have_text(re.compile(r"^ofn_[0-9a-f]{12}_\S+$"))
    token = issued.inner_text()
    assert admin.title() == "Your account · openfn-stream"
    shot(admin, "account")

    def me() -> int:
        answer = httpx.get(
            console.url("/api/me"),
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )
        return answer.status_code

    assert me() == 200
    admin.get_by_role("link", name="Done").click()
    row = admin.locator("tbody tr", has_text="reports")
    expect(row).to_contain_text(token[: len("ofn_") + 12])
    assert token not in admin.content()
    admin.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(admin.locator("tbody tr", has_text="reports")).to_have_count(0)
    assert me() == 401


def test_a_password_changed_on_the_account_page_ends_the_session(
    console: Console,
) -> None:
    make_user(console, "ama", None)
    page = console.sign_in("ama", PASSWORD)
    try:
        page.get_by_role("link", name="ama").click()
        page.get_by_label("Current password").fill("not the password")
        page.get_by_label("New password").fill("a brand new passphrase")
        page.get_by_role("button", name="Save password").click()
        expect(page.get_by_role("alert")).to_contain_text("current password")
        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_role("button", name="Save password").click()
        page.wait_for_url("**/console/sign-in")
        page.goto(console.url("/console/projects"))
        page.wait_for_url("**/console/sign-in?next=*")
    finally:
        page.context.close()
    console.sign_in("ama", "a brand new passphrase").context.close()


WITH_SMS_JOB = FIXED_JOB.replace(
    "triggers:",
    """  send-sms:
    trigger: referral-received
    adaptor: common
    retries: 1
    expression: |
      fn(lambda state: {**state, "sent": state["data"]["phone"]})
triggers:""",
)
FIXED_SMS_JOB = WITH_SMS_JOB.replace(
    'state["data"]["phone"]', 'state["data"].get("phone", "none")'
)


def press_until_accepted(page: Page, button: Locator) -> None:
    """Press, and if the ten-second rule refuses, wait as told and press again."""
    start = page.url
    button.click()
    refusal = page.locator("[data-problem]:visible")
    try:
        page.wait_for_url(lambda url: url != start, timeout=3000)
        return
    except PlaywrightTimeoutError:
        wait = re.search(r"try again in (\d+) s", refusal.first.inner_text())
        assert wait is not None, refusal.first.inner_text()
    time.sleep(int(wait.group(1)))
    button.click()
    page.wait_for_url(lambda url: url != start)


def test_a_dead_letter_is_redriven_after_its_job_is_fixed(
    console: Console, admin: Page
) -> None:
    console.deploy(WITH_SMS_JOB)
    admin.goto(console.url(f"/console/projects/{PROJECT}/dead-letters"))
    expect(admin.get_by_text("No dead letters waiting.")).to_be_visible()
    posted = httpx.post(
        console.inbox_url,
        json={"form": "referral", "patient": {"name": "Baraka"}, "facility": "x"},
        timeout=10,
    )
    assert posted.status_code == 202
    # Two attempts, then the run appears here by itself.
    row = admin.locator("[data-live=dead-letters] tbody tr", has_text="send-sms")
    expect(row).to_contain_text("KeyError")
    expect(row.locator("td[data-label=Attempts]")).to_have_text("2")
    shot(admin, "dead-letters")
    console.deploy(FIXED_SMS_JOB)
    press_until_accepted(admin, row.get_by_role("button", name="Redrive"))
    expect(admin.locator("[data-live=run] .status").first).to_contain_text("succeeded")


def test_an_inbox_protected_on_its_access_page_refuses_messages_without_the_key(
    console: Console, admin: Page
) -> None:
    admin.goto(console.url(f"/console/projects/{PROJECT}/inbox-access"))
    expect(admin.get_by_text("Anyone who knows the inbox URL")).to_be_visible()
    admin.get_by_label("Kind").select_option("api_key")
    admin.get_by_label("Name (for Basic").fill("commcare")
    admin.get_by_role("button", name="Create").click()
    secret = admin.locator("[data-revealed]")
    expect(secret).not_to_be_empty()
    key = secret.inner_text()
    shot(admin, "inbox-access")
    admin.get_by_role("link", name="Done").click()
    expect(admin.get_by_text("The inbox accepts only messages")).to_be_visible()
    assert key not in admin.content()
    body = {"form": "survey"}

    def post(**headers: str) -> int:
        return httpx.post(
            console.inbox_url, json=body, headers=headers, timeout=10
        ).status_code

    # The gateway picks the new credential up within moments.
    deadline = time.monotonic() + 15
    while post() != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert post() == 401
    assert post(**{"x-api-key": key}) == 202

    admin.once("dialog", lambda dialog: dialog.accept())
    admin.locator("tbody tr", has_text="commcare").get_by_role(
        "button", name="Revoke"
    ).click()
    expect(admin.get_by_text("Anyone who knows the inbox URL")).to_be_visible()


def test_the_audit_log_shows_who_changed_what(console: Console, admin: Page) -> None:
    admin.goto(console.url(f"/console/projects/{PROJECT}/audit"))
    events = admin.locator("tbody tr")
    expect(events.filter(has_text="dead_letter.redriven")).to_have_count(1)
    expect(events.filter(has_text="credential.written").first).to_contain_text("admin")
    expect(events.filter(has_text="project.deployed").first).to_be_visible()
    shot(admin, "audit")


def test_an_admin_aborts_a_run_from_its_page_and_sees_it_end(
    console: Console, admin: Page
) -> None:
    path = console.tmp / "overnight.yaml"
    path.write_text(OVERNIGHT)
    console.platform.deploy(path, "overnight")
    started = httpx.post(
        console.url("/api/projects/overnight/jobs/long-sync/run"),
        headers=console.platform.auth_headers(),
        timeout=10,
    )
    assert started.status_code == 202
    admin.goto(console.url(f"/console/runs/{started.json()['run_id']}?requested=true"))

    abort = admin.get_by_role("button", name="Abort run")
    expect(abort).to_be_visible()
    admin.once("dialog", lambda dialog: dialog.accept())
    abort.click()

    expect(admin.locator("[data-live=run] .status").first).to_contain_text("aborted")
    expect(admin.locator(".error-text")).to_contain_text("aborted by admin")
    expect(admin.locator("ol.log")).to_contain_text("syncing")
    expect(abort).to_have_count(0)
