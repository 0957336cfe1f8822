"""W2A-ENV: the environ a WSGI app sees under WSGIToASGI."""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from bridgeway import WSGIToASGI
from bridgeway._types import Environ, Scope, StartResponse
from bridgeway._w2a.environ import build_environ
from tests.support.w2a_driver import Peer, call, make_scope

# Marked here (not only by conftest's auto-marking, which runs after parametrisation)
# so that every async test is collected once per anyio backend.
pytestmark = pytest.mark.anyio

_ABSENT = object()


class EchoEnviron:
    """A WSGI app that keeps every environ it was called with."""

    def __init__(self) -> None:
        self.environs: list[Environ] = []
        self.copies: list[Environ] = []

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        self.environs.append(environ)
        self.copies.append(dict(environ))
        environ["app.added"] = "yes"
        environ["PATH_INFO"] = "/changed-by-app"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


async def environ_for(scope: Scope, **settings: Any) -> Environ:
    app = EchoEnviron()
    peer = await call(WSGIToASGI(app, **settings), scope)
    assert peer.status == 200
    assert len(app.environs) == 1
    return app.copies[0]


H = list[tuple[bytes, bytes]]

# (scope keyword arguments, expected environ items; _ABSENT means the key is left out)
CASES = [
    pytest.param(
        {"method": "PROPFIND"},
        {"REQUEST_METHOD": "PROPFIND"},
        id="W2A-ENV-02-extension-method",
    ),
    pytest.param({}, {"SCRIPT_NAME": ""}, id="W2A-ENV-03-no-root-path"),
    pytest.param(
        {"root_path": "/app/", "path": "/app/x"},
        {"SCRIPT_NAME": "/app", "PATH_INFO": "/x"},
        id="W2A-ENV-03-trailing-slash-normalised",
    ),
    pytest.param(
        {"root_path": "/", "path": "/x"},
        {"SCRIPT_NAME": "", "PATH_INFO": "/x"},
        id="W2A-ENV-03-root-slash",
    ),
    pytest.param(
        {"root_path": "/app", "path": "/app/x"},
        {"SCRIPT_NAME": "/app", "PATH_INFO": "/x"},
        id="W2A-ENV-04-strip",
    ),
    pytest.param(
        {"root_path": "/app", "path": "/application/z"},
        {"SCRIPT_NAME": "/app", "PATH_INFO": "/application/z"},
        id="W2A-ENV-04-boundary",
    ),
    pytest.param(
        {"root_path": "/app", "path": "/app"},
        {"SCRIPT_NAME": "/app", "PATH_INFO": ""},
        id="W2A-ENV-04-path-equals-root",
    ),
    pytest.param(
        {"root_path": "/app", "path": "/x"},
        {"SCRIPT_NAME": "/app", "PATH_INFO": "/x"},
        id="W2A-ENV-04-path-without-root",
    ),
    pytest.param(
        {"path": "/café", "raw_path": b"/caf%C3%A9"},
        {"PATH_INFO": "/caf\xc3\xa9"},
        id="W2A-ENV-05-latin1-dance",
    ),
    pytest.param(
        {"path": "/日本", "raw_path": None},
        {"PATH_INFO": "/\xe6\x97\xa5\xe6\x9c\xac"},
        id="W2A-ENV-05-non-latin1",
    ),
    pytest.param(
        {"root_path": "/é", "path": "/é/x"},
        {"SCRIPT_NAME": "/\xc3\xa9", "PATH_INFO": "/x"},
        id="W2A-ENV-05-script-name-dance",
    ),
    pytest.param(
        {"path": "/café", "raw_path": b"/caf\xc3\xa9"},
        {"PATH_INFO": "/caf\xc3\xa9", "RAW_URI": "/caf\xc3\xa9"},
        id="W2A-ENV-05-raw-utf8-bytes",
    ),
    pytest.param(
        {"path": "/\ufffd", "raw_path": b"/%FF"},
        {"PATH_INFO": "/\xff", "RAW_URI": "/%FF"},
        id="W2A-ENV-06-raw-path-agrees",
    ),
    pytest.param(
        {"path": "/rewritten", "raw_path": b"/original"},
        {"PATH_INFO": "/rewritten"},
        id="W2A-ENV-06-raw-path-disagrees",
    ),
    pytest.param(
        {"path": "/a/b", "raw_path": b"/a%2Fb", "query_string": b"x=1"},
        {"PATH_INFO": "/a/b", "RAW_URI": "/a%2Fb?x=1", "REQUEST_URI": "/a%2Fb?x=1"},
        id="W2A-ENV-07-raw-uri",
    ),
    pytest.param(
        {"path": "/a", "raw_path": b""},
        {"PATH_INFO": "/a", "RAW_URI": _ABSENT, "REQUEST_URI": _ABSENT},
        id="W2A-ENV-07-no-raw-path",
    ),
    pytest.param(
        {"query_string": b"q=\xc3\xa9&a+b=%20&"},
        {"QUERY_STRING": "q=\xc3\xa9&a+b=%20&"},
        id="W2A-ENV-08-latin1-unchanged",
    ),
    pytest.param({}, {"QUERY_STRING": ""}, id="W2A-ENV-08-empty"),
    pytest.param(
        {
            "method": "POST",
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")],
        },
        {
            "CONTENT_TYPE": "text/plain",
            "CONTENT_LENGTH": "3",
            "HTTP_CONTENT_TYPE": _ABSENT,
            "HTTP_CONTENT_LENGTH": _ABSENT,
        },
        id="W2A-ENV-09-content-headers",
    ),
    pytest.param(
        {},
        {"CONTENT_TYPE": _ABSENT, "CONTENT_LENGTH": _ABSENT},
        id="W2A-ENV-09-absent",
    ),
    pytest.param(
        {"method": "POST", "headers": [(b"transfer-encoding", b"chunked")]},
        {"CONTENT_LENGTH": _ABSENT, "HTTP_TRANSFER_ENCODING": "chunked"},
        id="W2A-ENV-09-chunked-no-length",
    ),
    pytest.param(
        {"headers": [(b"x-foo-bar", b"  caf\xe9 "), (b"x-empty", b"")]},
        {"HTTP_X_FOO_BAR": "caf\xe9", "HTTP_X_EMPTY": ""},
        id="W2A-ENV-10-http-vars",
    ),
    pytest.param(
        {"headers": [(b"x-bin", b"\xff\xfe\x80")]},
        {"HTTP_X_BIN": "\xff\xfe\x80"},
        id="W2A-ENV-10-invalid-utf8-never-raises",
    ),
    pytest.param(
        {"headers": [(b"X-Upper", b"v")]},
        {"HTTP_X_UPPER": "v"},
        id="W2A-ENV-10-mixed-case-name",
    ),
    pytest.param(
        {"headers": [(b"accept", b"a"), (b"accept", b"b"), (b"accept", b"c")]},
        {"HTTP_ACCEPT": "a,b,c"},
        id="W2A-ENV-11-duplicates-joined",
    ),
    pytest.param(
        {"headers": [(b"cookie", b"a=1"), (b"cookie", b"b=2")]},
        {"HTTP_COOKIE": "a=1; b=2"},
        id="W2A-ENV-11-cookies",
    ),
    pytest.param(
        {
            "headers": [
                (b"x_forwarded_for", b"evil"),
                (b"x-forwarded-for", b"good"),
                (b"x_forwarded_for", b"evil2"),
            ]
        },
        {"HTTP_X_FORWARDED_FOR": "good"},
        id="W2A-ENV-12-underscore-dropped",
    ),
    pytest.param(
        {"headers": [(b"host", b"example.com:8080")]},
        {"HTTP_HOST": "example.com:8080"},
        id="W2A-ENV-13-host",
    ),
    pytest.param(
        {"http_version": "1.0"},
        {"HTTP_HOST": _ABSENT, "SERVER_PROTOCOL": "HTTP/1.0"},
        id="W2A-ENV-13-no-host",
    ),
    pytest.param(
        {"server": ("10.0.0.1", 8000)},
        {"SERVER_NAME": "10.0.0.1", "SERVER_PORT": "8000"},
        id="W2A-ENV-14-server",
    ),
    pytest.param(
        {"server": None, "headers": [(b"host", b"example.com:8080")]},
        {"SERVER_NAME": "example.com", "SERVER_PORT": "8080"},
        id="W2A-ENV-14-host-fallback",
    ),
    pytest.param(
        {"server": ("/tmp/s.sock", None), "scheme": "https"},
        {"SERVER_NAME": "localhost", "SERVER_PORT": "443"},
        id="W2A-ENV-14-unix-socket",
    ),
    pytest.param(
        {"server": None, "headers": [(b"host", b"[::1]:9000")]},
        {"SERVER_NAME": "[::1]", "SERVER_PORT": "9000"},
        id="W2A-ENV-14-ipv6-host",
    ),
    pytest.param(
        {"server": ("127.0.0.1", "8001")},
        {"SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8001"},
        id="W2A-ENV-14-granian-str-port",
    ),
    pytest.param(
        {
            "server": (ipaddress.ip_address("::1"), "8443"),
            "client": (ipaddress.ip_address("10.1.2.3"), 4),
        },
        {
            "SERVER_NAME": "::1",
            "SERVER_PORT": "8443",
            "REMOTE_ADDR": "10.1.2.3",
            "REMOTE_PORT": "4",
        },
        id="W2A-ENV-14-granian-ipaddress-objects",
    ),
    pytest.param({"http_version": "1"}, {"SERVER_PROTOCOL": "HTTP/1.0"}, id="W2A-ENV-15-granian"),
    pytest.param({"http_version": "1.1"}, {"SERVER_PROTOCOL": "HTTP/1.1"}, id="W2A-ENV-15-1.1"),
    pytest.param({"http_version": "2"}, {"SERVER_PROTOCOL": "HTTP/2"}, id="W2A-ENV-15-2"),
    pytest.param({"http_version": "3"}, {"SERVER_PROTOCOL": "HTTP/3"}, id="W2A-ENV-15-3"),
    pytest.param(
        {"client": ("1.2.3.4", 5678)},
        {"REMOTE_ADDR": "1.2.3.4", "REMOTE_PORT": "5678"},
        id="W2A-ENV-16-client",
    ),
    pytest.param(
        {"client": None},
        {"REMOTE_ADDR": _ABSENT, "REMOTE_PORT": _ABSENT},
        id="W2A-ENV-16-no-client",
    ),
    pytest.param({}, {"wsgi.url_scheme": "http", "HTTPS": _ABSENT}, id="W2A-ENV-17-http"),
    pytest.param(
        {"scheme": "https"}, {"wsgi.url_scheme": "https", "HTTPS": "on"}, id="W2A-ENV-17-https"
    ),
    pytest.param(
        {},
        {
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        },
        id="W2A-ENV-18-wsgi-keys",
    ),
    pytest.param(
        {"path": "*", "raw_path": b"*", "method": "OPTIONS", "root_path": "/app"},
        {"PATH_INFO": "*", "SCRIPT_NAME": ""},
        id="W2A-ENV-20-asterisk",
    ),
]


@pytest.mark.parametrize(("scope_kwargs", "expected"), CASES)
async def test_environ_table(scope_kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    environ = await environ_for(make_scope(**scope_kwargs))
    for key, value in expected.items():
        if value is _ABSENT:
            assert key not in environ, key
        else:
            assert environ[key] == value, key
            assert type(environ[key]) is type(value), key


async def test_env_01_plain_dict_new_per_request_all_str() -> None:
    app = EchoEnviron()
    adapter = WSGIToASGI(app)
    await call(adapter, make_scope(headers=[(b"host", b"h")]))
    await call(adapter, make_scope(headers=[(b"host", b"h")]))
    first, second = app.environs
    assert type(first) is dict
    assert first is not second
    assert app.copies[1]["PATH_INFO"] == "/"
    assert "app.added" not in app.copies[1]
    for key, value in second.items():
        if key.isupper():
            assert type(value) is str, key


async def test_env_01_scope_not_mutated() -> None:
    """W2A-SCOPE-08 as well: the scope handed in is not changed."""
    scope = make_scope(root_path="/app", path="/app/x", headers=[(b"a", b"1")])
    snapshot = {k: (list(v) if isinstance(v, list) else v) for k, v in scope.items()}
    await environ_for(scope)
    assert scope == snapshot


async def test_env_12_underscore_headers_opt_in() -> None:
    scope = make_scope(headers=[(b"x_custom", b"v")])
    assert "HTTP_X_CUSTOM" not in await environ_for(scope)
    environ = await environ_for(scope, keep_underscore_headers=True)
    assert environ["HTTP_X_CUSTOM"] == "v"


async def test_env_18_multiprocess_configurable() -> None:
    environ = await environ_for(make_scope(), multiprocess=True)
    assert environ["wsgi.multiprocess"] is True


async def test_env_18_wsgi_errors_reaches_logging(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Any] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        errors = environ["wsgi.errors"]
        errors.write("é✓ first\n")
        errors.writelines(["second ", "part\n", "tail"])
        errors.flush()
        seen.append(errors)
        start_response("200 OK", [])
        return [b""]

    with caplog.at_level(logging.ERROR, logger="bridgeway"):
        peer = await call(WSGIToASGI(app))
    assert peer.status == 200
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("bridgeway")]
    assert messages == ["é✓ first", "second part", "tail"]
    assert capsys.readouterr().out == ""
    with pytest.raises(TypeError):
        seen[0].write(b"bytes")


async def test_env_18_file_wrapper_present() -> None:
    environ = await environ_for(make_scope())
    assert callable(environ["wsgi.file_wrapper"])
    assert hasattr(environ["wsgi.input"], "read")


async def test_env_19_only_namespaced_extra_keys() -> None:
    state = {"db": object()}
    scope = make_scope(state=state, extensions={"http.response.trailers": {}})
    environ = await environ_for(scope)
    cgi = {
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "SERVER_PROTOCOL",
        "SERVER_NAME",
        "SERVER_PORT",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "REQUEST_URI",
        "RAW_URI",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "HTTPS",
    }
    for key in environ:
        if key.startswith(("wsgi.", "HTTP_")) or key in cgi:
            continue
        assert key.islower(), key
        assert "." in key, key
    assert environ["asgi.state"] is state
    assert scope not in list(environ.values())


async def test_env_21_no_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPT_NAME", "/evil")
    monkeypatch.setenv("BRIDGEWAY_TEST_VAR", "leak")
    environ = await environ_for(make_scope())
    assert environ["SCRIPT_NAME"] == ""
    assert "BRIDGEWAY_TEST_VAR" not in environ
    assert os.environ["SCRIPT_NAME"] == "/evil"


async def test_env_22_header_repeat_cap_answers_400() -> None:
    calls: list[Environ] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        calls.append(environ)
        start_response("200 OK", [])
        return [b""]

    headers = [(b"x-a", b"1")] * 101
    peer = await call(WSGIToASGI(app), make_scope(headers=headers))
    assert peer.status == 400
    assert peer.complete
    assert calls == []
    peer = await call(WSGIToASGI(app, max_header_repeats=None), make_scope(headers=headers))
    assert peer.status == 200


def test_env_22_join_is_linear() -> None:
    """5,000 repeats with no cap join well within 50 ms (quadratic joining would not)."""
    scope = make_scope(headers=[(b"x-a", b"1" * 20)] * 5000)
    build_environ(scope, max_header_repeats=None)  # warm up
    started = time.perf_counter()
    environ = build_environ(scope, max_header_repeats=None)
    assert time.perf_counter() - started < 0.05
    assert environ["HTTP_X_A"] == ",".join(["1" * 20] * 5000)


async def test_env_conflicting_content_length_is_400() -> None:
    headers = [(b"content-length", b"3"), (b"content-length", b"4")]
    app = EchoEnviron()
    peer = await call(WSGIToASGI(app), make_scope("POST", headers=headers), Peer([b"abc"]))
    assert peer.status == 400
    assert app.environs == []


async def test_wsgiref_validator_and_werkzeug_lint_accept_the_environ() -> None:
    """Every probe runs wrapped in wsgiref.validate and werkzeug's LintMiddleware
    (warnings are errors in this suite)."""
    from wsgiref.validate import validator

    from werkzeug.middleware.lint import LintMiddleware

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # PEP 3333 strictly: read() takes a size (wsgiref.validate insists)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.errors"].write("validated\n")
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body) + 2))]
        )
        return [b"<", body, b">"]

    for wrapped in (validator(app), LintMiddleware(app)):
        adapter = WSGIToASGI(wrapped)
        scope = make_scope(
            "POST",
            path="/app/x",
            root_path="/app",
            query_string=b"a=1",
            headers=[(b"host", b"h"), (b"content-length", b"4"), (b"content-type", b"x/y")],
        )
        peer = await call(adapter, scope, Peer([b"da", b"ta"]))
        assert peer.status == 200
        assert peer.body == b"<data>"
        peer = await call(adapter, make_scope(headers=[(b"host", b"h")]))
        assert peer.body == b"<>"


async def test_scope_08_flask_under_starlette_mount() -> None:
    """W2A-SCOPE-08: the adapter reads the scope it is given (Starlette's Mount rewrites
    root_path), so Flask sees SCRIPT_NAME=/flask and builds URLs under it."""
    from flask import Flask, request, url_for
    from starlette.applications import Starlette
    from starlette.routing import Mount

    flask_app = Flask(__name__)

    @flask_app.route("/x")
    def x() -> str:
        return f"{request.script_root}|{request.path}|{url_for('x')}"

    outer = Starlette(routes=[Mount("/flask", app=WSGIToASGI(flask_app.wsgi_app))])
    scope = make_scope(path="/flask/x", headers=[(b"host", b"testserver")])
    peer = await call(outer, scope)
    assert peer.status == 200
    assert peer.body == b"/flask|/x|/flask/x"


def _shaped(shape: str) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if shape == "204":
            # werkzeug's lint wants the length spelt out on a 204 (it warns in close(),
            # which now propagates like any other error of the app).
            start_response("204 No Content", [("Content-Length", "0")])
            return []
        if shape == "head":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
            return [b"abcdef"]

        def gen() -> Iterator[bytes]:
            yield b"ab"
            yield b""
            yield b"cd"

        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()

    return app


@pytest.mark.parametrize(
    ("shape", "method", "body"),
    [
        pytest.param("stream", "GET", b"abcd", id="validator-streamed-generator"),
        pytest.param("204", "GET", b"", id="validator-204"),
        pytest.param("head", "HEAD", b"", id="validator-head"),
    ],
)
async def test_validators_accept_response_shapes(shape: str, method: str, body: bytes) -> None:
    """The validators also check that close() was called on what they wrapped."""
    from wsgiref.validate import validator

    from werkzeug.middleware.lint import LintMiddleware

    for wrapped in (validator(_shaped(shape)), LintMiddleware(_shaped(shape))):
        peer = await call(WSGIToASGI(wrapped), make_scope(method, headers=[(b"host", b"h")]))
        assert peer.body == body
        assert peer.complete
