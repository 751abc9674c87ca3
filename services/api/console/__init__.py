"""The console: the platform's pages in a browser, served by the API.

Pages are rendered on the server; one small script (``static/console.js``)
shows times in the viewer's zone, refreshes live parts of a page when the
server says its project changed (``activity``), and sends the page's actions
to the JSON API. There is no front-end build.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from psycopg import Connection
from psycopg_pool import ConnectionPool

from services.api.console.activity import KEEPALIVE_S, LIFETIME_S, ActivityFeed
from services.api.console.pages import SignInRequiredError, console_routes
from services.api.console.render import STATIC, render
from services.api.console.signin import SIGN_IN_PATH, sign_in_routes
from services.api.sessions import SessionPolicy
from services.api.settings import ApiSettings

CONSOLE_PREFIX = "/console"

_TITLES = {
    403: "Not allowed",
    404: "Not found",
    422: "That request cannot be shown",
}


def session_policy(settings: ApiSettings) -> SessionPolicy:
    """How long console sessions last and whether cookies need TLS."""
    return SessionPolicy(
        idle=timedelta(seconds=settings.console_session_idle_s),
        lifetime=timedelta(seconds=settings.console_session_lifetime_s),
        secure_cookie=settings.console_secure_cookies,
    )


def install_console(
    app: FastAPI, settings: ApiSettings, pool: ConnectionPool[Connection[Any]]
) -> None:
    """Serve the console's pages and files from ``app``."""
    policy = session_policy(settings)
    app.state.sessions = policy
    app.state.console_refresh_ms = round(settings.console_refresh_s * 1000)
    feed = ActivityFeed(
        settings.database_url.get_secret_value(), KEEPALIVE_S, LIFETIME_S
    )
    app.state.activity = feed

    @app.exception_handler(SignInRequiredError)
    async def sign_in_first(_request: Request, exc: SignInRequiredError) -> Response:
        return RedirectResponse(
            f"{SIGN_IN_PATH}?{urlencode({'next': exc.next_url})}", 303
        )

    app.include_router(sign_in_routes(pool, policy))
    app.include_router(console_routes(settings, pool, policy, feed))
    app.mount(
        f"{CONSOLE_PREFIX}/static",
        _ConsoleFiles(directory=STATIC),
        name="console-static",
    )


class _ConsoleFiles(StaticFiles):
    """The console's script and stylesheet, never sniffed as another type."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["x-content-type-options"] = "nosniff"
        return response


def is_console_page(request: Request) -> bool:
    """Whether a request is for a console page rather than the JSON API."""
    path = request.url.path
    return (
        path == "/" or path == CONSOLE_PREFIX or path.startswith(f"{CONSOLE_PREFIX}/")
    )


def error_page(request: Request, status_code: int, detail: Any) -> Response:
    """A refusal shown as a page, with the API's message in words."""
    message = detail.get("message") if isinstance(detail, dict) else str(detail)
    return render(
        request,
        "error.html",
        status_code,
        title=_TITLES.get(status_code, "Something went wrong"),
        message=message or "",
    )
