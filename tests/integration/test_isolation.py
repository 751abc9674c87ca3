"""A job cannot reach the runner's secrets: a real runner process, real workers.

Each test starts a stand-in runner process holding a Vault token in its
environment, as the runner's ``main()`` would, and runs a probing job on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hvs.only-the-runner-may-see-this"

RUNNER = """
import json, sys, uuid
from services.runner.engine import ProcessEngine, make_process_undumpable
from shared.events import JobSpec

if sys.argv[1] == "undumpable":
    make_process_undumpable()
spec = JobSpec(
    id=uuid.uuid4(), name="probe", version="1", adaptor="common",
    expression=sys.stdin.read(),
)
with ProcessEngine(workers=2) as engine:
    execution = engine.execute(spec, {}, 60)
print(json.dumps({"exit_code": execution.exit_code,
                  "error": execution.error, "state": execution.final_state}))
"""

PROBE = """
import os

TOKEN = TOKEN_BYTES

def attempt(path):
    try:
        with open(path, "rb") as opened:
            opened.read(4096)
    except OSError as error:
        return type(error).__name__
    return "read"

def workers_of(runner):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if parent == runner and b"services.runner.worker" in cmdline.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found

def environments_with_the_token():
    seen = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if TOKEN in environ.read():
                    seen.append(int(pid))
        except OSError:
            pass
    return seen

def status(field):
    with open("/proc/self/status") as lines:
        return next(line.split()[1] for line in lines if line.startswith(field))

def probe(state):
    runner = os.getppid()
    siblings = [pid for pid in workers_of(runner) if pid != os.getpid()]
    return {
        "runner_environ": attempt(f"/proc/{runner}/environ"),
        "runner_mem": attempt(f"/proc/{runner}/mem"),
        "sibling_environ": [attempt(f"/proc/{pid}/environ") for pid in siblings],
        "sibling_mem": [attempt(f"/proc/{pid}/mem") for pid in siblings],
        "token_seen_in": environments_with_the_token(),
        "own_environment": sorted(os.environ),
        "capabilities": status("CapEff:"),
        "no_new_privs": status("NoNewPrivs:"),
    }

fn(probe)
""".replace("TOKEN_BYTES", repr(TOKEN.encode()))

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="the isolation relies on Linux's /proc and prctl"
)


def run_probe(mode: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, mode],
        input=PROBE,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "VAULT_TOKEN": TOKEN, "OPENFN_VAULT_TOKEN": TOKEN},
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    assert result["exit_code"] == 0, result["error"]
    state: dict[str, Any] = result["state"]
    return state


def test_a_job_cannot_read_the_runners_environment_or_memory() -> None:
    probe = run_probe("undumpable")

    assert probe["runner_environ"] == "PermissionError"
    assert probe["runner_mem"] == "PermissionError"
    assert probe["token_seen_in"] == []


def test_a_job_cannot_read_another_workers_environment_or_memory() -> None:
    probe = run_probe("undumpable")

    assert probe["sibling_environ"] == ["PermissionError"]
    assert probe["sibling_mem"] == ["PermissionError"]


def test_a_job_holds_no_capability_and_cannot_gain_one() -> None:
    probe = run_probe("undumpable")

    assert int(probe["capabilities"], 16) == 0
    assert probe["no_new_privs"] == "1"
    assert set(probe["own_environment"]) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR"}


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="as root, the runner's capabilities, which jobs lack, protect it too",
)
def test_without_make_process_undumpable_the_runner_would_be_exposed() -> None:
    # The control: the same probe succeeds against a dumpable runner, so the
    # tests above pass because of make_process_undumpable.
    probe = run_probe("dumpable")

    assert probe["runner_environ"] == "read"
    assert probe["token_seen_in"] != []
