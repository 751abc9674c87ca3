"""The API keeps its contract: the OpenAPI document lists every route, and a
bounded schemathesis fuzz of every operation finds no server error and only
errors of the one shape, ``{code, message, ...ids}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from starlette.routing import BaseRoute, Route

from devstack.stack import LocalStack
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.integration.conftest import EXAMPLE, eventually

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 25
FUZZED_PROJECT = "contract"
DOOMED_PROJECT = "contract-doomed"
HIDDEN_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}
DELETE_PROJECT = ("DELETE", "/api/projects/{name}")


@dataclass
class Findings:
    """What the fuzz saw: check failures and every error answer's body."""

    failures: list[str] = field(default_factory=list)
    error_bodies: list[tuple[str, int, object]] = field(default_factory=list)
    requests: int = 0
    succeeded: set[str] = field(default_factory=set)
    """Labels of the operations that answered a 2xx at least once."""


@pytest.fixture(scope="module")
def fuzz_token(platform: LocalStack) -> str:
    """A site admin of the fuzz's own, so no shared token can be revoked."""
    with httpx.Client(
        base_url=platform.api_url, headers=platform.auth_headers(), timeout=10
    ) as client:
        username = f"contract-{uuid.uuid4().hex[:8]}"
        added = client.post("/api/users", json={"username": username, "is_admin": True})
        assert added.status_code == 201, added.text
        issued = client.post(
            "/api/tokens", json={"name": "contract", "username": username}
        )
        assert issued.status_code == 201, issued.text
        return cast(str, issued.json()["token"])


@pytest.fixture(scope="module")
def findings(platform: LocalStack, fuzz_token: str) -> Findings:
    """Fuzz every operation, once with generated path parameters and once
    with them pinned to a deployed project, one of its runs and messages."""
    platform.deploy(EXAMPLE, DOOMED_PROJECT)
    project = platform.deploy(EXAMPLE, FUZZED_PROJECT)
    real = {"name": FUZZED_PROJECT, **post_messages(platform, project["inbox_url"])}
    schema = schemathesis.openapi.from_url(
        f"{platform.api_url}/openapi.json", timeout=10
    )
    found = Findings()
    headers = platform.auth_headers(fuzz_token)
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        names = {parameter.name for parameter in operation.path_parameters}
        pinned = {name: value for name, value in real.items() if name in names}
        if key == DELETE_PROJECT:
            # Never a generated name: it could be a project other tests share.
            pinned["name"] = DOOMED_PROJECT
        else:
            fuzz_operation(platform, operation, None, headers, found)
        if pinned:
            fuzz_operation(platform, operation, pinned, headers, found)
    return found


def post_messages(platform: LocalStack, inbox_url: str) -> dict[str, str]:
    """Give the fuzzed project messages, job states and runs to find; the
    ids of one run and its message."""
    with httpx.Client(timeout=30) as client:
        for form in ("referral", "payment"):
            body = {
                "form": form,
                "patient": {"name": "Ama"},
                "facility": "Korle Bu",
                "payments": [{"amount": 3}],
            }
            assert client.post(inbox_url, json=body).status_code == 202
    with httpx.Client(
        base_url=platform.api_url, headers=platform.auth_headers(), timeout=10
    ) as api:

        def runs_recorded() -> list[dict[str, Any]] | None:
            runs = api.get(f"/api/projects/{FUZZED_PROJECT}/runs").json()["runs"]
            return cast(list[dict[str, Any]], runs) if len(runs) >= 2 else None

        run = eventually(runs_recorded)[0]
    return {"run_id": run["id"], "message_id": run["message_id"]}


def fuzz_operation(
    platform: LocalStack,
    operation: Any,
    path_parameters: dict[str, str] | None,
    headers: dict[str, str],
    found: Findings,
) -> None:
    """Send positive and negative examples of one operation; record findings."""
    label = operation.label
    checks = [
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.response_schema_conformance,
    ]
    strategy = operation.as_strategy(
        GenerationMode.POSITIVE, path_parameters=path_parameters
    ) | operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=path_parameters)

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def send(case: Case[Any]) -> None:
        response = case.call(base_url=platform.api_url, headers=headers, timeout=10)
        found.requests += 1
        if response.status_code < 300:
            found.succeeded.add(label)
        if response.status_code >= 400:
            found.error_bodies.append(
                (label, response.status_code, error_body(response.content))
            )
        try:
            case.validate_response(response, checks=checks)
        except (AssertionError, FailureGroup) as exc:
            found.failures.append(f"{label} {response.status_code}: {exc}")

    send()


def error_body(content: bytes) -> object:
    try:
        return httpx.Response(200, content=content).json()
    except ValueError:
        return content[:200]


def is_one_shape(body: object) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("code"), str)
        and isinstance(body.get("message"), str)
    )


def route_table(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str]]:
    """Each (method, path) the application answers, included routers too."""
    for route in routes:
        # FastAPI wraps an included router; its routes are the original's.
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from route_table(included.routes)
        elif isinstance(route, APIRoute | Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, route.path


def test_every_route_is_in_the_openapi_document(platform: LocalStack) -> None:
    app = create_app(
        ApiSettings.model_construct(), cast(Any, None), cast(Any, None), cast(Any, None)
    )
    document = httpx.get(f"{platform.api_url}/openapi.json", timeout=10).json()
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }

    # The console's pages answer HTML to browsers; they are not the API.
    routes = {
        (method, path)
        for method, path in route_table(app.routes)
        if path != "/" and not path.startswith("/console")
    }

    assert routes - HIDDEN_ROUTES - documented == set()
    assert documented - routes == set()


def test_the_fuzz_finds_no_server_error(findings: Findings) -> None:
    assert findings.requests > 0
    # The pinned path parameters reach real resources, not only 404s.
    assert {
        "GET /api/projects/{name}",
        "GET /api/messages/{message_id}",
        "GET /api/runs/{run_id}",
        "DELETE /api/projects/{name}",
    } <= findings.succeeded
    assert not findings.failures, "\n\n".join(findings.failures)


def test_every_error_the_fuzz_sees_has_the_one_shape(findings: Findings) -> None:
    odd = [item for item in findings.error_bodies if not is_one_shape(item[2])]

    assert findings.error_bodies
    assert odd == []


def test_a_nul_byte_in_a_value_is_refused_with_a_422(api: httpx.Client) -> None:
    response = api.post("/api/tokens", json={"name": "a\u0000b"})

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_value"


def test_a_body_that_does_not_parse_is_refused_in_the_one_shape(
    api: httpx.Client,
) -> None:
    response = api.post(
        "/api/tokens",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )

    assert response.status_code in (400, 422)
    assert is_one_shape(response.json())
