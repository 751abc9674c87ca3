"""Warm workers: shared by concurrent runs, reused, and replaced when worn."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from services.runner.engine import Execution, ProcessEngine
from services.runner.pool import PoolClosedError
from services.runner.worker_process import WorkerStartError, describe_exit
from shared.events import JobSpec
from shared.model import ExitCode

PID_JOB = JobSpec(
    id=uuid.uuid4(),
    name="pid",
    version="1",
    adaptor="common",
    expression="import os\nfn(lambda state: {'pid': os.getpid()})\n",
)


def job(expression: str) -> JobSpec:
    return JobSpec(
        id=uuid.uuid4(),
        name="test-job",
        version="1",
        adaptor="common",
        expression=expression,
    )


def pid_of(execution: Execution) -> int:
    assert execution.final_state is not None
    pid = execution.final_state["pid"]
    assert isinstance(pid, int)
    return pid


def test_two_runs_execute_at_once_on_two_workers(tmp_path: Path) -> None:
    # Each run waits for the other's mark: both succeed only if they overlap.
    expression = (
        "import os, time\n"
        "def meet(state):\n"
        "    here, there = state['data']['here'], state['data']['there']\n"
        "    open(here, 'w').close()\n"
        "    deadline = time.monotonic() + 20\n"
        "    while not os.path.exists(there):\n"
        "        if time.monotonic() > deadline:\n"
        "            raise TimeoutError('the other run never came')\n"
        "        time.sleep(0.01)\n"
        "    return {'pid': os.getpid()}\n"
        "fn(meet)\n"
    )
    spec = job(expression)
    marks = [str(tmp_path / "a"), str(tmp_path / "b")]
    executions: list[Execution] = []

    def run(here: str, there: str) -> None:
        state = {"data": {"here": here, "there": there}}
        executions.append(engine.execute(spec, state, 30))

    with ProcessEngine(workers=2) as engine:
        callers = [
            threading.Thread(target=run, args=(marks[0], marks[1])),
            threading.Thread(target=run, args=(marks[1], marks[0])),
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()

    assert [execution.exit_code for execution in executions] == [ExitCode.SUCCESS] * 2
    assert pid_of(executions[0]) != pid_of(executions[1])


def test_a_worker_serves_many_runs_then_is_replaced() -> None:
    with ProcessEngine(workers=1, max_runs_per_worker=3) as engine:
        pids = [pid_of(engine.execute(PID_JOB, {}, 10)) for _ in range(7)]

    assert pids[0] == pids[1] == pids[2]
    assert pids[3] == pids[4] == pids[5]
    assert len({pids[0], pids[3], pids[6]}) == 3


def test_a_worker_that_grew_too_much_is_replaced() -> None:
    hoarder = job(
        "import json\n"
        "def hoard(state):\n"
        "    json.hoard = b'x' * (64 * 1024 * 1024)\n"
        "    return {}\n"
        "fn(hoard)\n"
    )

    with ProcessEngine(workers=1, max_growth_bytes=32 * 1024 * 1024) as engine:
        before = pid_of(engine.execute(PID_JOB, {}, 10))
        engine.execute(hoarder, {}, 10)
        after = pid_of(engine.execute(PID_JOB, {}, 10))

    assert before != after


@pytest.mark.parametrize(
    "expression",
    [
        "import threading, time\n"
        "fn(lambda s: threading.Thread(target=time.sleep, args=(30,)).start() or s)\n",
        "import subprocess\nfn(lambda s: subprocess.Popen(['sleep', '30']) and s)\n",
        "import os, time\n"
        "def hide(state):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(5)\n"
        "        os._exit(0)\n"
        "    os.wait()\n"
        "    return state\n"
        "fn(hide)\n",
    ],
    ids=["thread", "process", "double-forked-process"],
)
def test_a_worker_whose_run_left_something_running_is_replaced(
    expression: str,
) -> None:
    with ProcessEngine(workers=1) as engine:
        before = pid_of(engine.execute(PID_JOB, {}, 10))
        left = engine.execute(job(expression), {}, 10)
        after = pid_of(engine.execute(PID_JOB, {}, 10))

    assert left.exit_code == ExitCode.SUCCESS
    assert before != after


def test_a_worker_keeps_serving_after_ordinary_failures() -> None:
    failing = job("fn(lambda state: 1 / 0)")

    with ProcessEngine(workers=1) as engine:
        before = pid_of(engine.execute(PID_JOB, {}, 10))
        failed = engine.execute(failing, {}, 10)
        after = pid_of(engine.execute(PID_JOB, {}, 10))

    assert failed.exit_code == ExitCode.JOB_ERROR
    assert before == after


def test_an_engine_runs_nothing_before_it_starts_or_after_it_closes() -> None:
    engine = ProcessEngine(workers=1)

    with pytest.raises(PoolClosedError):
        engine.execute(PID_JOB, {}, 10)
    engine.start()
    engine.close()
    with pytest.raises(PoolClosedError):
        engine.execute(PID_JOB, {}, 10)


def test_closing_the_engine_ends_a_run_in_progress(tmp_path: Path) -> None:
    mark = tmp_path / "started"
    sleeper = job(
        "import time\n"
        "def sleep(state):\n"
        "    open(state['data'], 'w').close()\n"
        "    time.sleep(60)\n"
        "fn(sleep)\n"
    )
    executions: list[Execution] = []
    engine = ProcessEngine(workers=1)
    engine.start()
    caller = threading.Thread(
        target=lambda: executions.append(
            engine.execute(sleeper, {"data": str(mark)}, 60)
        )
    )
    caller.start()
    while not mark.exists():
        time.sleep(0.01)

    engine.close()
    caller.join()

    assert executions[0].exit_code == ExitCode.UNCAUGHT_ERROR
    assert executions[0].error == (
        "the run was stopped because the runner is shutting down"
    )


def test_a_pool_whose_workers_cannot_start_says_so(tmp_path: Path) -> None:
    engine = ProcessEngine(workers=1, runs_dir=tmp_path / "missing")

    with pytest.raises(WorkerStartError, match="a worker did not start"):
        engine.start()


def test_a_reply_forged_by_the_job_is_refused_and_never_unpickled(
    tmp_path: Path,
) -> None:
    # The job knows its worker's channel; a pickle there would run in the runner.
    marker = tmp_path / "pickle-ran-in-the-runner"
    forger = job(
        "import json, os, pickle, struct, sys\n"
        "class Payload:\n"
        "    def __reduce__(self):\n"
        "        return (open, (state_path, 'w'))\n"
        "def forge(state):\n"
        "    global state_path\n"
        "    state_path = state['data']\n"
        "    frame = pickle.dumps(Payload())\n"
        "    channel = json.loads(sys.argv[2])['channel_fd']\n"
        "    os.write(channel, struct.pack('!i', len(frame)) + frame)\n"
        "    return state\n"
        "fn(forge)\n"
    )

    with ProcessEngine(workers=1) as engine:
        forged = engine.execute(forger, {"data": str(marker)}, 10)
        after = engine.execute(PID_JOB, {}, 10)

    assert forged.exit_code == ExitCode.UNCAUGHT_ERROR
    assert forged.error is not None
    assert forged.error.startswith("the run's process sent an unreadable reply")
    assert not marker.exists()
    assert after.exit_code == ExitCode.SUCCESS


@pytest.mark.parametrize(
    ("status", "exit_code", "error"),
    [
        (3, 11, "the run's process exited with status 3 before finishing"),
        (-15, 11, "the run's process was killed by SIGTERM"),
        (-9, 134, "the run's process was killed by SIGKILL, most likely for running"),
        (-6, 134, "the run's process was killed by SIGABRT, most likely for running"),
    ],
)
def test_how_a_worker_ended_says_how_its_run_ended(
    status: int, exit_code: int, error: str
) -> None:
    described = describe_exit(status)

    assert described[0] == exit_code
    assert described[1].startswith(error)
