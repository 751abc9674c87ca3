"""The job language: Python source whose top-level expressions are operations.

A job is compiled once per version (:func:`compile_job`, also run at deploy to
refuse broken jobs) and turned into its list of operations once per run
(:func:`build_operations`), inside the process that runs it.
"""

from __future__ import annotations

import ast
import marshal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import CodeType, TracebackType
from typing import Any, NamedTuple

from shared.errors import JobBuildError, JobSyntaxError
from shared.model import JsonObject

Operation = Callable[[JsonObject], JsonObject]
"""A step of a job: takes the state and returns the next state."""


class StepKind(StrEnum):
    """What a top-level statement of a job is for."""

    SETUP = "setup"
    OPERATION = "operation"


@dataclass(frozen=True)
class Step:
    """One top-level statement of a job, compiled.

    An operation step is compiled in ``eval`` mode so that running it yields
    the operation; a set-up step in ``exec`` mode.
    """

    line: int
    kind: StepKind
    code: CodeType

    def __reduce__(self) -> tuple[Any, ...]:
        # Code objects do not pickle, and a compiled job crosses into the
        # process that runs it; both ends are the same interpreter, which is
        # what marshal requires.
        return (_load_step, (self.line, self.kind, marshal.dumps(self.code)))


def _load_step(line: int, kind: StepKind, code: bytes) -> Step:
    loaded = marshal.loads(code)  # noqa: S302 - bytes come from Step.__reduce__
    return Step(line, kind, loaded)


@dataclass(frozen=True)
class CompiledJob:
    """A job's expression, parsed and compiled once; picklable."""

    filename: str
    source: str
    steps: tuple[Step, ...]


class BoundOperation(NamedTuple):
    """An operation of a run, with the job line that created it."""

    line: int
    operation: Operation


def compile_job(source: str, filename: str) -> CompiledJob:
    """Compile a job's expression.

    Args:
        source: The expression, Python source.
        filename: The name tracebacks give the job's frames; also how
            :func:`job_line_of` recognises them.

    Returns:
        The compiled job, to be cached per job version.

    Raises:
        JobSyntaxError: The source does not compile, or it has no operation.
    """
    try:
        module = ast.parse(source, filename)
        steps = tuple(
            _compile_statement(statement, filename, is_first=index == 0)
            for index, statement in enumerate(module.body)
        )
    except SyntaxError as error:
        raise JobSyntaxError(error.lineno or 1, error.msg) from error
    except (ValueError, RecursionError) as error:
        raise JobSyntaxError(1, str(error) or type(error).__name__) from error

    if not any(step.kind is StepKind.OPERATION for step in steps):
        raise JobSyntaxError(1, "the job has no operations")
    return CompiledJob(filename, source, steps)


def _compile_statement(statement: ast.stmt, filename: str, *, is_first: bool) -> Step:
    if isinstance(statement, ast.Expr) and not (is_first and _is_docstring(statement)):
        code = compile(ast.Expression(statement.value), filename, "eval")
        return Step(statement.lineno, StepKind.OPERATION, code)

    module = ast.Module([statement], type_ignores=[])
    return Step(statement.lineno, StepKind.SETUP, compile(module, filename, "exec"))


def _is_docstring(statement: ast.Expr) -> bool:
    return isinstance(statement.value, ast.Constant) and isinstance(
        statement.value.value, str
    )


def build_operations(
    job: CompiledJob, exports: Mapping[str, object]
) -> list[BoundOperation]:
    """Run a job's top-level statements and collect its operations, in order.

    Args:
        job: The compiled job.
        exports: What the job's adaptor exports, by name.

    Returns:
        The operations, each with the line that created it.

    Raises:
        JobBuildError: A statement raised, or an expression did not give an
            operation. Exceptions that are not ``Exception`` (``SystemExit``)
            propagate unchanged.
    """
    namespace: dict[str, Any] = {"__name__": "__job__", **exports}
    operations: list[BoundOperation] = []
    for step in job.steps:
        try:
            value = _run_step(step, namespace)
        except Exception as error:
            raise JobBuildError(step.line, type(error).__name__, str(error)) from error

        if step.kind is StepKind.SETUP:
            continue
        if not callable(value):
            raise JobBuildError(step.line, "TypeError", _not_an_operation(value))
        operations.append(BoundOperation(step.line, value))
    return operations


def _not_an_operation(value: object) -> str:
    message = (
        f"expected an operation (a function of state), found {type(value).__name__}"
    )
    if value is None:
        # Nearly always a call made for its effect, such as print(), at top level.
        message += "; to do something on each run, wrap it in fn(lambda state: ...)"
    return message


def _run_step(step: Step, namespace: dict[str, Any]) -> object:
    if step.kind is StepKind.OPERATION:
        return eval(step.code, namespace)  # noqa: S307 - running the job is the point
    exec(step.code, namespace)  # noqa: S102 - running the job is the point
    return None


def job_line_of(error: BaseException, job: CompiledJob) -> int | None:
    """The job line nearest to where ``error`` was raised, if the job's code
    was on the stack at all."""
    line = None
    traceback: TracebackType | None = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == job.filename:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
