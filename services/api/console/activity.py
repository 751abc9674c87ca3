"""Pushing "this project changed" to open console pages.

The recorder and the dispatcher notify ``ACTIVITY_CHANNEL`` with a project's
id when they commit its messages, runs or dead letters. One thread of the API
listens there and wakes the event streams of that project's open pages; each
page then fetches itself again. A page costs no database query until its
project changes, however long it stays open.

A stream says ``ready`` once the feed listens, so a page that fetches itself
then misses no change. It ends after ``lifetime_s`` (the browser reconnects at
once, and the reconnection checks the session and role again) and when the API
shuts down. When the listening connection is made again after a loss, every
stream gets a change, since anything may have changed meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from enum import Enum
from uuid import UUID

import psycopg

from shared.db.connection import ACTIVITY_CHANNEL, connect
from shared.logging import get_logger

log = get_logger(__name__)

RECONNECT_S = 2.0
KEEPALIVE_S = 15.0
"""Well under the minute after which proxies commonly close a quiet connection."""
LIFETIME_S = 300.0


class Signal(Enum):
    CHANGED = "changed"
    CLOSED = "closed"


class ActivityFeed:
    """Wakes the open pages of a project when the project changes."""

    def __init__(
        self, database_url: str, keepalive_s: float, lifetime_s: float
    ) -> None:
        self._url = database_url
        self._keepalive_s = keepalive_s
        self._lifetime_s = lifetime_s
        self._streams: defaultdict[UUID, set[asyncio.Queue[Signal]]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening = asyncio.Event()
        self._closed = False
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    async def stream(self, project_id: UUID) -> AsyncIterator[str]:
        """Server-sent events for one page: ``change`` whenever the project
        changes, a comment every ``keepalive_s`` to keep proxies from closing
        the connection, until ``lifetime_s`` has passed or the feed closes."""
        if self._closed:
            return
        self._start(asyncio.get_running_loop())
        queue: asyncio.Queue[Signal] = asyncio.Queue(maxsize=1)
        self._streams[project_id].add(queue)
        try:
            while not self._listening.is_set():
                try:
                    await asyncio.wait_for(self._listening.wait(), self._keepalive_s)
                except TimeoutError:
                    yield ": waiting for the database\n\n"
            if self._closed:
                return
            # Reconnect at once after an ending; this first event says "go".
            yield "retry: 1000\nevent: ready\ndata: \n\n"
            deadline = asyncio.get_running_loop().time() + self._lifetime_s
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    signal = await asyncio.wait_for(
                        queue.get(), min(self._keepalive_s, left)
                    )
                except TimeoutError:
                    if left > self._keepalive_s:  # not yet the end: keep alive
                        yield ": keep-alive\n\n"
                    continue
                if signal is Signal.CLOSED:
                    return
                yield "event: change\ndata: \n\n"
        finally:
            self._streams[project_id].discard(queue)
            if not self._streams[project_id]:
                del self._streams[project_id]

    def close(self) -> None:
        """End every stream and stop listening; safe from a signal handler."""
        self._closed = True
        self._stop.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._listening.set)
            self._loop.call_soon_threadsafe(self._signal_all, Signal.CLOSED)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Listen from the first stream on, on a thread of the feed's own."""
        with self._start_lock:
            if self._thread is not None:
                return
            self._loop = loop
            self._thread = threading.Thread(
                target=self._listen_forever, name="activity-feed", daemon=True
            )
            self._thread.start()

    def _listen_forever(self) -> None:
        lost = False
        while not self._stop.is_set():
            try:
                with connect(self._url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {ACTIVITY_CHANNEL}")
                    self._post(self._listening.set)
                    if lost:
                        # Whatever happened meanwhile: every page looks again.
                        self._post(self._signal_all, Signal.CHANGED)
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=1.0):
                            self._wake(notice.payload)
            except psycopg.Error as exc:
                lost = True
                self._post(self._listening.clear)
                log.warning("activity_feed.connection_lost", error=str(exc))
                self._stop.wait(RECONNECT_S)

    def _wake(self, payload: str) -> None:
        try:
            project_id = UUID(payload)
        except ValueError:
            log.warning("activity_feed.bad_payload", payload=payload[:100])
            return
        self._post(self._signal, project_id, Signal.CHANGED)

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        """Have the event loop call ``callback``; stop once the loop is gone."""
        assert self._loop is not None  # set before the thread starts
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is left to wake
            self._stop.set()

    def _signal_all(self, signal: Signal) -> None:
        for project_id in list(self._streams):
            self._signal(project_id, signal)

    def _signal(self, project_id: UUID, signal: Signal) -> None:
        """Put ``signal`` in each of the project's queues; one waiting change is
        as good as many, and a close replaces a change."""
        for queue in self._streams.get(project_id, ()):
            if queue.full():
                if signal is Signal.CHANGED:
                    continue
                queue.get_nowait()
            queue.put_nowait(signal)
