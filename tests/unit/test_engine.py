"""The process engine, running real child processes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from services.runner.engine import ProcessEngine, cap_logs
from shared.adaptors import adaptor_version
from shared.events import JobSpec, LogLine
from shared.model import ExitCode

STATE = {"data": {"name": "Ada", "items": [1, 2]}}


def job(expression: str, adaptor: str = "common") -> JobSpec:
    return JobSpec(
        id=uuid.uuid4(),
        name="test-job",
        version="1",
        adaptor=adaptor,
        expression=expression,
    )


@pytest.fixture(scope="module")
def engine() -> ProcessEngine:
    return ProcessEngine(log_max_bytes=1000)


def test_a_successful_run_gives_the_final_state(engine: ProcessEngine) -> None:
    expression = (
        'fn(lambda state: {**state, "greeting": "hi " + state["data"]["name"]})'
    )

    execution = engine.execute(job(expression), STATE, timeout_s=10)

    assert execution.exit_code == ExitCode.SUCCESS
    assert execution.final_state == {**STATE, "greeting": "hi Ada"}
    assert execution.error is None
    assert execution.adaptor_version == adaptor_version("common")


def test_an_operation_that_raises_fails_the_run_at_its_line(
    engine: ProcessEngine,
) -> None:
    expression = (
        "fn(lambda state: {**state, \"step\": 1})\n\nfn(lambda state: int('bad'))\n"
    )

    execution = engine.execute(job(expression), STATE, timeout_s=10)

    assert execution.exit_code == ExitCode.JOB_ERROR
    assert execution.error == (
        "ValueError at line 3: invalid literal for int() with base 10: 'bad'"
    )
    assert execution.final_state == {**STATE, "step": 1}


def test_a_run_that_overstays_its_timeout_is_killed(engine: ProcessEngine) -> None:
    expression = (
        "def spin(state):\n"
        "    print('spinning', flush=True)\n"
        "    while True:\n"
        "        pass\n"
        "fn(spin)\n"
    )
    started = time.monotonic()

    execution = engine.execute(job(expression), STATE, timeout_s=1)

    assert time.monotonic() - started < 2.5
    assert execution.exit_code == ExitCode.TIMEOUT
    assert execution.final_state is None
    assert [line.message for line in execution.logs] == ["spinning"]


def test_a_top_level_expression_that_is_not_an_operation_is_a_core_error(
    engine: ProcessEngine,
) -> None:
    execution = engine.execute(job("fn(lambda state: state)\n42\n"), STATE, 10)

    assert execution.exit_code == ExitCode.CORE_ERROR
    assert execution.error is not None
    assert execution.error.startswith("TypeError at line 2: expected an operation")


def test_a_syntax_error_is_a_core_error(engine: ProcessEngine) -> None:
    execution = engine.execute(job("fn(lambda state: state\n"), STATE, 10)

    assert execution.exit_code == ExitCode.CORE_ERROR
    assert execution.error is not None
    assert execution.error.startswith("SyntaxError at line 1")


def test_an_unknown_adaptor_is_a_core_error(engine: ProcessEngine) -> None:
    execution = engine.execute(job("fn(lambda state: state)", "nope"), STATE, 10)

    assert execution.exit_code == ExitCode.CORE_ERROR
    assert execution.error is not None
    assert "unknown adaptor 'nope'" in execution.error


def test_prints_and_log_operations_are_in_the_logs_in_order(
    engine: ProcessEngine,
) -> None:
    expression = (
        "import sys\n"
        "greeting = print('setting up')\n"
        "def shout(state):\n"
        "    print('to stdout')\n"
        "    print('to stderr', file=sys.stderr)\n"
        "    return state\n"
        "fn(shout)\n"
        "log('name is', data_value('$.name'))\n"
    )

    execution = engine.execute(job(expression), STATE, 10)

    assert [line.message for line in execution.logs] == [
        "setting up",
        "to stdout",
        "to stderr",
        "name is Ada",
    ]


def test_output_written_straight_to_the_descriptors_is_in_the_logs(
    engine: ProcessEngine,
) -> None:
    expression = "import os\nfn(lambda state: os.write(1, b'raw\\n') and state)\n"

    execution = engine.execute(job(expression), STATE, 10)

    assert execution.exit_code == ExitCode.SUCCESS
    assert [line.message for line in execution.logs] == ["raw"]


def test_logs_past_the_limit_are_cut_with_a_notice() -> None:
    engine = ProcessEngine(log_max_bytes=100)
    expression = (
        "fn(lambda state: [print(f'line {n:04}') for n in range(1000)] and state)"
    )

    execution = engine.execute(job(expression), STATE, 10)

    messages = [line.message for line in execution.logs]
    assert messages[:2] == ["line 0000", "line 0001"]
    assert messages[-1] == "[log truncated: the run wrote more than 100 bytes]"
    assert sum(len(message) + 1 for message in messages[:-1]) <= 100


def test_cap_logs_keeps_everything_within_the_limit() -> None:
    lines = [LogLine(at=datetime.now(UTC), message="ab")]

    assert cap_logs(lines, 3) == lines


def test_sys_exit_in_an_operation_is_an_uncaught_error(engine: ProcessEngine) -> None:
    execution = engine.execute(
        job("import sys\nfn(lambda state: sys.exit(3))"), STATE, 10
    )

    assert execution.exit_code == ExitCode.UNCAUGHT_ERROR
    assert execution.error == "SystemExit at line 2: 3"


def test_a_child_that_dies_without_a_result_is_an_uncaught_error(
    engine: ProcessEngine,
) -> None:
    execution = engine.execute(
        job("import os\nfn(lambda state: os._exit(4))"), STATE, 10
    )

    assert execution.exit_code == ExitCode.UNCAUGHT_ERROR
    assert execution.error == "the run's process exited with status 4 before finishing"


def test_a_child_killed_by_a_signal_is_an_uncaught_error(
    engine: ProcessEngine,
) -> None:
    expression = (
        "import os, signal\nfn(lambda state: os.kill(os.getpid(), signal.SIGTERM))"
    )

    execution = engine.execute(job(expression), STATE, 10)

    assert execution.exit_code == ExitCode.UNCAUGHT_ERROR
    assert execution.error == "the run's process was killed by SIGTERM"


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("fn(lambda state: [state])", "the final state is a list"),
        ("fn(lambda state: {'x': object()})", "the final state is not JSON"),
        ("fn(lambda state: {'x': float('nan')})", "the final state is not JSON"),
    ],
)
def test_a_final_state_that_is_not_a_json_object_is_a_platform_error(
    engine: ProcessEngine, expression: str, problem: str
) -> None:
    execution = engine.execute(job(expression), STATE, 10)

    assert execution.exit_code == ExitCode.PLATFORM_ERROR
    assert execution.error is not None
    assert execution.error.startswith(problem)
    assert execution.final_state is None


def test_the_state_given_to_the_engine_is_left_untouched(engine: ProcessEngine) -> None:
    state = {"data": {"items": [1]}}

    engine.execute(
        job("fn(lambda state: state['data']['items'].append(2) or state)"), state, 10
    )

    assert state == {"data": {"items": [1]}}


def test_a_job_version_is_compiled_once(engine: ProcessEngine) -> None:
    spec = job("fn(lambda state: state)")

    assert engine.compiled(spec) is engine.compiled(spec)
