"""A run's credential, read from Vault for the run's own project, kept briefly."""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

from shared.vault import VaultClient


class CredentialSource:
    """Reads credentials through a Vault client, caching each for ``ttl_s``."""

    def __init__(self, vault: VaultClient, ttl_s: float) -> None:
        self._vault = vault
        self._ttl_s = ttl_s
        self._cache: dict[tuple[UUID, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, project_id: UUID, name: str) -> dict[str, Any]:
        """The credential ``name`` of ``project_id``; never another project's."""
        key = (project_id, name)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        body = self._vault.read_credential(project_id, name)
        with self._lock:
            self._cache[key] = (now, body)
        return body
