"""The API's error answers: one shape, ``{code, message, ...ids}``, raised as
HTTPException and written by the application's handler."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import HTTPException

from services.api.reruns import GateClosedError, RunNotPossibleError, whole_seconds


class NotFoundError(HTTPException):
    """A 404 naming what was looked for."""

    def __init__(self, what: str, ident: object) -> None:
        super().__init__(
            404, detail={"code": f"{what}_not_found", "message": f"no {what} {ident}"}
        )


def api_error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **ids: Any,
) -> HTTPException:
    """An error answer with the ids it concerns beside ``code`` and ``message``."""
    return HTTPException(
        status, {"code": code, "message": message, **ids}, headers=headers
    )


def rerun_refusal(
    exc: RunNotPossibleError | GateClosedError, run_id: UUID
) -> HTTPException:
    """The answer to a re-run (or redrive) the platform will not start now."""
    if isinstance(exc, RunNotPossibleError):
        return api_error(409, exc.code, exc.message, run_id=str(run_id))
    wait_s = whole_seconds(exc.retry_after_s)
    return api_error(
        429,
        "too_many_runs",
        str(exc),
        headers={"Retry-After": str(wait_s)},
        run_id=str(run_id),
        retry_after_s=wait_s,
    )
