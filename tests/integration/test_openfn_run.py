"""`openfn run` runs a job locally on the runner's engine, as the README shows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def openfn_run(
    tmp_path: Path, expression: str, *args: str
) -> subprocess.CompletedProcess[str]:
    job = tmp_path / "job.py"
    job.write_text(expression)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "run", str(job), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_job_prints_its_final_state_and_logs(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text('{"data": {"items": [1, 2, 3]}}')

    done = openfn_run(
        tmp_path,
        'fn(lambda state: {**state, "n": len(state["data"]["items"])})\n'
        'log("counted")\n',
        "--adaptor",
        "common",
        "--state",
        str(tmp_path / "in.json"),
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"data": {"items": [1, 2, 3]}, "n": 3}
    assert "counted" in done.stderr
    assert "exit code 0 (common " in done.stderr


def test_a_failing_job_exits_with_the_runs_code_and_masks_the_credential(
    tmp_path: Path,
) -> None:
    (tmp_path / "cred.json").write_text('{"password": "hunter2-secret"}')

    done = openfn_run(
        tmp_path,
        'log(source_value("$.configuration.password"))\nfn(lambda state: 1 / 0)\n',
        "--credential",
        str(tmp_path / "cred.json"),
    )

    assert done.returncode == 1
    assert "ZeroDivisionError at line 2" in done.stderr
    assert "hunter2-secret" not in done.stderr + done.stdout
    assert "***" in done.stderr


def test_a_job_over_its_timeout_exits_2(tmp_path: Path) -> None:
    done = openfn_run(
        tmp_path, "fn(lambda state: exec('while True: pass'))\n", "--timeout-s", "1"
    )
    assert done.returncode == 2


def test_an_unreadable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    done = openfn_run(
        tmp_path, "fn(lambda state: state)\n", "--state", str(tmp_path / "nope.json")
    )
    assert done.returncode != 0
    assert "cannot read the state" in done.stderr
