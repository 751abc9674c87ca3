"""The whole platform on one machine: real servers, topics, schema and every service.

``openfn dev`` and the end-to-end tests both use it.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack.kafka import start_broker
from devstack.postgres import remove_data, start_postgres
from devstack.processes import ManagedProcess, StackError, free_port
from devstack.vault import AppRoleLogin, configure_vault, start_vault
from shared.auth import create_token, create_user, find_user, set_password
from shared.db import apply_migrations, connect
from shared.kafka import ensure_topics
from shared.settings import MiB
from shared.topics import Topics

SERVICES = ("inbox_gateway", "api", "dispatcher", "runner", "recorder", "scheduler")
# The Vault role each service that talks to Vault logs in as.
VAULT_ROLES = {
    "api": "openfn-api",
    "runner": "openfn-runner",
    "inbox_gateway": "openfn-gateway",
}
ADMIN_USERNAME = "admin"

# Consumer settings that let groups form and rebalance within seconds.
QUICK_GROUPS = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "fetch.wait.max.ms": 20,
}


@dataclass
class Servers:
    """Addresses of the three servers the services need."""

    kafka_bootstrap: str
    database_url: str
    vault_address: str
    vault_token: str


@dataclass
class LocalStack:
    """Starts and stops the servers and the services; their logs go to ``log_dir``."""

    log_dir: Path
    inbox_port: int = 0
    api_port: int = 0
    topic_prefix: str = "openfn."
    log_format: str = "json"
    extra_env: dict[str, str] = field(default_factory=dict)
    servers: Servers | None = None
    admin_token: str | None = None
    """A site admin's API token, issued by ``prepare``."""
    admin_password: str | None = None
    """The site admin's console password, set afresh by ``prepare``."""
    ops_ports: dict[str, int] = field(default_factory=dict)
    _vault_logins: dict[str, AppRoleLogin] = field(default_factory=dict)
    _processes: list[ManagedProcess] = field(default_factory=list)
    _pg_root: Path | None = None

    @property
    def inbox_url(self) -> str:
        return f"http://127.0.0.1:{self.inbox_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start_servers(self) -> Servers:
        """Start PostgreSQL, the broker and the Vault-API server."""
        postgres, database_url, self._pg_root = start_postgres(self.log_dir)
        self._processes.append(postgres)
        kafka, bootstrap = start_broker(self.log_dir)
        self._processes.append(kafka)
        vault, vault_address, vault_token = start_vault(self.log_dir)
        self._processes.append(vault)
        self.servers = Servers(bootstrap, database_url, vault_address, vault_token)
        return self.servers

    def prepare(self) -> None:
        """Create the topics, bring the schema up to date, set up Vault's logins
        and issue a site admin's API token and console password."""
        servers = self._require_servers()
        self._vault_logins = configure_vault(servers.vault_address, servers.vault_token)
        topics = Topics.with_prefix(self.topic_prefix)
        ensure_topics(
            {"bootstrap.servers": servers.kafka_bootstrap},
            topics.max_message_bytes(8 * MiB, 10 * MiB),
            partitions=3,
            replication_factor=1,
        )
        apply_migrations(servers.database_url)
        self.admin_token, self.admin_password = issue_admin_access(servers.database_url)

    def service_env(self) -> dict[str, str]:
        """The environment every service process starts with."""
        servers = self._require_servers()
        return {
            **os.environ,
            "OPENFN_KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap,
            "OPENFN_KAFKA_CONSUMER_CONFIG": json.dumps(QUICK_GROUPS),
            "OPENFN_DATABASE_URL": servers.database_url,
            "OPENFN_VAULT_ADDR": servers.vault_address,
            "OPENFN_TOPIC_PREFIX": self.topic_prefix,
            "OPENFN_LOG_FORMAT": self.log_format,
            "OPENFN_INBOX_PUBLIC_URL": self.inbox_url,
            "OPENFN_CATALOG_REFRESH_S": "2",
            **self.extra_env,
        }

    def start_services(self, timeout_s: float = 60.0) -> None:
        """Start each service as its own process; wait until the HTTP ones are ready."""
        self.inbox_port = self.inbox_port or free_port()
        self.api_port = self.api_port or free_port()
        for service in SERVICES:
            self.start_service(service)
        self.wait_ready(timeout_s)

    def start_service(self, service: str, name: str | None = None) -> ManagedProcess:
        """Start one more process of ``service``, e.g. a second runner.

        It is stopped with the stack; ``name`` tells its log and operations
        port apart from the first process's.
        """
        name = name or service
        env = self.service_env() | self.service_env_of(service)
        if name != service:
            self.ops_ports[name] = free_port()
            env["OPENFN_OPS_PORT"] = str(self.ops_ports[name])
        process = ManagedProcess(
            name=name,
            argv=[sys.executable, "-m", f"services.{service}"],
            log_path=self.log_dir / f"{name}.log",
            env=env,
        ).start()
        self._processes.append(process)
        return process

    def service_env_of(self, service: str) -> dict[str, str]:
        """What one service needs beyond the common environment."""
        env: dict[str, str] = {}
        ops_port = self.ops_ports.setdefault(service, free_port())
        env["OPENFN_OPS_PORT"] = str(ops_port)
        env["OPENFN_OPS_HOST"] = "127.0.0.1"
        ports = {"inbox_gateway": self.inbox_port, "api": self.api_port}
        if service in ports:
            env["OPENFN_PORT"] = str(ports[service])
            env["OPENFN_HOST"] = "127.0.0.1"
        login = self._vault_logins.get(VAULT_ROLES.get(service, ""))
        if login is not None:
            env["OPENFN_VAULT_ROLE_ID"] = login.role_id
            env["OPENFN_VAULT_SECRET_ID"] = login.secret_id
        return env

    def wait_ready(self, timeout_s: float) -> None:
        """Wait until every service says it is ready on its operations port."""
        deadline = time.monotonic() + timeout_s
        ops = [f"http://127.0.0.1:{port}/readyz" for port in self.ops_ports.values()]
        for url in (f"{self.inbox_url}/readyz", f"{self.api_url}/readyz", *ops):
            while True:
                self.check_alive()
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise StackError(f"{url} did not become ready")
                time.sleep(0.1)

    def check_alive(self) -> None:
        """Raise with the log of the first process that has exited."""
        for process in self._processes:
            if not process.is_running():
                raise StackError(f"{process.name} stopped:\n{process.tail_log()}")

    def auth_headers(self, token: str | None = None) -> dict[str, str]:
        """The header that authenticates with ``token``, by default the admin's."""
        return {"authorization": f"Bearer {token or self.admin_token}"}

    def deploy(self, path: Path, name: str, token: str | None = None) -> dict[str, Any]:
        """Deploy a project.yaml through the API, as the admin unless ``token``."""
        response = httpx.put(
            f"{self.api_url}/api/projects/{name}",
            content=path.read_bytes(),
            headers={
                "content-type": "application/yaml",
                "x-filename": path.name,
                **self.auth_headers(token),
            },
            timeout=30,
        )
        if response.status_code not in (200, 201):
            raise StackError(
                f"deploy of {path} failed: {response.status_code} {response.text}"
            )
        return response.json()  # type: ignore[no-any-return]

    def process(self, name: str) -> ManagedProcess:
        return next(p for p in self._processes if p.name == name)

    def process_with_pid(self, pid: int) -> ManagedProcess:
        """The service process whose pid is ``pid``, e.g. a run's runner."""
        return next(
            p for p in self._processes if p.popen is not None and p.popen.pid == pid
        )

    def stop(self) -> None:
        """Stop services first, then servers, and delete the database files."""
        for process in reversed(self._processes):
            process.stop()
        if self._pg_root is not None:
            remove_data(self._pg_root)

    def _require_servers(self) -> Servers:
        if self.servers is None:
            raise StackError("the servers are not started")
        return self.servers


def issue_admin_access(database_url: str) -> tuple[str, str]:
    """A new API token and a new console password of the site admin ``admin``,
    created if missing: ``(token, password)``."""
    password = secrets.token_urlsafe(12)
    with connect(database_url, autocommit=True) as conn:
        user = find_user(conn, ADMIN_USERNAME) or create_user(
            conn, ADMIN_USERNAME, is_admin=True
        )
        set_password(conn, user.id, password)
        return create_token(conn, user.id, "local stack").token, password
