"""`openfn credentials list|set|delete` and `openfn audit`: via the API.

A credential's body is read from a JSON file, never from the command line, so
its values stay out of shell history and process listings; nothing the
commands print holds a value. Exit codes: 0 done, 1 the API refused, 2 bad
arguments, 3 the API is not reachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from cli.auth import add_token_argument, auth_headers
from cli.runs import print_refusal


def _request(
    args: argparse.Namespace, method: str, path: str, **kwargs: Any
) -> httpx.Response | int:
    """The API's answer, or exit code 3 when the API is not reachable."""
    try:
        return httpx.request(
            method,
            f"{args.api.rstrip('/')}{path}",
            headers=auth_headers(args),
            timeout=30,
            **kwargs,
        )
    except httpx.TransportError as exc:
        print(f"openfn: the API at {args.api} is not reachable: {exc}", file=sys.stderr)
        return 3


def list_credentials(args: argparse.Namespace) -> int:
    """Print the project's credentials: names, fields and who wrote them when."""
    response = _request(args, "GET", f"/api/projects/{args.project}/credentials")
    if isinstance(response, int):
        return response
    if response.status_code != 200:
        return print_refusal(response)
    credentials = response.json()
    for credential in credentials:
        print(
            f"{credential['name']}  fields {', '.join(credential['fields'])}"
            f"  by {credential['updated_by'] or '?'} at {credential['updated_at']}"
        )
    print(f"{len(credentials)} credential(s)")
    return 0


def set_credential(args: argparse.Namespace) -> int:
    """Write a credential's values from a JSON file to Vault."""
    path = Path(args.file)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"openfn: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValueError:
        # The parser's message may quote the file, values included.
        print(f"openfn: {path} is not valid JSON", file=sys.stderr)
        return 2
    if not isinstance(body, dict) or not body:
        print(f"openfn: {path} must hold a non-empty JSON object", file=sys.stderr)
        return 2
    response = _request(
        args, "PUT", f"/api/projects/{args.project}/credentials/{args.name}", json=body
    )
    if isinstance(response, int):
        return response
    if response.status_code != 200:
        return print_refusal(response)
    written = response.json()
    print(f"credential {written['name']} written: {', '.join(written['fields'])}")
    return 0


def delete_credential(args: argparse.Namespace) -> int:
    """Delete a credential that no deployed job names."""
    response = _request(
        args, "DELETE", f"/api/projects/{args.project}/credentials/{args.name}"
    )
    if isinstance(response, int):
        return response
    if response.status_code != 204:
        return print_refusal(response)
    print(f"credential {args.name} deleted")
    return 0


def audit(args: argparse.Namespace) -> int:
    """Print a project's audit log (or, for site admins, everyone's), newest first."""
    path = f"/api/projects/{args.project}/audit" if args.project else "/api/audit"
    params: dict[str, Any] = {"limit": args.limit}
    if args.before is not None:
        params["before"] = args.before
    response = _request(args, "GET", path, params=params)
    if isinstance(response, int):
        return response
    if response.status_code != 200:
        return print_refusal(response)
    page = response.json()
    for event in page["events"]:
        details = json.dumps(event["details"], sort_keys=True)
        print(
            f"{event['id']}  {event['at']}  {event['actor']}  {event['action']}"
            f"  {event['subject']}  {details}"
        )
    if page["next_before"] is not None:
        print(f"older events: --before {page['next_before']}")
    return 0


def add_credential_commands(commands: Any, api_url: str) -> None:
    """Add ``credentials list|set|delete`` and ``audit`` to the ``openfn`` command.

    Args:
        commands: The ``openfn`` parser's subparsers.
        api_url: The API's address unless ``--api`` gives another.
    """
    api = {"default": api_url, "help": "the API's address (default: %(default)s)"}

    credentials = commands.add_parser(
        "credentials",
        help="list, write and delete a project's credentials (admin)",
        description="Values go to Vault only and are never shown.",
    )
    actions = credentials.add_subparsers(dest="action", required=True)
    listed = actions.add_parser("list", help="names, fields, who wrote them when")
    written = actions.add_parser("set", help="write a credential's values")
    written.add_argument("name", metavar="NAME")
    written.add_argument(
        "--file",
        required=True,
        help="a JSON object of the values (kept out of the command line on purpose)",
    )
    deleted = actions.add_parser(
        "delete", help="delete a credential no deployed job names"
    )
    deleted.add_argument("name", metavar="NAME")
    for parser, func in (
        (listed, list_credentials),
        (written, set_credential),
        (deleted, delete_credential),
    ):
        parser.add_argument("--project", required=True)
        parser.add_argument("--api", **api)
        add_token_argument(parser)
        parser.set_defaults(func=func)

    log = commands.add_parser(
        "audit",
        help="who deployed, changed credentials or access, or started runs",
        description="A project's audit log, newest first (admin); without "
        "--project, every event (site admins).",
    )
    log.add_argument("--project", help="only this project's events")
    log.add_argument("--limit", type=int, default=50, help="most events (max 500)")
    log.add_argument("--before", type=int, metavar="ID", help="events older than ID")
    log.add_argument("--api", **api)
    add_token_argument(log)
    log.set_defaults(func=audit)
