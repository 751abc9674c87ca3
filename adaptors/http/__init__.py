"""The ``http`` adaptor: requests to a web API named by the run's credential.

The credential (``state["configuration"]``) gives ``base_url`` and one kind of
auth: ``username`` and ``password`` (HTTP Basic), ``token`` (Bearer), or
``api_key`` with an optional ``api_key_header`` (default ``x-api-key``);
``timeout_s`` (default 30) bounds each request. Credentials are sent only to
the origin of ``base_url`` (or, without one, of the requested URL), also
across redirects, and never appear in errors or in the run's log.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from adaptors.common import (
    chunk,
    cursor,
    data_path,
    data_value,
    each,
    expand_references,
    field,
    fields,
    fn,
    log,
    merge,
    source_value,
)
from shared.job_language import Operation
from shared.model import JsonObject

# Like every OpenFn adaptor, this one offers the common operations too.
__all__ = [
    "HttpError",
    "chunk",
    "cursor",
    "data_path",
    "data_value",
    "delete",
    "each",
    "expand_references",
    "field",
    "fields",
    "fn",
    "get",
    "log",
    "merge",
    "patch",
    "post",
    "put",
    "source_value",
]

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_API_KEY_HEADER = "x-api-key"
BODY_EXCERPT_CHARS = 500
REDACTED = "******"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SECRET_KEYS = ("password", "token", "api_key")

Origin = tuple[str, str, int | None]


class HttpError(Exception):
    """A request that failed: a non-2xx answer, or no answer at all.

    Attributes:
        method: The request's method.
        url: The URL asked for, without credentials.
        status: The answer's status code; ``None`` when there was no answer.
        body_excerpt: The start of the answer's body, credentials masked.
    """

    def __init__(
        self, method: str, url: str, status: int | None, body_excerpt: str
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body_excerpt = body_excerpt
        outcome = "failed" if status is None else f"answered {status}"
        super().__init__(f"{method} {url} {outcome}: {body_excerpt}")


def get(path: Any, params: Any = None, headers: Any = None) -> Operation:
    """An operation that sends a GET request; the answer lands in the state.

    Args:
        path: A path under the credential's ``base_url``, or an absolute URL.
        params: Query parameters.
        headers: Extra request headers.

    Every argument may be a function of state. The operation sets
    ``state["data"]`` to the answer's body (parsed when it is JSON, else text)
    and ``state["response"]`` to its status, headers and URL.

    Raises:
        HttpError: When run, if the answer is not a 2xx or never comes.
    """
    return _request("GET", path, params=params, headers=headers)


def post(
    path: Any,
    json: Any = None,
    data: Any = None,
    headers: Any = None,
    params: Any = None,
) -> Operation:
    """An operation that sends a POST request; the answer lands in the state.

    Args:
        path: A path under the credential's ``base_url``, or an absolute URL.
        json: A body to send as JSON.
        data: A body to send as a form (an object) or as it is (text, bytes).
        headers: Extra request headers.
        params: Query parameters.

    Every argument may be a function of state; the state is set as by
    :func:`get`.

    Raises:
        HttpError: When run, if the answer is not a 2xx or never comes.
    """
    return _request("POST", path, json, data, headers, params)


def put(
    path: Any,
    json: Any = None,
    data: Any = None,
    headers: Any = None,
    params: Any = None,
) -> Operation:
    """An operation that sends a PUT request; arguments and result as :func:`post`.

    Raises:
        HttpError: When run, if the answer is not a 2xx or never comes.
    """
    return _request("PUT", path, json, data, headers, params)


def patch(
    path: Any,
    json: Any = None,
    data: Any = None,
    headers: Any = None,
    params: Any = None,
) -> Operation:
    """An operation that sends a PATCH request; arguments and result as :func:`post`.

    Raises:
        HttpError: When run, if the answer is not a 2xx or never comes.
    """
    return _request("PATCH", path, json, data, headers, params)


def delete(path: Any, params: Any = None, headers: Any = None) -> Operation:
    """An operation that sends a DELETE request; arguments and result as :func:`get`.

    Raises:
        HttpError: When run, if the answer is not a 2xx or never comes.
    """
    return _request("DELETE", path, params=params, headers=headers)


def _request(
    method: str,
    path: Any,
    json: Any = None,
    data: Any = None,
    headers: Any = None,
    params: Any = None,
) -> Operation:
    def run_request(state: JsonObject) -> JsonObject:
        configuration = _configuration_of(state)
        url = _resolve_url(expand_references(path, state), configuration)
        credential_headers = _credential_headers(configuration)
        trusted = _origin_of(httpx.URL(configuration.get("base_url") or url))
        if _origin_of(url) != trusted:
            credential_headers = {}
        body = _body_arguments(
            expand_references(json, state), expand_references(data, state)
        )
        redact = _redactor(configuration)

        with httpx.Client(
            timeout=_timeout_s(configuration),
            follow_redirects=True,
            event_hooks={"request": [_guard_credentials(credential_headers, trusted)]},
        ) as client:
            try:
                response = client.request(
                    method,
                    url,
                    params=expand_references(params, state),
                    headers=_merge_headers(
                        credential_headers, expand_references(headers, state)
                    ),
                    **body,
                )
            except httpx.HTTPError as error:
                problem = redact(f"{type(error).__name__}: {error}")
                raise HttpError(method, redact(_public(url)), None, problem) from None

        shown_url = redact(_public(response.url))
        sys.stdout.write(f"{method} {shown_url} {response.status_code}\n")
        if not response.is_success:
            # Masked before cut, so a secret across the cut cannot show in part.
            excerpt = redact(response.text)[:BODY_EXCERPT_CHARS]
            raise HttpError(method, shown_url, response.status_code, excerpt)
        return {
            **state,
            "data": _body_of(response),
            "response": {
                "status": response.status_code,
                "headers": dict(response.headers),
                "url": shown_url,
            },
        }

    return run_request


def _configuration_of(state: JsonObject) -> Mapping[str, Any]:
    configuration = state.get("configuration") or {}
    if not isinstance(configuration, Mapping):
        found = type(configuration).__name__
        raise TypeError(f"http expects state['configuration'] an object, found {found}")
    return configuration


def _resolve_url(path: object, configuration: Mapping[str, Any]) -> httpx.URL:
    if not isinstance(path, str):
        raise TypeError(f"http expects a path or URL, found {type(path).__name__}")
    if httpx.URL(path).is_absolute_url:
        return httpx.URL(path)

    base_url = configuration.get("base_url")
    if not base_url:
        raise ValueError(
            f"http needs base_url in the credential for a relative path: {path!r}"
        )
    return httpx.URL(f"{str(base_url).rstrip('/')}/{path.lstrip('/')}")


def _credential_headers(configuration: Mapping[str, Any]) -> dict[str, str]:
    if configuration.get("username") is not None:
        pair = f"{configuration['username']}:{configuration.get('password', '')}"
        return {"authorization": f"Basic {_b64(pair)}"}
    if configuration.get("token") is not None:
        return {"authorization": f"Bearer {configuration['token']}"}
    if configuration.get("api_key") is not None:
        name = configuration.get("api_key_header") or DEFAULT_API_KEY_HEADER
        return {str(name): str(configuration["api_key"])}
    return {}


def _merge_headers(credential_headers: Mapping[str, str], extra: Any) -> httpx.Headers:
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"http expects headers an object, found {type(extra).__name__}")
    merged = httpx.Headers(credential_headers)
    # Header names ignore case: the job's own header replaces the credential's.
    merged.update(extra or {})
    return merged


def _guard_credentials(
    credential_headers: Mapping[str, str], trusted: Origin
) -> Callable[[httpx.Request], None]:
    # Redirects copy every header to the next request, and httpx strips only
    # Authorization when the origin changes; an API key header would follow.
    def strip_foreign(request: httpx.Request) -> None:
        if _origin_of(request.url) == trusted:
            return
        for name, value in credential_headers.items():
            if request.headers.get(name) == value:
                del request.headers[name]

    return strip_foreign


def _origin_of(url: httpx.URL) -> Origin:
    return (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme))


def _body_arguments(json: Any, data: Any) -> dict[str, Any]:
    if json is not None and data is not None:
        raise ValueError("http sends one body: give json or data, not both")
    if json is not None:
        return {"json": json}
    if isinstance(data, str | bytes):
        # httpx wants raw bodies as content=; data= is for forms.
        return {"content": data}
    if data is not None:
        return {"data": data}
    return {}


def _timeout_s(configuration: Mapping[str, Any]) -> float:
    timeout_s = configuration.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float):
        found = type(timeout_s).__name__
        raise TypeError(f"http expects timeout_s a number of seconds, found {found}")
    if timeout_s <= 0:
        raise ValueError(f"http expects timeout_s above 0, found {timeout_s}")
    return float(timeout_s)


def _body_of(response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    is_json = content_type == "application/json" or content_type.endswith("+json")
    if is_json and response.content:
        try:
            return response.json()
        except ValueError:
            # A body that claims to be JSON but is not is still worth keeping.
            return response.text
    return response.text


def _public(url: httpx.URL) -> str:
    return str(url.copy_with(username=None, password=None))


def _redactor(configuration: Mapping[str, Any]) -> Callable[[str], str]:
    secrets = [
        str(configuration[key])
        for key in _SECRET_KEYS
        if configuration.get(key) not in (None, "")
    ]
    if configuration.get("username") is not None:
        pair = f"{configuration['username']}:{configuration.get('password', '')}"
        secrets.append(_b64(pair))
    if configuration.get("base_url"):
        url_password = httpx.URL(str(configuration["base_url"])).password
        if url_password:
            secrets.append(url_password)
    secrets.extend([_b64(secret) for secret in secrets])
    # Longest first, so a secret that contains another is masked whole.
    secrets.sort(key=len, reverse=True)

    def redact(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return text

    return redact


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
