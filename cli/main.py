"""Entry point of the ``openfn`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from cli.auth import (
    UNAUTHENTICATED_HINT,
    add_admin_commands,
    add_token_argument,
    auth_headers,
)
from cli.credentials import add_credential_commands
from cli.dev import run_dev
from cli.run import add_run_command
from cli.runs import add_run_commands
from shared.db import apply_migrations
from shared.kafka import ensure_topics
from shared.logging import configure_logging
from shared.settings import KafkaSettings, LimitSettings, PostgresSettings
from shared.topics import Topics

DEFAULT_API_URL = "http://127.0.0.1:8001"


def deploy(args: argparse.Namespace) -> int:
    """Send a project.yaml to the API and print what was deployed."""
    path = Path(args.file)
    try:
        content = path.read_bytes()
    except OSError as exc:
        print(f"openfn: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    name = args.project or path.resolve().parent.name
    try:
        response = httpx.put(
            f"{args.api.rstrip('/')}/api/projects/{name}",
            content=content,
            headers={
                "content-type": "application/yaml",
                "x-filename": path.name,
                **auth_headers(args),
            },
            timeout=30,
        )
    except httpx.TransportError as exc:
        print(f"openfn: the API at {args.api} is not reachable: {exc}", file=sys.stderr)
        return 3
    body = response.json()
    if response.status_code not in (200, 201):
        print(f"openfn: {body.get('message', response.text)}", file=sys.stderr)
        for problem in body.get("problems") or []:
            print(f"  {problem}", file=sys.stderr)
        if response.status_code == 401:
            print(UNAUTHENTICATED_HINT, file=sys.stderr)
        return 1
    verb = "created" if response.status_code == 201 else "updated"
    print(f"project {body['name']} {verb} (revision {body['revision']})")
    print(f"  inbox: {body['inbox_url']}")
    for job in body["jobs"]:
        state = "enabled" if job["enabled"] else "disabled"
        print(
            f"  job {job['name']}: trigger {job['trigger']},"
            f" adaptor {job['adaptor']}, {state}"
        )
    return 0


def export(args: argparse.Namespace) -> int:
    """Write a deployed project as project.yaml; deploying it back changes nothing."""
    try:
        response = httpx.get(
            f"{args.api.rstrip('/')}/api/projects/{args.project}/project.yaml",
            headers=auth_headers(args),
            timeout=30,
        )
    except httpx.TransportError as exc:
        print(f"openfn: the API at {args.api} is not reachable: {exc}", file=sys.stderr)
        return 3
    if response.status_code != 200:
        print(
            f"openfn: {response.json().get('message', response.text)}", file=sys.stderr
        )
        if response.status_code == 401:
            print(UNAUTHENTICATED_HINT, file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(response.text, encoding="utf-8")
    else:
        sys.stdout.write(response.text)
    return 0


def migrate(_args: argparse.Namespace) -> int:
    """Bring the database schema up to date."""
    settings = PostgresSettings()
    configure_logging(settings.log_level, settings.log_format)
    applied = apply_migrations(settings.database_url.get_secret_value())
    print(f"applied {len(applied)} migration(s)")
    return 0


class _TopicSettings(KafkaSettings, LimitSettings):
    pass


def create_topics(_args: argparse.Namespace) -> int:
    """Create the platform's topics with the sizes the limits need."""
    settings = _TopicSettings()
    configure_logging(settings.log_level, settings.log_format)
    topics = Topics.with_prefix(settings.topic_prefix)
    created = ensure_topics(
        settings.kafka_config(),
        topics.max_message_bytes(
            settings.inbox_max_body_bytes, settings.state_max_bytes
        ),
        settings.kafka_partitions,
        settings.kafka_replication_factor,
    )
    print(f"created {len(created)} topic(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openfn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser(
        "dev", help="run the whole platform locally on real servers"
    )
    dev.add_argument("--inbox-port", type=int, default=8000)
    dev.add_argument("--api-port", type=int, default=8001)
    dev.add_argument("--example", default="examples/referrals/project.yaml")
    dev.set_defaults(func=run_dev)

    dep = commands.add_parser(
        "deploy", help="create or update a project from project.yaml"
    )
    dep.add_argument("file", help="path of the project.yaml")
    dep.add_argument("--project", help="project name (default: the file's folder name)")
    api_url = os.environ.get("OPENFN_API_URL", DEFAULT_API_URL)
    dep.add_argument("--api", default=api_url)
    add_token_argument(dep)
    dep.set_defaults(func=deploy)

    out = commands.add_parser(
        "export", help="write a project as project.yaml, secrets as ******"
    )
    out.add_argument("--project", required=True)
    out.add_argument("--output", help="file to write (default: standard output)")
    out.add_argument("--api", default=api_url)
    add_token_argument(out)
    out.set_defaults(func=export)

    add_run_command(commands)
    add_run_commands(commands, api_url)
    add_credential_commands(commands, api_url)
    add_admin_commands(commands)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(
        func=migrate
    )
    commands.add_parser("topics", help="create the Kafka topics").set_defaults(
        func=create_topics
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
