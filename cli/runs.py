"""`openfn rerun`, `reprocess`, `run-now`, `abort`, `dead-letters`, `redrive`: runs
via the API.

Exit codes: 0 done, 1 the API refused, 2 bad arguments, 3 the API is not
reachable, 4 the 10-second rule refused a run (try again after the wait printed).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx

from cli.auth import UNAUTHENTICATED_HINT, add_token_argument, auth_headers

TOO_MANY_RUNS = 4


def _post(args: argparse.Namespace, path: str, body: Any = None) -> httpx.Response:
    return httpx.post(
        f"{args.api.rstrip('/')}{path}",
        json=body,
        headers=auth_headers(args),
        timeout=60,
    )


def _filters(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {
        name: getattr(args, name)
        for name in names
        if getattr(args, name, None) is not None
    }


def print_refusal(response: httpx.Response) -> int:
    """Print an error answer; the exit code it stands for."""
    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text}
    print(f"openfn: {body.get('message', response.text)}", file=sys.stderr)
    for problem in body.get("problems") or []:
        print(f"  {problem}", file=sys.stderr)
    if response.status_code in (429, 503) and "retry-after" in response.headers:
        print(f"  retry after {response.headers['retry-after']} s", file=sys.stderr)
    if response.status_code == 401:
        print(UNAUTHENTICATED_HINT, file=sys.stderr)
    return TOO_MANY_RUNS if response.status_code == 429 else 1


def _call(args: argparse.Namespace, path: str, body: Any = None) -> Any:
    """The JSON of a 202 answer, or the exit code to end with."""
    try:
        response = _post(args, path, body)
    except httpx.TransportError as exc:
        print(f"openfn: the API at {args.api} is not reachable: {exc}", file=sys.stderr)
        return 3
    if response.status_code != 202:
        return print_refusal(response)
    return response.json()


def rerun(args: argparse.Namespace) -> int:
    """Re-run one run, or every run of a filtered activity history."""
    if (args.run_id is None) == (args.project is None):
        print("openfn: give either a RUN_ID or --project", file=sys.stderr)
        return 2
    if args.run_id is not None:
        answer = _call(args, f"/api/runs/{args.run_id}/rerun")
        if isinstance(answer, int):
            return answer
        print(f"run {answer['run_id']} requested (re-run of {args.run_id})")
        return 0
    filters = _filters(args, "job", "status", "since", "until", "limit")
    answer = _call(args, f"/api/projects/{args.project}/runs/rerun", filters)
    if isinstance(answer, int):
        return answer
    return _print_bulk(answer)


def _print_bulk(answer: dict[str, Any]) -> int:
    print(f"requested {len(answer['requested'])} re-run(s)")
    for run_id in answer["requested"]:
        print(f"  run {run_id}")
    if answer["skipped_chained"]:
        print(
            f"skipped {answer['skipped_chained']} run(s) started by flow or catch"
            " triggers: they follow the re-runs downstream"
        )
    for item in answer["not_rerun"]:
        print(f"not re-run {item['run_id']}: {item['message']}", file=sys.stderr)
    for item in answer["refused"]:
        print(
            f"refused {item['run_id']}: its message and job ran too recently"
            f" (the 10-second rule); retry after {item['retry_after_s']} s",
            file=sys.stderr,
        )
    if answer["refused"]:
        return TOO_MANY_RUNS
    return 1 if answer["not_rerun"] else 0


def reprocess(args: argparse.Namespace) -> int:
    """Send inbox messages through trigger matching again."""
    filters = _filters(args, "since", "until", "limit")
    if args.message:
        filters["ids"] = args.message
    answer = _call(args, f"/api/projects/{args.project}/messages/reprocess", filters)
    if isinstance(answer, int):
        return answer
    print(f"reprocessed {len(answer['reprocessed'])} message(s)")
    for message_id in answer["reprocessed"]:
        print(f"  message {message_id}")
    return 0


def run_now(args: argparse.Namespace) -> int:
    """Run a cron job now, from its cursor."""
    answer = _call(args, f"/api/projects/{args.project}/jobs/{args.job}/run")
    if isinstance(answer, int):
        return answer
    print(f"run {answer['run_id']} requested for job {args.job}")
    return 0


def abort(args: argparse.Namespace) -> int:
    """Stop a run in progress."""
    answer = _call(args, f"/api/runs/{args.run_id}/abort")
    if isinstance(answer, int):
        return answer
    print(
        f"abort of run {args.run_id} requested by {answer['requested_by']}"
        f" at {answer['requested_at']}; it ends with exit code 6"
    )
    return 0


def dead_letters(args: argparse.Namespace) -> int:
    """List dead letters, newest first."""
    params: dict[str, Any] = {"include_redriven": args.all}
    if args.project:
        params["project"] = args.project
    try:
        response = httpx.get(
            f"{args.api.rstrip('/')}/api/dead-letters",
            params=params,
            headers=auth_headers(args),
            timeout=60,
        )
    except httpx.TransportError as exc:
        print(f"openfn: the API at {args.api} is not reachable: {exc}", file=sys.stderr)
        return 3
    if response.status_code != 200:
        return print_refusal(response)
    letters = response.json()
    for letter in letters:
        redriven = (
            f", redriven as {letter['redriven_as']}" if letter["redriven_as"] else ""
        )
        print(
            f"{letter['run_id']}  {letter['project']}/{letter['job_name']}"
            f"  exit {letter['exit_code']} after {letter['attempts']} attempt(s)"
            f"  {letter['dead_at']}{redriven}"
        )
        if letter["error"]:
            print(f"    {letter['error']}")
    print(f"{len(letters)} dead letter(s)")
    return 0


def redrive(args: argparse.Namespace) -> int:
    """Send a dead-lettered run again."""
    answer = _call(args, f"/api/dead-letters/{args.run_id}/redrive")
    if isinstance(answer, int):
        return answer
    print(f"run {answer['run_id']} requested (redrive of {args.run_id})")
    return 0


def add_run_commands(commands: Any, api_url: str) -> None:
    """Add the commands that start and stop runs to the ``openfn`` command.

    Args:
        commands: The ``openfn`` parser's subparsers.
        api_url: The API's address unless ``--api`` gives another.
    """
    api = {"default": api_url, "help": "the API's address (default: %(default)s)"}
    period = {
        "since": "from this time (ISO 8601; default 30 days ago)",
        "until": "up to this time (ISO 8601; default now)",
    }

    again = commands.add_parser(
        "rerun",
        help="re-run a run, or every run of a filtered activity history",
        description="Re-run RUN_ID from the same input state, or with --project "
        "every run that matches the filters. Runs started by flow or catch "
        "triggers are not re-run directly: they follow their upstream re-runs.",
    )
    again.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the run")
    again.add_argument("--project", help="re-run the project's activity history")
    again.add_argument("--job", help="only runs of this job")
    again.add_argument(
        "--status",
        choices=["succeeded", "failed", "timed_out", "lost", "aborted", "failure"],
        help="only runs with this status (failure: any but succeeded)",
    )
    again.add_argument("--since", help=period["since"])
    again.add_argument("--until", help=period["until"])
    again.add_argument("--limit", type=int, help="most runs (default 100, max 1000)")
    again.add_argument("--api", **api)
    add_token_argument(again)
    again.set_defaults(func=rerun)

    replay = commands.add_parser(
        "reprocess",
        help="send inbox messages through trigger matching again",
        description="Match the project's messages again against the jobs enabled "
        "now; each message/job pair still runs at most once per 10 seconds.",
    )
    replay.add_argument("--project", required=True)
    replay.add_argument(
        "--message",
        action="append",
        metavar="ID",
        help="only this message (repeat for more)",
    )
    replay.add_argument("--since", help=period["since"])
    replay.add_argument("--until", help=period["until"])
    replay.add_argument(
        "--limit", type=int, help="most messages (default 100, max 1000)"
    )
    replay.add_argument("--api", **api)
    add_token_argument(replay)
    replay.set_defaults(func=reprocess)

    now = commands.add_parser(
        "run-now",
        help="run a cron job now, from its cursor",
        description="Start a job that has a cron trigger now, from the final state "
        "of its last succeeded run.",
    )
    now.add_argument("--project", required=True)
    now.add_argument("--job", required=True)
    now.add_argument("--api", **api)
    add_token_argument(now)
    now.set_defaults(func=run_now)

    stop = commands.add_parser(
        "abort",
        help="stop a run in progress (project admins)",
        description="Stop RUN_ID where it is: its runner kills it within about a "
        "second and it ends with exit code 6, status aborted. An aborted run is "
        "not retried and starts no flow or catch job.",
    )
    stop.add_argument("run_id", metavar="RUN_ID")
    stop.add_argument("--api", **api)
    add_token_argument(stop)
    stop.set_defaults(func=abort)

    dead = commands.add_parser(
        "dead-letters",
        help="list runs that used up their retries",
        description="Runs that failed for a reason worth retrying and used up "
        "their attempts, newest first.",
    )
    dead.add_argument("--project", help="only this project's")
    dead.add_argument("--all", action="store_true", help="include redriven ones")
    dead.add_argument("--api", **api)
    add_token_argument(dead)
    dead.set_defaults(func=dead_letters)

    again_dead = commands.add_parser(
        "redrive", help="send a dead-lettered run again, as a new run"
    )
    again_dead.add_argument("run_id", metavar="RUN_ID")
    again_dead.add_argument("--api", **api)
    add_token_argument(again_dead)
    again_dead.set_defaults(func=redrive)
