"""A message asks for one run per enabled job whose message filter matches it."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from services.dispatcher.planning import (
    message_run_id,
    plan_chained_runs,
    plan_message_runs,
)
from shared.events import RunFinished, TriggerRef
from shared.model import (
    Job,
    Project,
    RunOrigin,
    RunStatus,
    Trigger,
    TriggerKind,
    project_scoped_id,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_project(*, enabled: bool = True) -> Project:
    pid = uuid4()
    triggers = (
        Trigger(
            id=uuid4(),
            name="referral",
            kind=TriggerKind.MESSAGE,
            criteria={"form": "referral"},
            exclusion={"test": True},
        ),
        Trigger(
            id=uuid4(),
            name="any-form",
            kind=TriggerKind.MESSAGE,
            criteria={"form": "referral"},
        ),
        Trigger(
            id=uuid4(), name="after", kind=TriggerKind.SUCCESS, upstream_job="register"
        ),
    )

    def job(name: str, trigger: str, is_enabled: bool = True) -> Job:
        return Job(
            id=project_scoped_id(pid, "job", name),
            name=name,
            trigger=trigger,
            adaptor="common",
            expression="fn(lambda s: s)",
            enabled=is_enabled,
            version="v1",
        )

    jobs = (
        job("register", "referral"),
        job("audit", "any-form", enabled),
        job("follow-up", "after"),
    )
    return Project(
        id=pid, name="p", inbox_id=uuid4(), revision=1, jobs=jobs, triggers=triggers
    )


def test_each_matching_job_gets_one_request_with_the_body_as_data() -> None:
    project = make_project()
    message_id = uuid4()

    requests = plan_message_runs(project, message_id, {"form": "referral"}, NOW)

    assert sorted(r.job.name for r in requests) == ["audit", "register"]
    assert all(r.input_state == {"data": {"form": "referral"}} for r in requests)
    assert all(r.message_id == message_id for r in requests)


def test_the_exclusion_filter_keeps_a_job_from_running() -> None:
    requests = plan_message_runs(
        make_project(), uuid4(), {"form": "referral", "test": True}, NOW
    )
    assert [r.job.name for r in requests] == ["audit"]


def test_a_disabled_job_does_not_run() -> None:
    requests = plan_message_runs(
        make_project(enabled=False), uuid4(), {"form": "referral"}, NOW
    )
    assert [r.job.name for r in requests] == ["register"]


def test_flow_triggers_are_not_matched_against_messages() -> None:
    requests = plan_message_runs(make_project(), uuid4(), {"form": "other"}, NOW)
    assert requests == []


def test_planning_the_same_message_again_gives_the_same_run_ids() -> None:
    project = make_project()
    message_id = uuid4()

    first = plan_message_runs(project, message_id, {"form": "referral"}, NOW)
    again = plan_message_runs(project, message_id, {"form": "referral"}, NOW)

    assert [r.run_id for r in first] == [r.run_id for r in again]
    assert first[0].run_id == message_run_id(message_id, first[0].job.id)
    assert len({r.run_id for r in first}) == len(first)


def finished_run(project: Project, status: RunStatus, **fields: object) -> RunFinished:
    register = project.job_named("register")
    assert register is not None
    values: dict[str, object] = {
        "run_id": uuid4(),
        "project_id": project.id,
        "job_id": register.id,
        "job_name": "register",
        "trigger": TriggerRef(id=None, name="referral", kind=TriggerKind.MESSAGE),
        "message_id": uuid4(),
        "started_at": NOW,
        "runner": "r",
        "finished_at": NOW,
        "exit_code": 0 if status is RunStatus.SUCCEEDED else 1,
        "status": status,
        "final_state": {"data": 1, "done": True},
    }
    return RunFinished.model_validate(values | fields)


def test_a_success_starts_flow_jobs_from_the_final_state() -> None:
    project = make_project()
    finished = finished_run(project, RunStatus.SUCCEEDED)

    [request] = plan_chained_runs(project, finished, NOW)

    assert request.job.name == "follow-up"
    assert request.input_state == {"data": 1, "done": True}
    assert request.message_id == finished.message_id
    assert (request.origin, request.chain_depth) == (RunOrigin.FLOW, 1)
    assert request.run_id == plan_chained_runs(project, finished, NOW)[0].run_id


def test_a_failure_starts_no_flow_job() -> None:
    project = make_project()
    assert (
        plan_chained_runs(project, finished_run(project, RunStatus.FAILED), NOW) == []
    )


def test_a_catch_job_gets_the_input_when_the_run_left_no_state() -> None:
    project = make_project()
    catch = Trigger(
        id=uuid4(), name="failed", kind=TriggerKind.FAILURE, upstream_job="register"
    )
    catcher = Job(
        id=uuid4(),
        name="catcher",
        trigger="failed",
        adaptor="common",
        expression="fn(lambda s: s)",
        version="v1",
    )
    project = project.model_copy(
        update={
            "jobs": (*project.jobs, catcher),
            "triggers": (*project.triggers, catch),
        }
    )
    finished = finished_run(
        project,
        RunStatus.TIMED_OUT,
        exit_code=2,
        final_state=None,
        input_state={"data": "in"},
        error="timed out",
    )

    [request] = plan_chained_runs(project, finished, NOW)

    assert request.origin is RunOrigin.CATCH
    assert request.input_state["data"] == "in"
    assert request.input_state["error"]["exit_code"] == 2
    assert request.input_state["error"]["status"] == "timed_out"


def test_reprocessing_gives_new_run_ids_once_per_reprocessing() -> None:
    project = make_project()
    message_id, reprocess_id = uuid4(), uuid4()

    first = plan_message_runs(project, message_id, {"form": "referral"}, NOW)
    again = plan_message_runs(
        project, message_id, {"form": "referral"}, NOW, reprocess_id
    )
    same = plan_message_runs(
        project, message_id, {"form": "referral"}, NOW, reprocess_id
    )

    assert {r.run_id for r in first}.isdisjoint({r.run_id for r in again})
    assert [r.run_id for r in again] == [r.run_id for r in same]
    assert all(r.origin is RunOrigin.REPROCESS for r in again)
