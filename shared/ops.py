"""The operations port every service opens: ``/metrics``, ``/healthz``, ``/readyz``.

Liveness says the service's own loop is turning; readiness says it can do its
work now (it has joined its consumer group, or is serving, and its
dependencies answer). Kubernetes restarts a service that is not alive and
sends no traffic to one that is not ready.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import Field

from shared.logging import get_logger
from shared.settings import BaseServiceSettings

log = get_logger(__name__)

Check = Callable[[], bool]


class OpsSettings(BaseServiceSettings):
    """Where the operations port listens."""

    ops_host: str = "0.0.0.0"  # noqa: S104 - probes and scrapes come from outside the pod
    ops_port: int = Field(default=9000, ge=0, le=65535)


class OpsServer:
    """Serves metrics and health checks from a daemon thread."""

    def __init__(self, settings: OpsSettings, is_alive: Check, is_ready: Check) -> None:
        checks = {"/healthz": is_alive, "/readyz": is_ready}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
                elif path in checks:
                    ok = _safely(checks[path])
                    body = b'{"status": "ok"}' if ok else b'{"status": "failing"}'
                    self._answer(200 if ok else 503, body, "application/json")
                else:
                    self._answer(404, b'{"code": "not_found"}', "application/json")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Probes every few seconds are not worth a log line each."""

        self._server = ThreadingHTTPServer(
            (settings.ops_host, settings.ops_port), Handler
        )
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ops", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> OpsServer:
        self._thread.start()
        log.info("ops.listening", port=self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _safely(check: Check) -> bool:
    try:
        return check()
    except Exception:
        log.warning("ops.check_failed", exc_info=True)
        return False
