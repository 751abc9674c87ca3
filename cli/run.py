"""``openfn run``: run one job on this machine with the platform's engine."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from services.runner.engine import ProcessEngine
from shared.events import JobSpec
from shared.logging import configure_logging
from shared.settings import MiB


def _read_json(path: str | None, what: str) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SystemExit(
            f"openfn: cannot read the {what} {path}: {exc.strerror}"
        ) from exc
    except json.JSONDecodeError as exc:
        raise SystemExit(f"openfn: the {what} {path} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SystemExit(f"openfn: the {what} {path} must hold a JSON object")
    return value


def run_job(args: argparse.Namespace) -> int:
    """Final state to stdout, logs to stderr; the exit code is the run's."""
    path = Path(args.job)
    try:
        expression = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"openfn: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    job = JobSpec(
        id=uuid5(NAMESPACE_URL, str(path.resolve())),
        name=path.name,
        version=hashlib.sha256(expression.encode()).hexdigest()[:16],
        adaptor=args.adaptor,
        expression=expression,
    )
    # The engine's own log lines would mix with the final state on stdout.
    configure_logging("WARNING", "console")
    state = _read_json(args.state, "state") or {}
    credential = _read_json(args.credential, "credential")
    engine = ProcessEngine(workers=1, memory_limit_bytes=args.memory_mb * MiB)
    engine.start()
    try:
        execution = engine.execute(job, state, args.timeout_s, credential)
    finally:
        engine.close()
    for line in execution.logs:
        print(
            f"{line.at.isoformat(timespec='milliseconds')} {line.message}",
            file=sys.stderr,
        )
    if execution.error:
        print(f"error: {execution.error}", file=sys.stderr)
    print(
        f"exit code {execution.exit_code}"
        f" ({execution.adaptor} {execution.adaptor_version})",
        file=sys.stderr,
    )
    if execution.final_state is not None:
        json.dump(execution.final_state, sys.stdout, indent=2, ensure_ascii=False)
        print()
    return execution.exit_code


def add_run_command(commands: Any) -> None:
    run = commands.add_parser("run", help="run a job locally, as a runner would")
    run.add_argument("job", help="file holding the job's expression")
    run.add_argument("--adaptor", default="common")
    run.add_argument("--state", help="JSON file with the input state (default {})")
    run.add_argument("--credential", help="JSON file with the credential body")
    run.add_argument("--timeout-s", type=float, default=100.0)
    run.add_argument("--memory-mb", type=int, default=512)
    run.set_defaults(func=run_job)
