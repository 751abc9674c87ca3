"""Aborting runs: the switch, the runner's registry, and real workers killed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.dispatcher.planning import plan_chained_runs
from services.runner.aborts import (
    AbortRequests,
    AbortSwitch,
    AbortWatch,
    RunningRuns,
)
from services.runner.engine import ProcessEngine
from shared.events import RunFinished, TriggerRef
from shared.model import (
    ExitCode,
    Job,
    JobState,
    Project,
    RunOrigin,
    RunStatus,
    Trigger,
    TriggerKind,
    abort_error,
    job_state_for,
    status_for_exit,
)
from tests.unit.test_worker_pool import job

STATE = {"data": {"n": 0}}


@pytest.fixture(scope="module")
def engine() -> Iterator[ProcessEngine]:
    with ProcessEngine(workers=1) as started:
        yield started


def test_a_pulled_switch_calls_its_handler_once() -> None:
    calls: list[str] = []
    switch = AbortSwitch()
    switch.connect(calls.append)

    assert switch.pull("by ada") is True
    assert switch.pull("by grace") is False
    assert calls == ["by ada"]
    assert switch.reason == "by ada"


def test_a_switch_pulled_before_it_is_connected_calls_the_handler_on_connect() -> None:
    calls: list[str] = []
    switch = AbortSwitch()
    switch.pull("by ada")

    switch.connect(calls.append)

    assert calls == ["by ada"]


def test_a_disconnected_handler_is_not_called() -> None:
    calls: list[str] = []
    switch = AbortSwitch()
    switch.connect(calls.append)
    switch.disconnect()

    switch.pull("by ada")

    assert calls == []


def test_running_runs_know_only_the_runs_inside_their_block() -> None:
    runs = RunningRuns()
    run_id = uuid.uuid4()

    with runs.running(run_id) as switch:
        assert runs.ids() == [run_id]
        assert runs.pull(run_id, "by ada") is True
        assert runs.pull(run_id, "by ada") is False
        assert switch.reason == "by ada"

    assert runs.ids() == []
    assert runs.pull(run_id, "by ada") is False


class FixedRequests(AbortRequests):
    """Abort requests from a dict, and the ids each check asked about."""

    def __init__(self, requests: dict[uuid.UUID, str]) -> None:
        self._requests = requests
        self.asked: list[list[uuid.UUID]] = []

    def requested(self, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        self.asked.append(run_ids)
        return {i: who for i, who in self._requests.items() if i in run_ids}


def test_the_watch_stops_only_requested_runs_and_asks_nothing_when_idle() -> None:
    aborted, other = uuid.uuid4(), uuid.uuid4()
    requests = FixedRequests({aborted: "ada"})
    runs = RunningRuns()
    watch = AbortWatch(requests, runs)

    assert watch.check() == 0
    assert requests.asked == []
    with runs.running(aborted) as first, runs.running(other) as second:
        assert watch.check() == 1
        assert watch.check() == 0
        assert first.reason == abort_error("ada")
        assert second.reason is None


def test_an_aborted_run_is_killed_with_exit_code_6_and_keeps_its_log(
    engine: ProcessEngine,
) -> None:
    expression = (
        "import time\n"
        "def wait(state):\n"
        "    print('waiting', flush=True)\n"
        "    time.sleep(60)\n"
        "fn(wait)\n"
    )
    switch = AbortSwitch()
    puller = threading.Timer(1.0, switch.pull, args=("the run was aborted by ada",))
    puller.start()

    aborted = engine.execute(job(expression), STATE, 30, abort=switch)
    after = engine.execute(job("fn(lambda state: {'ok': True})"), STATE, 10)

    assert aborted.exit_code == ExitCode.ABORTED
    assert aborted.error == "the run was aborted by ada"
    assert aborted.final_state is None
    assert [line.message for line in aborted.logs] == ["waiting"]
    assert after.exit_code == ExitCode.SUCCESS
    assert after.final_state == {"ok": True}


def test_a_run_aborted_before_it_reaches_a_worker_does_not_run(
    engine: ProcessEngine, tmp_path: Path
) -> None:
    mark = tmp_path / "ran"
    switch = AbortSwitch()
    switch.pull("the run was aborted by ada")

    execution = engine.execute(
        job(f"fn(lambda state: open({str(mark)!r}, 'w') and state)"),
        STATE,
        10,
        abort=switch,
    )

    assert execution.exit_code == ExitCode.ABORTED
    assert execution.logs == []
    assert not mark.exists()


def test_a_switch_pulled_after_the_run_answered_leaves_its_result(
    engine: ProcessEngine,
) -> None:
    switch = AbortSwitch()

    done = engine.execute(job("fn(lambda state: {'n': 1})"), STATE, 10, abort=switch)
    switch.pull("too late")
    after = engine.execute(job("fn(lambda state: {'n': 2})"), STATE, 10)

    assert (done.exit_code, done.final_state) == (ExitCode.SUCCESS, {"n": 1})
    assert (after.exit_code, after.final_state) == (ExitCode.SUCCESS, {"n": 2})


def test_exit_code_6_is_the_aborted_status_and_a_failed_job_state() -> None:
    assert status_for_exit(ExitCode.ABORTED) is RunStatus.ABORTED
    assert job_state_for(RunStatus.ABORTED) is JobState.FAILURE


def test_an_aborted_run_starts_no_catch_job() -> None:
    project_id = uuid.uuid4()
    catch = Trigger(
        id=uuid.uuid4(), name="on-fail", kind=TriggerKind.FAILURE, upstream_job="a"
    )
    project = Project(
        id=project_id,
        name="p",
        inbox_id=uuid.uuid4(),
        revision=1,
        jobs=(
            Job(
                id=uuid.uuid4(),
                name="b",
                trigger="on-fail",
                adaptor="common",
                expression="fn(lambda s: s)",
                version="1",
            ),
        ),
        triggers=(catch,),
    )
    now = datetime.now(UTC)

    def finished(code: ExitCode) -> RunFinished:
        return RunFinished(
            run_id=uuid.uuid4(),
            project_id=project_id,
            job_id=uuid.uuid4(),
            job_name="a",
            trigger=TriggerRef(id=uuid.uuid4(), name="t", kind=TriggerKind.MESSAGE),
            message_id=None,
            started_at=now,
            runner="r",
            origin=RunOrigin.MESSAGE,
            finished_at=now,
            exit_code=code,
            status=status_for_exit(code),
        )

    assert plan_chained_runs(project, finished(ExitCode.ABORTED), now) == []
    assert len(plan_chained_runs(project, finished(ExitCode.JOB_ERROR), now)) == 1
