"""Reads project.yaml: jobs, triggers and credentials, with errors that name the
file, the job or trigger, and the line."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shared.errors import InvalidProjectError, JobSyntaxError
from shared.job_language import compile_job
from shared.model import TriggerKind

PROJECT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_TRIGGER_KEYS = ("criteria", "cron", "success", "failure")

MASK = "******"
"""A secret value in an exported project.yaml; deploy keeps the stored one."""


class JobDocument(BaseModel):
    """A job as project.yaml describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger: str
    expression: str
    adaptor: str = "common"
    credential: str | None = None
    enabled: bool = True
    retries: int = Field(default=0, ge=0, le=10)
    """Times a failure of the job's own is tried again."""


class TriggerDocument(BaseModel):
    """A trigger as project.yaml describes it: exactly one of its four kinds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    criteria: dict[str, Any] | list[Any] | None = None
    exclusion: dict[str, Any] | list[Any] | None = None
    cron: str | None = None
    success: str | None = None
    failure: str | None = None
    missed: Literal["skip", "run_once"] = "skip"
    """For a cron trigger: what to do with ticks missed while no scheduler ran."""

    @property
    def kind(self) -> TriggerKind:
        if self.criteria is not None:
            return TriggerKind.MESSAGE
        if self.cron is not None:
            return TriggerKind.CRON
        if self.success is not None:
            return TriggerKind.SUCCESS
        return TriggerKind.FAILURE

    @property
    def upstream_job(self) -> str | None:
        return self.success if self.success is not None else self.failure


class ProjectDocument(BaseModel):
    """A whole project.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, pattern=PROJECT_NAME_PATTERN)
    timezone: str = "UTC"
    """The time zone cron triggers are read in."""
    jobs: dict[str, JobDocument] = Field(default_factory=dict)
    triggers: dict[str, TriggerDocument] = Field(default_factory=dict)
    credentials: dict[
        Annotated[str, StringConstraints(pattern=PROJECT_NAME_PATTERN)], dict[str, Any]
    ] = Field(default_factory=dict)


def parse_project(text: str, filename: str = "project.yaml") -> ProjectDocument:
    """Parse and check a project.yaml; InvalidProjectError lists every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else "?"
        raise InvalidProjectError(
            [f"{filename}:{line}: invalid YAML: {exc.problem}"]
        ) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidProjectError(
            [f"{filename}:1: expected a mapping with 'jobs' and 'triggers'"]
        )
    raw = _decode_json_criteria(raw, filename, root)
    try:
        document = ProjectDocument.model_validate(raw)
    except ValidationError as exc:
        raise InvalidProjectError(
            [_describe(error, filename, root) for error in exc.errors()]
        ) from exc
    problems = (
        _check_references(document, filename, root)
        + _check_chains(document, filename)
        + _check_timezone(document, filename, root)
        + _check_expressions(document, filename, root)
    )
    if problems:
        raise InvalidProjectError(problems)
    return document


def _decode_json_criteria(
    raw: dict[str, Any], filename: str, root: yaml.Node | None
) -> dict[str, Any]:
    """Criteria may be written as JSON strings, as in the reference format."""
    triggers = raw.get("triggers")
    if not isinstance(triggers, dict):
        return raw
    problems: list[str] = []
    decoded: dict[str, Any] = {}
    for name, trigger in triggers.items():
        if not isinstance(trigger, dict):
            decoded[name] = trigger
            continue
        trigger = dict(trigger)
        for key in ("criteria", "exclusion"):
            if trigger.get(key) is not None and not isinstance(trigger[key], str):
                # YAML can hold dates and NaN, which no message body can.
                try:
                    json.dumps(trigger[key], allow_nan=False)
                except (TypeError, ValueError):
                    line = _line_of(root, ("triggers", name, key))
                    problems.append(
                        f"{filename}:{line}: trigger {name!r}: {key} must be JSON;"
                        " quote dates and special numbers"
                    )
            if isinstance(trigger.get(key), str):
                try:
                    trigger[key] = json.loads(trigger[key])
                except json.JSONDecodeError as exc:
                    line = _line_of(root, ("triggers", name, key))
                    problems.append(
                        f"{filename}:{line}: trigger {name!r}: {key} is not valid"
                        f" JSON: {exc.msg}"
                    )
        decoded[name] = trigger
    if problems:
        raise InvalidProjectError(problems)
    return {**raw, "triggers": decoded}


def _check_references(
    document: ProjectDocument, filename: str, root: yaml.Node | None
) -> list[str]:
    problems: list[str] = []
    for name, trigger in document.triggers.items():
        given = [key for key in _TRIGGER_KEYS if getattr(trigger, key) is not None]
        line = _line_of(root, ("triggers", name))
        if len(given) != 1:
            problems.append(
                f"{filename}:{line}: trigger {name!r}: give exactly one of "
                f"{', '.join(_TRIGGER_KEYS)} (found {', '.join(given) or 'none'})"
            )
        elif trigger.exclusion is not None and trigger.criteria is None:
            problems.append(
                f"{filename}:{line}: trigger {name!r}: exclusion needs criteria"
            )
        elif trigger.cron is not None and len(trigger.cron.split()) != 5:
            problems.append(
                f"{filename}:{line}: trigger {name!r}: cron needs five fields"
            )
        upstream = trigger.upstream_job
        if upstream is not None and upstream not in document.jobs:
            problems.append(
                f"{filename}:{line}: trigger {name!r}: no job named {upstream!r}"
            )
    for name, job in document.jobs.items():
        if job.trigger not in document.triggers:
            line = _line_of(root, ("jobs", name, "trigger"))
            problems.append(
                f"{filename}:{line}: job {name!r}: no trigger named {job.trigger!r}"
            )
    return problems


def _check_chains(document: ProjectDocument, filename: str) -> list[str]:
    """Refuse flow and catch triggers that lead a job back to itself."""
    downstream: dict[str, list[str]] = {}
    for name, job in document.jobs.items():
        trigger = document.triggers.get(job.trigger)
        if trigger is not None and trigger.upstream_job is not None:
            downstream.setdefault(trigger.upstream_job, []).append(name)
    loops: list[str] = []
    for start in sorted(downstream):
        loop = _loop_from(start, downstream)
        if loop is not None and loop[0] == min(loop[:-1]):
            loops.append(
                f"{filename}: jobs {' -> '.join(loop)} form a loop of flow or catch"
                " triggers"
            )
    return loops


def _loop_from(start: str, downstream: dict[str, list[str]]) -> list[str] | None:
    """A path from ``start`` back to itself, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for nxt in downstream.get(name, []):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def _check_timezone(
    document: ProjectDocument, filename: str, root: yaml.Node | None
) -> list[str]:
    try:
        ZoneInfo(document.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        line = _line_of(root, ("timezone",))
        return [f"{filename}:{line}: timezone {document.timezone!r} is not known"]
    return []


def _check_expressions(
    document: ProjectDocument, filename: str, root: yaml.Node | None
) -> list[str]:
    problems: list[str] = []
    for name, job in document.jobs.items():
        try:
            compile_job(job.expression, f"{filename}:{name}")
        except JobSyntaxError as exc:
            line = _expression_line(root, name, exc.line)
            problems.append(
                f"{filename}:{line}: job {name!r}: {exc.message}"
                f" (expression line {exc.line})"
            )
    return problems


def _expression_line(
    root: yaml.Node | None, job: str, line_in_expression: int
) -> int | str:
    node = _node_at(root, ("jobs", job, "expression"))
    if node is None:
        return "?"
    first = node.start_mark.line + 1
    if getattr(node, "style", None) in ("|", ">"):
        first += 1
    return first + line_in_expression - 1


def _line_of(root: yaml.Node | None, path: tuple[str, ...]) -> int | str:
    node = _node_at(root, path)
    return node.start_mark.line + 1 if node is not None else "?"


def _node_at(root: yaml.Node | None, path: tuple[str, ...]) -> yaml.Node | None:
    node = root
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((value for k, value in node.value if k.value == key), None)
    return node


def _describe(error: Any, filename: str, root: yaml.Node | None) -> str:
    location = tuple(str(part) for part in error["loc"])
    line = "?"
    for depth in range(len(location), 0, -1):
        found = _line_of(root, location[:depth])
        if found != "?":
            line = str(found)
            break
    where = _subject(location)
    return f"{filename}:{line}: {where}{error['msg']}"


def _subject(location: tuple[str, ...]) -> str:
    if len(location) >= 2 and location[0] in ("jobs", "triggers", "credentials"):
        rest = ".".join(location[2:])
        return f"{location[0][:-1]} {location[1]!r}{' ' + rest if rest else ''}: "
    return f"{'.'.join(location)}: " if location else ""
