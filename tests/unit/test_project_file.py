"""project.yaml is read into jobs and triggers, or refused naming file, job and line."""

from __future__ import annotations

import pytest

from shared.errors import InvalidProjectError
from shared.model import TriggerKind
from shared.project_file import parse_project

REFERENCE = """\
jobs:
  register-patient:
    trigger: new-registration
    adaptor: common
    credential: openmrs
    expression: |
      fn(lambda state: state)
  notify-on-failure:
    trigger: registration-failed
    adaptor: common
    expression: |
      fn(lambda state: {**state, "alert": True})
triggers:
  new-registration:
    criteria: '{"form": {"@name": "Registration"}}'
    exclusion: '{"form": {"test": true}}'
  nightly:
    cron: "0 23 * * 5"
  registration-failed:
    failure: register-patient
  registration-done:
    success: register-patient
credentials:
  openmrs:
    base_url: https://openmrs.example.org
    username: admin
    password: "******"
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidProjectError) as caught:
        parse_project(text, "project.yaml")
    return caught.value.problems


def test_the_reference_document_is_read_with_all_four_trigger_kinds() -> None:
    document = parse_project(REFERENCE)
    kinds = {name: trigger.kind for name, trigger in document.triggers.items()}
    assert kinds == {
        "new-registration": TriggerKind.MESSAGE,
        "nightly": TriggerKind.CRON,
        "registration-failed": TriggerKind.FAILURE,
        "registration-done": TriggerKind.SUCCESS,
    }
    assert document.triggers["new-registration"].criteria == {
        "form": {"@name": "Registration"}
    }
    assert document.triggers["registration-failed"].upstream_job == "register-patient"
    assert document.jobs["register-patient"].credential == "openmrs"


def test_criteria_may_be_written_as_yaml_mappings() -> None:
    text = REFERENCE.replace(
        """criteria: '{"form": {"@name": "Registration"}}'""",
        """criteria: {form: {"@name": Registration}}""",
    )
    assert parse_project(text).triggers["new-registration"].criteria == {
        "form": {"@name": "Registration"}
    }


def test_a_syntax_error_names_the_file_the_job_and_the_line() -> None:
    text = REFERENCE.replace(
        "      fn(lambda state: state)\n",
        "      fn(lambda state: state)\n      fn(lambda state: state\n",
    )
    [problem] = problems_of(text)
    assert problem.startswith("project.yaml:8: job 'register-patient'")


def test_invalid_yaml_names_the_line() -> None:
    [problem] = problems_of("jobs:\n  a: [unclosed\n")
    assert problem.startswith("project.yaml:3: invalid YAML")


def test_criteria_that_are_not_json_are_refused_with_the_trigger_name() -> None:
    [problem] = problems_of(
        REFERENCE.replace('\'{"form": {"test": true}}\'', "'{nope'")
    )
    assert "trigger 'new-registration': exclusion is not valid JSON" in problem
    assert problem.startswith("project.yaml:16:")


def test_a_job_naming_a_missing_trigger_is_refused() -> None:
    [problem] = problems_of(
        REFERENCE.replace("trigger: new-registration", "trigger: nope")
    )
    assert "job 'register-patient': no trigger named 'nope'" in problem


def test_a_trigger_must_have_exactly_one_kind() -> None:
    [problem] = problems_of(
        REFERENCE.replace(
            'cron: "0 23 * * 5"', 'cron: "0 23 * * 5"\n    success: register-patient'
        )
    )
    assert "trigger 'nightly': give exactly one of" in problem


def test_a_flow_trigger_must_name_an_existing_job() -> None:
    [problem] = problems_of(
        REFERENCE.replace("success: register-patient", "success: ghost")
    )
    assert "trigger 'registration-done': no job named 'ghost'" in problem


def test_unknown_keys_are_refused_with_their_place() -> None:
    [problem] = problems_of(
        REFERENCE.replace(
            "    adaptor: common\n    credential",
            "    adapter: common\n    credential",
            1,
        )
    )
    assert "job 'register-patient' adapter" in problem
    assert problem.startswith("project.yaml:4:")


def test_an_empty_document_is_an_empty_project() -> None:
    assert parse_project("").jobs == {}


def test_criteria_holding_yaml_dates_are_refused() -> None:
    [problem] = problems_of(
        REFERENCE.replace(
            """criteria: '{"form": {"@name": "Registration"}}'""",
            "criteria: {visit: 2026-01-01}",
        )
    )
    assert "trigger 'new-registration': criteria must be JSON" in problem


def test_flow_and_catch_triggers_that_loop_are_refused() -> None:
    text = """\
jobs:
  a:
    trigger: after-b
    expression: "fn(lambda s: s)"
  b:
    trigger: a-failed
    expression: "fn(lambda s: s)"
triggers:
  after-b:
    success: b
  a-failed:
    failure: a
"""
    [problem] = problems_of(text)
    assert "jobs a -> b -> a form a loop" in problem


def test_an_unknown_time_zone_is_refused() -> None:
    [problem] = problems_of("timezone: Mars/Olympus\n")
    assert "timezone 'Mars/Olympus' is not known" in problem
