"""Vault: projects' credentials in its KV engine, and inbox signing secrets
sealed by its transit engine.

Only the Vault HTTP API is used, through hvac. A service logs in with AppRole
(the local stack) or the Kubernetes auth method (a cluster), or uses a token
it is given, and logs in again when its token expires or is revoked.
"""

from __future__ import annotations

import base64
import re
import threading
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import hvac
import requests
from hvac.exceptions import (
    Forbidden,
    InvalidPath,
    InvalidRequest,
    Unauthorized,
    VaultError,
)
from pydantic import Field, SecretStr

from shared.errors import PlatformError
from shared.settings import BaseServiceSettings

_CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class VaultUnavailableError(PlatformError):
    """Vault did not answer, or answered with a server error."""

    retriable = True


class CredentialNotFoundError(PlatformError):
    """The project has no credential of that name."""


class SealRefusedError(PlatformError):
    """Vault would not seal or open a secret: the transit key is missing, the
    service's policy does not allow it, or the ciphertext is not the key's."""


class VaultSettings(BaseServiceSettings):
    """How to reach Vault and log in."""

    vault_addr: str = "http://127.0.0.1:8200"
    vault_auth_method: Literal["approle", "kubernetes", "token"] = "approle"
    vault_role_id: SecretStr | None = None
    vault_secret_id: SecretStr | None = None
    vault_token: SecretStr | None = None
    vault_kubernetes_role: str = "openfn"
    vault_kubernetes_jwt_path: Path = Path(
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )
    vault_kv_mount: str = "secret"
    vault_path_prefix: str = "openfn"
    vault_transit_mount: str = "transit"
    vault_inbox_key: str = "openfn-inbox"
    vault_timeout_s: float = Field(default=5.0, gt=0)
    vault_ca_cert: str | None = None


def credential_path(prefix: str, project_id: UUID, name: str) -> str:
    """The KV path of a project's credential; refuses names that could escape it."""
    if not _CREDENTIAL_NAME.match(name):
        raise CredentialNotFoundError(f"{name!r} is not a valid credential name")
    return f"{prefix}/projects/{project_id}/credentials/{name}"


class VaultClient:
    """A logged-in Vault client for one service, safe to share between threads."""

    def __init__(self, settings: VaultSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._client = hvac.Client(
            url=settings.vault_addr,
            timeout=settings.vault_timeout_s,
            verify=settings.vault_ca_cert or True,
        )

    def read_credential(self, project_id: UUID, name: str) -> dict[str, Any]:
        """The body of a project's credential."""
        path = credential_path(self._settings.vault_path_prefix, project_id, name)
        try:
            response = self._call(
                lambda c: c.secrets.kv.v2.read_secret_version(
                    path=path,
                    mount_point=self._settings.vault_kv_mount,
                    raise_on_deleted_version=True,
                )
            )
        except InvalidPath as exc:
            raise CredentialNotFoundError(
                f"the project has no credential named {name!r}"
            ) from exc
        data: dict[str, Any] = response["data"]["data"]
        return data

    def write_credential(
        self, project_id: UUID, name: str, body: dict[str, Any]
    ) -> None:
        """Create or replace a project's credential."""
        path = credential_path(self._settings.vault_path_prefix, project_id, name)
        self._call(
            lambda c: c.secrets.kv.v2.create_or_update_secret(
                path=path, secret=body, mount_point=self._settings.vault_kv_mount
            )
        )

    def delete_credential(self, project_id: UUID, name: str) -> None:
        """Remove every version of a project's credential; nothing if there is none."""
        path = credential_path(self._settings.vault_path_prefix, project_id, name)
        self._call(
            lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(
                path=path, mount_point=self._settings.vault_kv_mount
            )
        )

    def seal(self, context: bytes, plaintext: bytes) -> str:
        """``plaintext`` encrypted with the inbox key, bound to ``context``:
        the ciphertext opens only with the same context."""
        response = self._transit(
            lambda c: c.secrets.transit.encrypt_data(
                self._settings.vault_inbox_key,
                plaintext=base64.b64encode(plaintext).decode(),
                context=base64.b64encode(context).decode(),
                mount_point=self._settings.vault_transit_mount,
            )
        )
        ciphertext: str = response["data"]["ciphertext"]
        return ciphertext

    def unseal(self, context: bytes, ciphertext: str) -> bytes:
        """The plaintext ``seal`` was given with this ``context``."""
        response = self._transit(
            lambda c: c.secrets.transit.decrypt_data(
                self._settings.vault_inbox_key,
                ciphertext=ciphertext,
                context=base64.b64encode(context).decode(),
                mount_point=self._settings.vault_transit_mount,
            )
        )
        return base64.b64decode(response["data"]["plaintext"])

    def _transit(self, action: Any) -> Any:
        """Run a transit ``action``; a refusal is told apart from an outage."""

        def refused_apart(client: hvac.Client) -> Any:
            try:
                return action(client)
            except InvalidRequest as exc:
                raise SealRefusedError(f"Vault refused: {exc}") from exc

        try:
            return self._call(refused_apart)
        except (Forbidden, Unauthorized, InvalidPath) as exc:
            raise SealRefusedError(f"Vault refused: {exc}") from exc

    def is_reachable(self) -> bool:
        try:
            self._client.sys.read_health_status(method="GET")
        except (requests.RequestException, VaultError):
            return False
        return True

    def _call(self, action: Any) -> Any:
        """Run ``action`` with a valid token; log in again once if it is refused."""
        try:
            with self._lock:
                if not self._client.token:
                    self._login()
            try:
                return action(self._client)
            except (Forbidden, Unauthorized):
                with self._lock:
                    self._login()
                return action(self._client)
        except requests.RequestException as exc:
            raise VaultUnavailableError(f"Vault is not reachable: {exc}") from exc
        except (Forbidden, Unauthorized, InvalidPath):
            raise
        except VaultError as exc:
            raise VaultUnavailableError(f"Vault answered with an error: {exc}") from exc

    def _login(self) -> None:
        settings = self._settings
        if settings.vault_auth_method == "token":
            if settings.vault_token is None:
                raise PlatformError("OPENFN_VAULT_TOKEN is not set")
            self._client.token = settings.vault_token.get_secret_value()
        elif settings.vault_auth_method == "approle":
            if settings.vault_role_id is None or settings.vault_secret_id is None:
                raise PlatformError("OPENFN_VAULT_ROLE_ID and _SECRET_ID are not set")
            self._client.auth.approle.login(
                role_id=settings.vault_role_id.get_secret_value(),
                secret_id=settings.vault_secret_id.get_secret_value(),
            )
        else:
            jwt = settings.vault_kubernetes_jwt_path.read_text().strip()
            self._client.auth.kubernetes.login(
                role=settings.vault_kubernetes_role, jwt=jwt
            )
