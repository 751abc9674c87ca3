"""The process engine, running jobs on real warm worker processes."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.runner.engine import ProcessEngine, cap_logs
from shared.adaptors import adaptor_version
from shared.events import JobSpec, LogLine
from shared.model import ExitCode

STATE = {"data": {"name": "Ada", "items": [1, 2]}}
MiB = 1024 * 1024
TEST_MEMORY_LIMIT_BYTES = 256 * MiB


def job(expression: str, adaptor: str = "common") -> JobSpec:
    return JobSpec(
        id=uuid.uuid4(),
        name="test-job",
        version="1",
        adaptor=adaptor,
        expression=expression,
    )


@pytest.fixture(scope="module")
def engine() -> Iterator[ProcessEngine]:
    with ProcessEngine(
        workers=2,
        memory_limit_bytes=TEST_MEMORY_LIMIT_BYTES,
        state_max_bytes=4096,
        log_max_bytes=1000,
    ) as started:
        yield started


def test_a_successful_run_gives_the_final_state(engine: ProcessEngine) -> None:
    expression = (
        'fn(lambda state: {**state, "greeting": "hi " + state["data"]["name"]})'
    )

    execution = engine.execute(job(expression), STATE, timeout_s=10)

    assert execution.exit_code == ExitCode.SUCCESS
    assert execution.final_state == {**STATE, "greeting": "hi Ada"}
    assert execution.error is None
    assert execution.adaptor == "common"
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


def test_a_run_that_overstays_its_timeout_is_killed_and_the_next_run_succeeds(
    engine: ProcessEngine,
) -> None:
    expression = (
        "def spin(state):\n"
        "    print('spinning', flush=True)\n"
        "    while True:\n"
        "        pass\n"
        "fn(spin)\n"
    )

    timed_out = engine.execute(job(expression), STATE, timeout_s=1)
    after = [engine.execute(job("fn(lambda state: state)"), STATE, 10) for _ in "ab"]

    assert timed_out.exit_code == ExitCode.TIMEOUT
    assert timed_out.error == "the run did not finish within 1 s"
    assert timed_out.final_state is None
    assert [line.message for line in timed_out.logs] == ["spinning"]
    assert [execution.exit_code for execution in after] == [ExitCode.SUCCESS] * 2


def test_output_of_a_job_killed_in_c_code_is_kept(engine: ProcessEngine) -> None:
    expression = (
        "import os, time\n"
        "fn(lambda state: os.write(1, b'raw\\n') and print('printed') or "
        "time.sleep(60))\n"
    )

    execution = engine.execute(job(expression), STATE, timeout_s=1)

    assert execution.exit_code == ExitCode.TIMEOUT
    assert [line.message for line in execution.logs] == ["printed", "raw"]


@pytest.mark.parametrize(
    "expression",
    [
        'fn(lambda state: {**state, "x": bytearray(2 * 1024**3)})',
        "def grow(state):\n"
        "    chunks = []\n"
        "    while True:\n"
        "        chunks.append(bytearray(10 * 1024 * 1024))\n"
        "fn(grow)\n",
        "hoard = [bytearray(10 * 1024 * 1024) for _ in range(1000)]\n"
        "fn(lambda state: state)\n",
    ],
    ids=["at-once", "gradually", "while-setting-up"],
)
def test_a_run_that_allocates_without_bound_is_out_of_memory(
    engine: ProcessEngine, expression: str
) -> None:
    execution = engine.execute(job(expression), STATE, timeout_s=30)
    after = engine.execute(job("fn(lambda state: state)"), STATE, 10)

    assert execution.exit_code == ExitCode.OUT_OF_MEMORY
    assert execution.error is not None
    assert execution.error.startswith(
        f"the run went over its memory limit of {TEST_MEMORY_LIMIT_BYTES} bytes: "
        "MemoryError at line"
    )
    assert execution.final_state is None
    assert after.exit_code == ExitCode.SUCCESS


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
    assert execution.adaptor == "nope"


def test_prints_and_log_operations_are_in_the_logs_in_order(
    engine: ProcessEngine,
) -> None:
    expression = (
        "import sys\n"
        "greeting = print('setting up')\n"
        "def shout(state):\n"
        "    print('to stdout')\n"
        "    print('to stderr', file=sys.stderr)\n"
        "    sys.stdout.write('no newline')\n"
        "    return state\n"
        "fn(shout)\n"
        "log('name is', data_value('$.name'))\n"
    )

    execution = engine.execute(job(expression), STATE, 10)

    assert [line.message for line in execution.logs] == [
        "setting up",
        "to stdout",
        "to stderr",
        "no newlinename is Ada",
    ]


def test_output_written_straight_to_the_descriptors_is_in_the_logs(
    engine: ProcessEngine,
) -> None:
    expression = "import os\nfn(lambda state: os.write(2, b'raw\\n') and state)\n"

    first = engine.execute(job(expression), STATE, 10)
    second = engine.execute(job("fn(lambda state: state)"), STATE, 10)

    assert first.exit_code == ExitCode.SUCCESS
    assert [line.message for line in first.logs] == ["raw"]
    assert second.logs == []


def test_logs_past_the_limit_are_cut_with_a_notice(engine: ProcessEngine) -> None:
    expression = (
        "fn(lambda state: [print(f'line {n:04}') for n in range(1000)] and state)"
    )

    execution = engine.execute(job(expression), STATE, 10)

    messages = [line.message for line in execution.logs]
    assert messages[:2] == ["line 0000", "line 0001"]
    assert messages[-1] == "[log truncated: the run wrote more than 1000 bytes]"
    assert sum(len(message) + 1 for message in messages[:-1]) <= 1000


def test_a_single_line_past_the_limit_is_cut_with_a_notice(
    engine: ProcessEngine,
) -> None:
    execution = engine.execute(job("fn(lambda s: print('x' * 5000) or s)"), STATE, 10)

    assert [line.message for line in execution.logs] == [
        "[log truncated: the run wrote more than 1000 bytes]"
    ]


def test_cap_logs_keeps_everything_within_the_limit() -> None:
    lines = [LogLine(at=datetime.now(UTC), message="ab")]

    assert cap_logs(lines, 3) == lines


def test_cap_logs_adds_the_notice_when_lines_were_dropped_before() -> None:
    lines = [LogLine(at=datetime.now(UTC), message="ab")]

    capped = cap_logs(lines, 3, truncated=True)

    assert [line.message for line in capped] == [
        "ab",
        "[log truncated: the run wrote more than 3 bytes]",
    ]


def test_sys_exit_in_an_operation_is_an_uncaught_error(engine: ProcessEngine) -> None:
    execution = engine.execute(
        job("import sys\nfn(lambda state: sys.exit(3))"), STATE, 10
    )

    assert execution.exit_code == ExitCode.UNCAUGHT_ERROR
    assert execution.error == "SystemExit at line 2: 3"


def test_a_worker_that_dies_without_a_result_is_an_uncaught_error(
    engine: ProcessEngine,
) -> None:
    execution = engine.execute(
        job("import os\nfn(lambda state: os._exit(4))"), STATE, 10
    )
    after = engine.execute(job("fn(lambda state: state)"), STATE, 10)

    assert execution.exit_code == ExitCode.UNCAUGHT_ERROR
    assert execution.error == "the run's process exited with status 4 before finishing"
    assert after.exit_code == ExitCode.SUCCESS


def test_a_worker_killed_by_a_signal_is_an_uncaught_error(
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
        ("fn(lambda state: {'x': '\\ud800'})", "the final state is not JSON"),
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


def test_an_input_state_over_the_limit_is_not_run(engine: ProcessEngine) -> None:
    state = {"data": "é" * 2100}
    size_bytes = len(json.dumps(state, ensure_ascii=False).replace(" ", "").encode())

    execution = engine.execute(job("fn(lambda state: state)"), state, 10)

    assert execution.exit_code == ExitCode.PLATFORM_ERROR
    assert execution.error == (
        f"the input state is {size_bytes} bytes, over the limit of 4096 bytes"
    )
    assert execution.final_state is None
    assert execution.logs == []


def test_an_input_state_that_is_not_json_is_not_run(engine: ProcessEngine) -> None:
    execution = engine.execute(job("fn(lambda state: state)"), {"x": {1, 2}}, 10)

    assert execution.exit_code == ExitCode.PLATFORM_ERROR
    assert execution.error is not None
    assert execution.error.startswith("the input state is not JSON: TypeError")


def test_a_final_state_over_the_limit_is_a_platform_error(
    engine: ProcessEngine,
) -> None:
    execution = engine.execute(job("fn(lambda s: {'x': 'y' * 5000})"), STATE, 10)

    assert execution.exit_code == ExitCode.PLATFORM_ERROR
    assert execution.error == (
        "the final state is 5008 bytes, over the limit of 4096 bytes"
    )
    assert execution.final_state is None


def test_a_state_at_a_failure_over_the_limit_is_not_kept_and_says_so(
    engine: ProcessEngine,
) -> None:
    expression = "fn(lambda s: {'x': 'y' * 5000})\nfn(lambda s: 1 / 0)\n"

    execution = engine.execute(job(expression), STATE, 10)

    assert execution.exit_code == ExitCode.JOB_ERROR
    assert execution.error == (
        "ZeroDivisionError at line 2: division by zero; the state at the failure "
        "is 5008 bytes, over the limit of 4096 bytes, so it was not kept"
    )
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


def test_globals_of_one_run_are_not_seen_by_the_next(engine: ProcessEngine) -> None:
    spec = job(
        "seen = globals().get('counter', 0)\n"
        "counter = seen + 1\n"
        "import os\n"
        "previous = os.environ.get('LEFT_BY_JOB')\n"
        "os.environ['LEFT_BY_JOB'] = 'yes'\n"
        "fn(lambda state: {'seen': seen, 'previous': previous})\n"
    )

    # More runs than workers, so that at least one worker serves it twice.
    executions = [engine.execute(spec, STATE, 10) for _ in range(3)]

    assert [execution.final_state for execution in executions] == [
        {"seen": 0, "previous": None}
    ] * 3


def test_a_run_works_in_a_fresh_directory_that_is_removed_after(
    engine: ProcessEngine,
) -> None:
    spec = job(
        "import os, tempfile\n"
        "def look(state):\n"
        "    open('left-behind.txt', 'w').write('x')\n"
        "    return {'cwd': os.getcwd(), 'files': os.listdir('.'),\n"
        "            'home': os.environ['HOME'], 'tmp': tempfile.gettempdir()}\n"
        "fn(look)\n"
    )

    first = engine.execute(spec, STATE, 10).final_state
    second = engine.execute(spec, STATE, 10).final_state

    assert first is not None
    assert second is not None
    assert first["files"] == second["files"] == ["left-behind.txt"]
    assert first["cwd"] != second["cwd"]
    assert first["home"] == first["tmp"] == first["cwd"]
    assert not Path(first["cwd"]).exists()
    assert not Path(second["cwd"]).exists()


def test_a_job_sees_none_of_the_runners_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENFN_DATABASE_URL", "postgresql://runner:s3cret@db/openfn")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.not-for-jobs")
    expression = (
        "import os\n"
        "fn(lambda s: {**s, 'env': dict(os.environ),\n"
        "              'initial': open('/proc/self/environ').read()})\n"
    )

    with ProcessEngine(workers=1, worker_env={"TZ": "UTC"}) as engine:
        execution = engine.execute(job(expression), {}, 10)

    assert execution.final_state is not None
    environment = execution.final_state["env"]
    assert set(environment) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "TZ"}
    assert environment["TZ"] == "UTC"
    assert "s3cret" not in execution.final_state["initial"]
    assert "hvs.not-for-jobs" not in execution.final_state["initial"]


def test_a_credential_is_the_runs_configuration_and_is_masked_everywhere(
    engine: ProcessEngine,
) -> None:
    credential = {"username": "admin", "password": "pa55word", "nested": ["tok3n"]}
    basic = base64.b64encode(b"admin:pa55word").decode()
    expression = (
        "import base64\n"
        "def show(state):\n"
        "    password = state['configuration']['password']\n"
        "    print('password is', password)\n"
        "    print('encoded', base64.b64encode(password.encode()).decode())\n"
        "    token = base64.urlsafe_b64encode(b'tok3n').decode()\n"
        "    print('url-safe', token.rstrip('='))\n"
        "    print('basic', base64.b64encode(b'admin:pa55word').decode())\n"
        "    print('short values stay:', state['configuration']['username'][:3])\n"
        "    return {**state, 'seen': True}\n"
        "fn(show)\n"
        "fn(lambda state: int(state['configuration']['password']))\n"
    )

    execution = engine.execute(job(expression), STATE, 10, credential)

    messages = [line.message for line in execution.logs]
    assert messages == [
        "password is ***",
        "encoded ***",
        "url-safe ***",
        "basic ***",
        "short values stay: adm",
    ]
    assert execution.exit_code == ExitCode.JOB_ERROR
    assert execution.error == (
        "ValueError at line 12: invalid literal for int() with base 10: '***'"
    )
    assert execution.final_state == {**STATE, "seen": True}
    assert basic not in json.dumps(messages)


def test_the_configuration_is_removed_from_the_final_state(
    engine: ProcessEngine,
) -> None:
    credential = {"api_key": "k-123456"}

    execution = engine.execute(
        job("fn(lambda s: {**s, 'key_length': len(s['configuration']['api_key'])})"),
        STATE,
        10,
        credential,
    )

    assert execution.final_state == {**STATE, "key_length": 8}
