"""A message asks for one run per enabled job whose message filter matches it."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from services.dispatcher.planning import message_run_id, plan_message_runs
from shared.model import Job, Project, Trigger, TriggerKind, project_scoped_id

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
