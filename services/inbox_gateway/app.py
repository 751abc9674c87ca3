"""HTTP routes of the gateway: ``POST /inbox/{inbox_id}``, health and readiness.

A message is answered ``202`` only after the broker has acknowledged it with
``acks=all``; when it does not within the deadline the sender gets ``503``
and ``Retry-After`` and may send again. An inbox with credentials answers
``401`` to a request without any and ``404``, as if it did not exist, to one
whose credentials are wrong or replayed; ``503`` to a signed request while a
signing secret that might verify it cannot be opened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import uuid_utils
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from services.inbox_gateway import metrics
from services.inbox_gateway.replays import ReplayGuard
from services.inbox_gateway.settings import GatewaySettings
from shared.bodies import body_kind, parse_body
from shared.catalog import ProjectCatalog
from shared.errors import (
    BrokerUnavailableError,
    InvalidBodyError,
    UnsupportedContentTypeError,
)
from shared.events import Message
from shared.inbox_auth import (
    ACCEPTED,
    InboxAuth,
    SignedRequest,
    Verdict,
    Verification,
    verify_request,
)
from shared.kafka import AsyncProducer, Record
from shared.logging import get_logger
from shared.model import Project
from shared.topics import Topics

log = get_logger(__name__)

# Bodies larger than this are parsed, and their signatures checked, off the
# event loop.
_INLINE_PARSE_BYTES = 64 * 1024
_CATALOG_MISS_INTERVAL_S = 1.0
_READY_CACHE_S = 1.0

_OUTCOMES = {
    202: "accepted",
    400: "invalid_body",
    401: "unauthenticated",
    404: "not_found",
    413: "too_large",
    415: "unsupported_type",
    503: "unavailable",
}


def error(status: int, code: str, message: str, **ids: Any) -> JSONResponse:
    """The one error shape of the platform's HTTP answers."""
    return JSONResponse({"code": code, "message": message, **ids}, status_code=status)


def inbox_not_found(inbox_id: str) -> JSONResponse:
    """The answer for an unknown inbox, and for wrong credentials to a known one."""
    return error(404, "inbox_not_found", "no inbox has this id", inbox_id=inbox_id)


def unauthenticated(auth: InboxAuth, inbox_id: str) -> JSONResponse:
    response = error(
        401,
        "unauthenticated",
        "this inbox needs an x-api-key, HTTP Basic or a webhook signature",
        inbox_id=inbox_id,
    )
    if auth.basic_logins:
        response.headers["WWW-Authenticate"] = 'Basic realm="inbox"'
    return response


def unavailable(
    settings: GatewaySettings, inbox_id: str, code: str, message: str
) -> JSONResponse:
    response = error(503, code, message, inbox_id=inbox_id)
    response.headers["Retry-After"] = str(settings.inbox_retry_after_s)
    return response


class Gateway:
    """The gateway's state: its settings, the project catalog, a producer and
    the webhook ids seen."""

    def __init__(
        self,
        settings: GatewaySettings,
        catalog: ProjectCatalog,
        producer: AsyncProducer,
        replays: ReplayGuard,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.producer = producer
        self.replays = replays
        self.topics = Topics.with_prefix(settings.topic_prefix)
        self._ready_at = 0.0

    async def find_project(self, inbox_id: UUID) -> Project | None:
        project = self.catalog.project_for_inbox(inbox_id)
        if project is None:
            # Deployed a moment ago? Look once more, at most once a second.
            await asyncio.to_thread(self.catalog.reload, _CATALOG_MISS_INTERVAL_S)
            project = self.catalog.project_for_inbox(inbox_id)
        return project

    async def authenticate(
        self, auth: InboxAuth, request: Request, raw: bytes
    ) -> Verification:
        """Check the request's credentials, in memory (replays are not checked)."""
        args = (
            auth,
            request.headers,
            raw,
            time.time(),
            self.settings.inbox_hmac_tolerance_s,
        )
        if auth.hmac_keys and len(raw) > _INLINE_PARSE_BYTES:
            return await asyncio.to_thread(verify_request, *args)
        return verify_request(*args)

    def kept_headers(self, request: Request) -> dict[str, str]:
        dropped = self.settings.inbox_dropped_headers
        return {k: v for k, v in request.headers.items() if k not in dropped}

    def is_ready_now(self) -> bool:
        """Readiness, checked from a thread other than the event loop's."""
        return self.catalog.is_loaded and self.producer.is_connected()

    async def is_ready(self) -> bool:
        if time.monotonic() - self._ready_at < _READY_CACHE_S:
            return True
        ready = await asyncio.to_thread(self.is_ready_now)
        if ready:
            self._ready_at = time.monotonic()
        return ready


async def read_capped(request: Request, limit_bytes: int) -> bytes | None:
    """The request body, or None as soon as it is longer than ``limit_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(gateway: Gateway) -> FastAPI:
    """The gateway's ASGI application."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(gateway.producer.close)
        await asyncio.to_thread(gateway.replays.close)
        gateway.catalog.stop()

    app = FastAPI(
        title="Inbox gateway",
        summary="Receives messages for projects' inboxes.",
        version="1",
        lifespan=lifespan,
    )

    @app.post(
        "/inbox/{inbox_id}",
        status_code=202,
        responses={
            202: {"description": "The message is durably stored."},
            400: {"description": "The body does not parse as its content type."},
            401: {"description": "The inbox needs credentials; none were sent."},
            404: {
                "description": "No inbox has this id, or the credentials sent"
                " for it are wrong, revoked, stale or replayed."
            },
            413: {"description": "The body is over the size limit."},
            415: {"description": "The content type is not accepted."},
            503: {
                "description": "The message could not be stored, or its"
                " signature checked; retry later."
            },
        },
    )
    async def receive(inbox_id: str, request: Request) -> Response:
        """Receive a JSON, XML or form message for a project's inbox."""
        started = time.perf_counter()
        response = await receive_message(gateway, inbox_id, request)
        outcome = _OUTCOMES.get(response.status_code, "error")
        metrics.REQUESTS.labels(outcome).inc()
        metrics.REQUEST_DURATION.labels(outcome).observe(time.perf_counter() - started)
        return response

    # Senders often add a trailing slash; a redirect would make them post twice.
    app.add_api_route(
        "/inbox/{inbox_id}/",
        receive,
        methods=["POST"],
        status_code=202,
        include_in_schema=False,
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive and serving."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        """The gateway knows its projects and the broker answers."""
        if await gateway.is_ready():
            return JSONResponse({"status": "ready"})
        return error(503, "not_ready", "the catalog or the broker is not reachable yet")

    return app


async def answer_repeat(
    gateway: Gateway,
    project: Project,
    signed: SignedRequest,
    inbox_id: str,
    message_id: UUID,
) -> Response | None:
    """The answer to a signed request whose webhook id was seen before, or to
    one that cannot be checked; None for a first sighting, now recorded.

    A repeat is answered as its first delivery was, ``202`` with that message's
    id, once that message is stored; while it is being stored, ``503``.
    """
    try:
        sighting = await gateway.replays.remember(
            project.id, signed.webhook_id, signed.replayable_until_s, message_id
        )
    except psycopg.Error as exc:
        log.warning(
            "inbox.replays_unavailable", project_id=str(project.id), error=str(exc)
        )
        return unavailable(
            gateway.settings,
            inbox_id,
            "replays_unavailable",
            "the signature could not be checked; send it again later",
        )
    if sighting.first:
        return None
    if sighting.stored and sighting.message_id is not None:
        log.info(
            "message.repeated",
            message_id=str(sighting.message_id),
            project_id=str(project.id),
            webhook_id=signed.webhook_id,
        )
        return JSONResponse({"message_id": str(sighting.message_id)}, status_code=202)
    return unavailable(
        gateway.settings,
        inbox_id,
        "first_delivery_in_progress",
        "a message with this webhook-id is being stored; send it again later",
    )


async def receive_message(
    gateway: Gateway, inbox_id: str, request: Request
) -> Response:
    """Check, parse and durably write one message."""
    settings = gateway.settings
    try:
        inbox = UUID(inbox_id)
    except ValueError:
        return inbox_not_found(inbox_id)
    raw = await read_capped(request, settings.inbox_max_body_bytes)
    if raw is None:
        return error(
            413,
            "body_too_large",
            f"the body is over the limit of {settings.inbox_max_body_bytes} bytes",
            inbox_id=inbox_id,
        )
    content_type = request.headers.get("content-type", "")
    try:
        kind = body_kind(content_type)
    except UnsupportedContentTypeError as exc:
        return error(415, "unsupported_content_type", str(exc), inbox_id=inbox_id)
    project = await gateway.find_project(inbox)
    if project is None:
        return inbox_not_found(inbox_id)
    auth = gateway.catalog.inbox_auth(project.id)
    verification = ACCEPTED
    if auth is not None:
        verification = await gateway.authenticate(auth, request, raw)
        if verification.verdict is Verdict.MISSING:
            return unauthenticated(auth, inbox_id)
        if verification.verdict is Verdict.REFUSED:
            return inbox_not_found(inbox_id)
        if verification.verdict is Verdict.UNCHECKED:
            return unavailable(
                settings,
                inbox_id,
                "inbox_auth_unavailable",
                "the signature could not be checked; send it again later",
            )
    try:
        if len(raw) > _INLINE_PARSE_BYTES:
            await asyncio.to_thread(parse_body, kind, raw)
        else:
            parse_body(kind, raw)
    except InvalidBodyError as exc:
        return error(400, "invalid_body", str(exc), inbox_id=inbox_id)
    message_id = UUID(bytes=uuid_utils.uuid7().bytes)
    if verification.signed is not None:
        repeat = await answer_repeat(
            gateway, project, verification.signed, inbox_id, message_id
        )
        if repeat is not None:
            return repeat

    message = Message(
        id=message_id,
        project_id=project.id,
        received_at=datetime.now(UTC),
        content_type=content_type,
        headers=gateway.kept_headers(request),
        body=raw,
        revision=gateway.catalog.snapshot.revision,
    )
    record = Record(
        topic=gateway.topics.messages,
        key=project.id.bytes,
        value=raw,
        headers=message.to_kafka_headers(),
    )
    produce_started = time.perf_counter()
    try:
        await gateway.producer.produce(record, settings.inbox_ack_timeout_s)
    except BrokerUnavailableError as exc:
        log.warning("message.not_stored", project_id=str(project.id), error=str(exc))
        if verification.signed is not None:
            # The sender will retry with the same webhook id; let it through.
            await gateway.replays.forget(project.id, verification.signed.webhook_id)
        return unavailable(
            settings,
            inbox_id,
            "broker_unavailable",
            "the message could not be stored; send it again later",
        )
    metrics.PRODUCE_DURATION.observe(time.perf_counter() - produce_started)
    metrics.ACCEPTED_BYTES.inc(len(raw))
    if verification.signed is not None:
        await gateway.replays.stored(project.id, verification.signed.webhook_id)
    log.info(
        "message.accepted",
        message_id=str(message.id),
        project_id=str(project.id),
        bytes=len(raw),
        kind=kind.value,
    )
    return JSONResponse({"message_id": str(message.id)}, status_code=202)
