"""Turning templates into console pages: the Jinja environment and its filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

HERE = Path(__file__).parent
STATIC = HERE / "static"

SECURITY_HEADERS = {
    # Scripts and styles come only from the console's own files, never inline,
    # so injected markup cannot run; no other site may frame a page.
    "content-security-policy": "default-src 'self'; script-src 'self';"
    " style-src 'self'; img-src 'self' data:; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

# How each status looks: its CSS class, a sign that tells it apart without
# colour, and its words. Runs have statuses; a message's job has a state.
_STATUS = {
    "succeeded": ("ok", "✓", "succeeded"),
    "success": ("ok", "✓", "success"),
    "failed": ("bad", "✕", "failed"),
    "failure": ("bad", "✕", "failure"),
    "timed_out": ("bad", "⧗", "timed out"),
    "lost": ("bad", "?", "lost"),
    "aborted": ("bad", "⊘", "aborted"),
    "requested": ("busy", "◌", "waiting"),
    "started": ("busy", "●", "running"),
    "in progress": ("busy", "●", "in progress"),
}


def moment(value: datetime | str | None, precise: bool = False) -> Markup:
    """A time the browser shows in its own zone, with UTC on hover.

    ``precise`` keeps milliseconds, as log lines need.
    """
    if value is None:
        return Markup('<span class="muted">—</span>')
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M:%S")
    if precise:
        text += f".{utc.microsecond // 1000:03d}"
    return Markup('<time datetime="{0}" title="{1} UTC"{2}>{1} UTC</time>').format(
        utc.isoformat(), text, Markup(" data-precise") if precise else ""
    )


def status_badge(value: str | None) -> Markup:
    """A run status or job state as a badge: colour, sign and words."""
    if value is None:
        return _badge("none", "none", "○", "none")
    kind, sign, words = _STATUS.get(value, ("none", "•", value))
    return _badge(kind, value, sign, words)


def _badge(kind: str, value: str, sign: str, words: str) -> Markup:
    return Markup(
        '<span class="status status-{0}" data-status="{1}">'
        '<span aria-hidden="true">{2}</span> {3}</span>'
    ).format(kind, value, sign, words)


def pretty(value: Any) -> str:
    """JSON indented for reading."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def duration(start: datetime | None, end: datetime | None) -> str:
    """How long a run took, in the unit that reads best."""
    if start is None or end is None:
        return ""
    seconds = (end - start).total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(
    moment=moment, status=status_badge, pretty=pretty, duration=duration
)


def render(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A console page from ``template``, with the console's security headers."""
    context.setdefault("session", getattr(request.state, "console", None))
    context.setdefault("project", None)
    context.setdefault("role", None)
    context.setdefault("tab", None)
    context.setdefault(
        "refresh_ms", getattr(request.app.state, "console_refresh_ms", 3000)
    )
    html = environment.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
