"""The ``http`` adaptor against a real local HTTP server that checks credentials."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from adaptors.common import data_value
from adaptors.http import HttpError, delete, get, patch, post, put
from services.runner.engine import ProcessEngine
from shared.events import JobSpec
from shared.model import ExitCode, JsonObject

pytestmark = pytest.mark.integration

USERNAME = "ada"
PASSWORD = "s3cret-password"
TOKEN = "s3cret-token"
API_KEY = "s3cret-api-key"


def basic(username: str, password: str) -> str:
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


class Handler(BaseHTTPRequestHandler):
    """Echoes requests; ``/private/…`` wants one of the known credentials."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.route()

    def do_POST(self) -> None:
        self.route()

    def do_PUT(self) -> None:
        self.route()

    def do_PATCH(self) -> None:
        self.route()

    def do_DELETE(self) -> None:
        self.route()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read answers, not the server's access log."""

    def route(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if url.path.startswith("/private/") and not self.is_authorised():
            # Echoing what was sent is what careless servers do; the adaptor
            # must mask it.
            refused = (
                f"refused authorization={self.headers.get('authorization')} "
                f"key={self.headers.get('x-api-key')}"
            )
            self.answer(401, "text/plain", refused.encode())
        elif url.path.endswith("/echo"):
            self.answer(200, "application/json", self.echo(url.path, url.query, body))
        elif url.path == "/text":
            self.answer(200, "text/plain; charset=utf-8", b"plain words")
        elif url.path == "/problem+json":
            self.answer(200, "application/problem+json", b'{"title": "fine"}')
        elif url.path == "/empty":
            self.answer(204, None, b"")
        elif url.path.startswith("/status/"):
            status = int(url.path.removeprefix("/status/"))
            self.answer(status, "text/plain", b"went wrong " + b"x" * 1000)
        elif url.path == "/leak":
            # The credential straddles where the adaptor cuts the excerpt.
            secret = (self.headers.get("authorization") or "").partition(" ")[2]
            self.answer(400, "text/plain", ("x" * 495 + secret).encode())
        elif url.path == "/redirect":
            self.send_response(302)
            self.send_header("location", parse_qs(url.query)["to"][0])
            self.send_header("content-length", "0")
            self.end_headers()
        elif url.path == "/slow":
            time.sleep(1)
            self.answer_if_still_there()
        else:
            self.answer(404, "text/plain", f"no route for {url.path}".encode())

    def is_authorised(self) -> bool:
        return self.headers.get("authorization") in (
            basic(USERNAME, PASSWORD),
            f"Bearer {TOKEN}",
        ) or API_KEY in (self.headers.get("x-api-key"), self.headers.get("x-key"))

    def echo(self, path: str, query: str, body: bytes) -> bytes:
        is_json = self.headers.get("content-type") == "application/json"
        return json.dumps(
            {
                "method": self.command,
                "path": path,
                "query": parse_qs(query),
                "headers": {
                    name.lower(): value for name, value in self.headers.items()
                },
                "body": body.decode(),
                "json": json.loads(body) if is_json else None,
            }
        ).encode()

    def answer(self, status: int, content_type: str | None, body: bytes) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer_if_still_there(self) -> None:
        # The client under test has given up by now.
        try:
            self.answer(200, "text/plain", b"late")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def state(server_url: str) -> JsonObject:
    return {
        "configuration": {"base_url": server_url, "token": TOKEN},
        "data": {"id": 7, "name": "Ada"},
        "references": [],
    }


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_get_sends_params_and_headers_and_stores_the_json_answer(
    state: JsonObject,
) -> None:
    result = get("/echo", params={"q": "ada", "n": 2}, headers={"x-trace": "t1"})(state)

    assert result["data"]["method"] == "GET"
    assert result["data"]["query"] == {"q": ["ada"], "n": ["2"]}
    assert result["data"]["headers"]["x-trace"] == "t1"
    assert result["response"]["status"] == 200
    assert result["response"]["headers"]["content-type"] == "application/json"
    assert result["response"]["url"] == (
        f"{state['configuration']['base_url']}/echo?q=ada&n=2"
    )


def test_other_state_keys_are_kept(state: JsonObject) -> None:
    result = get("/echo")(state)

    assert result["configuration"] == state["configuration"]
    assert result["references"] == []
    assert state["data"] == {"id": 7, "name": "Ada"}


def test_post_sends_a_json_body(state: JsonObject) -> None:
    result = post("/echo", json={"name": "Ada", "tags": [1, 2]})(state)

    assert result["data"]["method"] == "POST"
    assert result["data"]["json"] == {"name": "Ada", "tags": [1, 2]}


def test_post_sends_an_object_given_as_data_as_a_form(state: JsonObject) -> None:
    result = post("/echo", data={"name": "Ada Lovelace", "age": "36"})(state)

    assert result["data"]["headers"]["content-type"] == (
        "application/x-www-form-urlencoded"
    )
    assert parse_qs(result["data"]["body"]) == {
        "name": ["Ada Lovelace"],
        "age": ["36"],
    }


def test_post_sends_text_given_as_data_as_it_is(state: JsonObject) -> None:
    result = post("/echo", data="<patient/>", headers={"content-type": "text/xml"})(
        state
    )

    assert result["data"]["body"] == "<patient/>"
    assert result["data"]["headers"]["content-type"] == "text/xml"


def test_a_request_with_both_json_and_data_is_refused(state: JsonObject) -> None:
    with pytest.raises(ValueError, match="give json or data, not both"):
        post("/echo", json={"a": 1}, data={"a": "1"})(state)


@pytest.mark.parametrize(
    ("operation", "method"),
    [
        (put("/echo", json={"v": 1}, params={"p": "1"}), "PUT"),
        (patch("/echo", json={"v": 1}, params={"p": "1"}), "PATCH"),
        (delete("/echo", params={"p": "1"}), "DELETE"),
    ],
)
def test_put_patch_and_delete_send_their_method_and_params(
    state: JsonObject, operation: Any, method: str
) -> None:
    result = operation(state)

    assert result["data"]["method"] == method
    assert result["data"]["query"] == {"p": ["1"]}
    if method != "DELETE":
        assert result["data"]["json"] == {"v": 1}


def test_every_argument_may_be_a_function_of_state(state: JsonObject) -> None:
    result = post(
        lambda state: f"/people/{state['data']['id']}/echo",
        json={"name": data_value("$.name")},
        headers=lambda state: {"x-person": str(state["data"]["id"])},
        params={"name": data_value("$.name")},
    )(state)

    assert result["data"]["path"] == "/people/7/echo"
    assert result["data"]["json"] == {"name": "Ada"}
    assert result["data"]["headers"]["x-person"] == "7"
    assert result["data"]["query"] == {"name": ["Ada"]}


@pytest.mark.parametrize(
    ("credential", "header", "value"),
    [
        (
            {"username": USERNAME, "password": PASSWORD},
            "authorization",
            basic(USERNAME, PASSWORD),
        ),
        ({"token": TOKEN}, "authorization", f"Bearer {TOKEN}"),
        ({"api_key": API_KEY}, "x-api-key", API_KEY),
        ({"api_key": API_KEY, "api_key_header": "X-Key"}, "x-key", API_KEY),
    ],
    ids=["basic", "bearer", "api-key", "api-key-own-header"],
)
def test_each_kind_of_credential_is_accepted_by_a_private_path(
    server_url: str, credential: JsonObject, header: str, value: str
) -> None:
    state = {"configuration": {"base_url": server_url, **credential}}

    result = get("/private/echo")(state)

    assert result["response"]["status"] == 200
    assert result["data"]["headers"][header] == value


def test_a_private_path_without_a_credential_raises_401(server_url: str) -> None:
    with pytest.raises(HttpError) as raised:
        get("/private/echo")({"configuration": {"base_url": server_url}})

    assert raised.value.status == 401


def test_a_header_of_the_job_replaces_the_credential_header(
    state: JsonObject,
) -> None:
    result = get("/echo", headers={"Authorization": "Bearer other"})(state)

    assert result["data"]["headers"]["authorization"] == "Bearer other"


def test_a_text_answer_lands_in_data_as_text(state: JsonObject) -> None:
    assert get("/text")(state)["data"] == "plain words"


def test_a_json_flavoured_answer_is_parsed(state: JsonObject) -> None:
    assert get("/problem+json")(state)["data"] == {"title": "fine"}


def test_an_empty_answer_lands_as_empty_text(state: JsonObject) -> None:
    result = delete("/empty")(state)

    assert result["data"] == ""
    assert result["response"]["status"] == 204


@pytest.mark.parametrize(
    ("base_suffix", "path"),
    [("/api", "echo"), ("/api/", "/echo"), ("/api/", "echo"), ("/api", "/echo")],
)
def test_a_relative_path_joins_base_url_with_one_slash(
    server_url: str, base_suffix: str, path: str
) -> None:
    state = {"configuration": {"base_url": server_url + base_suffix}}

    assert get(path)(state)["data"]["path"] == "/api/echo"


def test_an_absolute_url_needs_no_base_url(server_url: str) -> None:
    result = get(f"{server_url}/echo")({"configuration": {"token": TOKEN}})

    assert result["data"]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_a_relative_path_without_base_url_is_refused() -> None:
    with pytest.raises(ValueError, match="needs base_url"):
        get("/echo")({"configuration": {"token": TOKEN}})


def test_a_state_without_configuration_can_still_ask_an_absolute_url(
    server_url: str,
) -> None:
    assert get(f"{server_url}/text")({})["data"] == "plain words"


def test_credentials_are_not_sent_to_another_origin(
    server_url: str, state: JsonObject
) -> None:
    elsewhere = server_url.replace("127.0.0.1", "localhost")

    result = get(f"{elsewhere}/echo")(state)

    assert "authorization" not in result["data"]["headers"]


@pytest.mark.parametrize(
    "credential",
    [{"token": TOKEN}, {"api_key": API_KEY}],
    ids=["bearer", "api-key"],
)
def test_credentials_do_not_follow_a_redirect_to_another_origin(
    server_url: str, credential: JsonObject
) -> None:
    state = {"configuration": {"base_url": server_url, **credential}}
    elsewhere = server_url.replace("127.0.0.1", "localhost")

    result = get("/redirect", params={"to": f"{elsewhere}/echo"})(state)

    assert result["response"]["url"] == f"{elsewhere}/echo"
    assert "authorization" not in result["data"]["headers"]
    assert "x-api-key" not in result["data"]["headers"]


def test_credentials_follow_a_redirect_within_the_origin(
    server_url: str,
) -> None:
    state = {"configuration": {"base_url": server_url, "api_key": API_KEY}}

    result = get("/redirect", params={"to": "/private/echo"})(state)

    assert result["data"]["headers"]["x-api-key"] == API_KEY


@pytest.mark.parametrize("status", [404, 500])
def test_a_failing_answer_raises_http_error_with_status_and_excerpt(
    state: JsonObject, status: int
) -> None:
    with pytest.raises(HttpError) as raised:
        get(f"/status/{status}")(state)

    error = raised.value
    base_url = state["configuration"]["base_url"]
    assert error.status == status
    assert error.method == "GET"
    assert error.url == f"{base_url}/status/{status}"
    assert error.body_excerpt == ("went wrong " + "x" * 1000)[:500]
    assert str(error) == (
        f"GET {base_url}/status/{status} answered {status}: {error.body_excerpt}"
    )


def test_an_unknown_path_raises_404_naming_it(state: JsonObject) -> None:
    with pytest.raises(HttpError, match=r"answered 404: no route for /nowhere"):
        post("/nowhere", json={})(state)


@pytest.mark.parametrize(
    ("credential", "secrets"),
    [
        (
            {"username": USERNAME, "password": "wrong-password"},
            ["wrong-password", basic(USERNAME, "wrong-password").split()[1]],
        ),
        ({"token": "wrong-token"}, ["wrong-token"]),
        ({"api_key": "wrong-api-key"}, ["wrong-api-key"]),
    ],
    ids=["basic", "bearer", "api-key"],
)
def test_a_refused_credential_never_appears_in_the_error(
    server_url: str,
    credential: JsonObject,
    secrets: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = {"configuration": {"base_url": server_url, **credential}}

    with pytest.raises(HttpError) as raised:
        get("/private/echo")(state)

    text = str(raised.value)
    logged = capsys.readouterr().out
    assert raised.value.status == 401
    assert "refused authorization=" in text
    assert "******" in text
    for secret in secrets:
        assert secret not in text
        assert secret not in logged


def test_a_credential_cut_by_the_excerpt_shows_no_part_of_itself(
    state: JsonObject,
) -> None:
    with pytest.raises(HttpError) as raised:
        get("/leak")(state)

    assert raised.value.body_excerpt == "x" * 495 + "*****"


def test_a_password_in_base_url_is_left_out_of_errors_and_state(
    server_url: str,
) -> None:
    with_userinfo = server_url.replace("//", f"//{USERNAME}:{PASSWORD}@")
    state = {"configuration": {"base_url": with_userinfo}}

    result = get("/private/echo")(state)
    with pytest.raises(HttpError) as raised:
        get("/status/500")(state)

    assert result["response"]["url"] == f"{server_url}/private/echo"
    assert PASSWORD not in str(raised.value)
    assert raised.value.url == f"{server_url}/status/500"


def test_a_server_that_does_not_answer_raises_http_error_without_status() -> None:
    url = f"http://127.0.0.1:{unused_port()}"

    with pytest.raises(HttpError, match=r"GET .* failed: ConnectError") as raised:
        get("/echo")({"configuration": {"base_url": url, "token": TOKEN}})

    assert raised.value.status is None


def test_a_request_slower_than_timeout_s_raises_http_error(server_url: str) -> None:
    state = {"configuration": {"base_url": server_url, "timeout_s": 0.2}}

    with pytest.raises(HttpError, match="failed: ReadTimeout"):
        get("/slow")(state)


def test_each_request_writes_one_log_line_without_credentials(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with_userinfo = server_url.replace("//", f"//{USERNAME}:{PASSWORD}@")

    get("/echo", params={"q": "1"})({"configuration": {"base_url": with_userinfo}})

    assert capsys.readouterr().out == f"GET {server_url}/echo?q=1 200\n"


def test_a_job_using_the_http_adaptor_runs_in_the_engine(
    server_url: str,
) -> None:
    expression = (
        "get('/private/echo', params={'id': data_value('$.id')})\n"
        "fn(lambda state: {**state, 'seen': state['data']['query']['id']})\n"
    )
    job = JobSpec(
        id=uuid.uuid4(),
        name="http-job",
        version="1",
        adaptor="http",
        expression=expression,
    )
    credential = {"base_url": server_url, "token": TOKEN}

    with ProcessEngine(workers=1) as engine:
        execution = engine.execute(job, {"data": {"id": 7}}, 30, credential)

    assert execution.exit_code == ExitCode.SUCCESS, execution.error
    assert execution.final_state is not None
    assert execution.final_state["seen"] == ["7"]
    assert execution.final_state["response"]["status"] == 200
    # Every credential value is masked in logs, the base URL included.
    assert [line.message for line in execution.logs] == [
        "GET ***/private/echo?id=7 200"
    ]


def test_a_failing_request_fails_the_run_without_showing_the_credential(
    server_url: str,
) -> None:
    job = JobSpec(
        id=uuid.uuid4(),
        name="http-job",
        version="1",
        adaptor="http",
        expression="get('/private/echo')\n",
    )
    credential = {"base_url": server_url, "token": "wrong-token"}

    with ProcessEngine(workers=1) as engine:
        execution = engine.execute(job, {}, 30, credential)

    assert execution.exit_code == ExitCode.JOB_ERROR
    assert execution.error is not None
    assert execution.error.startswith("HttpError at line 1: GET ")
    assert "answered 401" in execution.error
    assert "wrong-token" not in execution.error
