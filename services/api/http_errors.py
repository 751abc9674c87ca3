"""The API's error answers: one shape, ``{code, message, ...ids}``, raised as
HTTPException and written by the application's handler."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException


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
