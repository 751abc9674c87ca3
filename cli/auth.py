"""API tokens for the ``openfn`` command: sending them, and the first admin's.

``openfn admin`` talks to PostgreSQL directly (``OPENFN_DATABASE_URL``), so an
operator can create the first site admin and their token before anyone can
call the API.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from shared.auth import (
    InvalidPasswordError,
    InvalidUsernameError,
    UserExistsError,
    create_token,
    create_user,
    find_user,
    set_password,
)
from shared.db import connect
from shared.settings import PostgresSettings

UNAUTHENTICATED_HINT = (
    "  pass --token or set OPENFN_API_TOKEN; `openfn dev` prints one, and an"
    " operator issues one with `openfn admin create-token USER`"
)


def add_token_argument(parser: argparse.ArgumentParser) -> None:
    """Give an API command its ``--token`` option."""
    parser.add_argument(
        "--token",
        default=os.environ.get("OPENFN_API_TOKEN"),
        help="API token (default: $OPENFN_API_TOKEN)",
    )


def auth_headers(args: argparse.Namespace) -> dict[str, str]:
    """The Authorization header for the command's token, if it has one."""
    return {"authorization": f"Bearer {args.token}"} if args.token else {}


def create_admin_user(args: argparse.Namespace) -> int:
    """Add a user straight to the database."""
    with connect(_database_url(), autocommit=True) as conn:
        try:
            user = create_user(conn, args.username, is_admin=args.admin)
        except (InvalidUsernameError, UserExistsError) as exc:
            print(f"openfn: {exc}", file=sys.stderr)
            return 1
    kind = "site admin" if user.is_admin else "user"
    print(f"{kind} {user.username} created ({user.id})")
    return 0


def create_admin_token(args: argparse.Namespace) -> int:
    """Issue a token for a user straight from the database; print it once."""
    with connect(_database_url(), autocommit=True) as conn:
        user = find_user(conn, args.username)
        if user is None:
            print(f"openfn: no user {args.username}", file=sys.stderr)
            return 1
        issued = create_token(conn, user.id, args.name)
    print(f"token {issued.id} for {user.username} (shown once, keep it safe):")
    print(issued.token)
    return 0


def set_admin_password(args: argparse.Namespace) -> int:
    """Set a user's console password straight in the database.

    The password is read from standard input when it is not a terminal (one
    line), otherwise asked for twice without echo.
    """
    if sys.stdin.isatty():
        password = getpass.getpass(f"new password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            print("openfn: the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    with connect(_database_url(), autocommit=True) as conn:
        user = find_user(conn, args.username)
        if user is None:
            print(f"openfn: no user {args.username}", file=sys.stderr)
            return 1
        try:
            set_password(conn, user.id, password)
        except InvalidPasswordError as exc:
            print(f"openfn: {exc}", file=sys.stderr)
            return 1
    print(f"password of {user.username} set; their console sessions ended")
    return 0


def _database_url() -> str:
    return PostgresSettings().database_url.get_secret_value()


def add_admin_commands(commands: Any) -> None:
    """Add ``openfn admin create-user``, ``create-token`` and ``set-password``.

    Args:
        commands: The ``openfn`` parser's subparsers.
    """
    admin = commands.add_parser(
        "admin",
        help="create users and tokens directly in the database",
        description="Bootstrap access: these commands use OPENFN_DATABASE_URL, "
        "not the API.",
    )
    actions = admin.add_subparsers(dest="action", required=True)
    user = actions.add_parser("create-user", help="add a user")
    user.add_argument("username", metavar="NAME")
    user.add_argument("--admin", action="store_true", help="make a site admin")
    user.set_defaults(func=create_admin_user)
    token = actions.add_parser("create-token", help="issue an API token for a user")
    token.add_argument("username", metavar="NAME")
    token.add_argument("--name", default="cli", help="what the token is for")
    token.set_defaults(func=create_admin_token)
    password = actions.add_parser(
        "set-password",
        help="set a user's password for the console (read from stdin or asked)",
    )
    password.add_argument("username", metavar="NAME")
    password.set_defaults(func=set_admin_password)
