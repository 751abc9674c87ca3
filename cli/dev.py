"""``openfn dev``: the platform on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from devstack.processes import StackError, is_listening
from devstack.stack import LocalStack
from shared.logging import configure_logging

STACK_DIR = Path(".stack")


def run_dev(args: argparse.Namespace) -> int:
    """Start servers and services, deploy the example, print URLs, wait for Ctrl-C."""
    for port in (args.inbox_port, args.api_port):
        if is_listening(port):
            print(
                f"openfn: port {port} is in use; choose --inbox-port/--api-port",
                file=sys.stderr,
            )
            return 2
    stack = LocalStack(
        log_dir=STACK_DIR / "logs", inbox_port=args.inbox_port, api_port=args.api_port
    )

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Set both explicitly: a shell starting us in the background ignores SIGINT.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    configure_logging("INFO", "console")
    try:
        print(
            "starting PostgreSQL, the Kafka broker and the Vault server ...", flush=True
        )
        stack.start_servers()
        stack.prepare()
        print("starting the services ...", flush=True)
        stack.start_services()
        example = Path(args.example)
        project = (
            stack.deploy(example, example.parent.name) if example.exists() else None
        )
        print_welcome(stack, project)
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    except StackError as exc:
        print(f"openfn: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


def print_welcome(stack: LocalStack, project: dict[str, object] | None) -> None:
    print()
    print(f"  Console:    {stack.api_url}/console")
    print(f"              sign in as admin, password {stack.admin_password}")
    print(f"  API:        {stack.api_url}   (OpenAPI: {stack.api_url}/docs)")
    print(f"  Gateway:    {stack.inbox_url}")
    print(f"  API token:  {stack.admin_token}   (user admin, a site admin)")
    if project is not None:
        print(f"  Inbox URL:  {project['inbox_url']}   (project {project['name']})")
    print(f"  Logs:       {STACK_DIR / 'logs'}/")
    print("\nCtrl-C stops everything.", flush=True)
