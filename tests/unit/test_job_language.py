"""The job language: compiling expressions and building their operations."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from shared.errors import JobBuildError, JobSyntaxError, PlatformError
from shared.job_language import (
    CompiledJob,
    StepKind,
    build_operations,
    compile_job,
    job_line_of,
)
from shared.model import JsonObject

FILENAME = "<job test>"


def identity(state: JsonObject) -> JsonObject:
    return state


def run(job: CompiledJob, state: JsonObject, **exports: Any) -> JsonObject:
    for _, operation in build_operations(job, exports):
        state = operation(state)
    return state


def test_a_syntax_error_reports_its_line_within_the_expression() -> None:
    source = "fn(identity)\n\nfn(lambda state: state[)\n"

    with pytest.raises(JobSyntaxError) as raised:
        compile_job(source, FILENAME)

    assert raised.value.line == 3
    assert isinstance(raised.value, PlatformError)
    assert str(raised.value).startswith("SyntaxError at line 3:")


def test_a_statement_only_the_compiler_refuses_reports_its_line() -> None:
    with pytest.raises(JobSyntaxError) as raised:
        compile_job("fn(identity)\nreturn 1\n", FILENAME)

    assert raised.value.line == 2
    assert "outside function" in raised.value.message


def test_a_job_without_operations_is_refused() -> None:
    with pytest.raises(JobSyntaxError, match="the job has no operations"):
        compile_job("import json\nx = 1\n", FILENAME)


def test_an_empty_job_is_refused() -> None:
    with pytest.raises(JobSyntaxError, match="no operations"):
        compile_job("", FILENAME)


def test_a_leading_docstring_is_not_an_operation() -> None:
    job = compile_job('"""Say hello."""\nfn(identity)\n', FILENAME)

    assert [step.kind for step in job.steps] == [StepKind.SETUP, StepKind.OPERATION]


def test_set_up_statements_run_before_and_between_operations() -> None:
    source = """
import json

def add(key):
    return lambda state: {**state, key: json.dumps(len(state))}

first = "a"
add(first)
second = "b"
add(second)
"""
    job = compile_job(source, FILENAME)

    assert run(job, {}) == {"a": "0", "b": "1"}


def test_operations_apply_in_order_with_the_adaptor_exports_in_scope() -> None:
    job = compile_job("fn(double)\nfn(double)\n", FILENAME)

    def double(state: JsonObject) -> JsonObject:
        return {"n": state["n"] * 2}

    assert run(job, {"n": 3}, fn=lambda operation: operation, double=double) == {
        "n": 12
    }


def test_operations_carry_the_line_that_created_them() -> None:
    job = compile_job("x = 1\n\nfn(identity)\nfn(identity)\n", FILENAME)

    operations = build_operations(job, {"fn": identity, "identity": identity})

    assert [line for line, _ in operations] == [3, 4]


def test_an_expression_that_is_not_an_operation_is_a_build_error_at_its_line() -> None:
    job = compile_job("fn(identity)\n1 + 1\n", FILENAME)

    with pytest.raises(JobBuildError) as raised:
        build_operations(job, {"fn": identity, "identity": identity})

    assert raised.value.line == 2
    assert str(raised.value) == (
        "TypeError at line 2: expected an operation (a function of state), found int"
    )


def test_a_top_level_call_made_for_its_effect_suggests_fn() -> None:
    job = compile_job("print()\n", FILENAME)

    with pytest.raises(JobBuildError, match=r"wrap it in fn\("):
        build_operations(job, {})


def test_a_set_up_statement_that_raises_is_a_build_error_at_its_line() -> None:
    job = compile_job("fn(identity)\nvalue = missing\n", FILENAME)

    with pytest.raises(JobBuildError) as raised:
        build_operations(job, {"fn": identity, "identity": identity})

    assert str(raised.value) == "NameError at line 2: name 'missing' is not defined"


def test_the_job_line_of_an_error_is_the_innermost_job_frame() -> None:
    source = "def fail(state):\n    raise ValueError('bad')\n\nfn(fail)\n"
    job = compile_job(source, FILENAME)
    [(_, operation)] = build_operations(job, {"fn": identity})

    with pytest.raises(ValueError, match="bad") as raised:
        operation({})

    assert job_line_of(raised.value, job) == 2


def test_an_error_raised_outside_the_job_has_no_job_line() -> None:
    job = compile_job("fn(identity)\n", FILENAME)

    assert job_line_of(ValueError("elsewhere"), job) is None


def test_a_compiled_job_survives_pickling() -> None:
    job = compile_job("x = 2\nfn(lambda state: {'x': x})\n", FILENAME)

    copy = pickle.loads(pickle.dumps(job))

    assert run(copy, {}, fn=identity) == {"x": 2}
