"""A2W-SCOPE: the HTTP scope an ASGI app sees under ASGIToWSGI.

Each case builds an environ as a WSGI server would (native strings holding latin-1 code
points, PEP 3333 §Unicode Issues), serves one request, and compares scope values exactly.
``state`` (A2W-SCOPE-12) is covered with lifespan in ``test_a2w_lifespan.py``.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.support.a2w_driver import EchoScope, call, make_environ, scope_for, serving

_ABSENT = object()


def _case(id: str, scope_key: str, expected: Any, **environ: Any) -> Any:
    return pytest.param(environ, scope_key, expected, id=id)


CASES = [
    # A2W-SCOPE-01: ASGI 3 with the HTTP spec version really implemented (2.4: send()
    # raises OSError after a disconnect, tested in test_a2w_response.py).
    _case("A2W-SCOPE-01-type", "type", "http"),
    _case("A2W-SCOPE-01-asgi", "asgi", {"version": "3.0", "spec_version": "2.4"}),
    # A2W-SCOPE-02: http_version from SERVER_PROTOCOL.
    _case("A2W-SCOPE-02-1.0", "http_version", "1.0", protocol="HTTP/1.0"),
    _case("A2W-SCOPE-02-1.1", "http_version", "1.1", protocol="HTTP/1.1"),
    _case("A2W-SCOPE-02-2", "http_version", "2", protocol="HTTP/2"),
    _case("A2W-SCOPE-02-2.0", "http_version", "2", protocol="HTTP/2.0"),
    # A2W-SCOPE-03: method passed through unchanged.
    _case("A2W-SCOPE-03-propfind", "method", "PROPFIND", method="PROPFIND"),
    _case("A2W-SCOPE-03-purge", "method", "PURGE", method="PURGE"),
    _case("A2W-SCOPE-03-case-kept", "method", "patch", method="patch"),
    # A2W-SCOPE-04: scheme from wsgi.url_scheme, "http" when missing.
    _case("A2W-SCOPE-04-https", "scheme", "https", scheme="https"),
    _case("A2W-SCOPE-04-missing", "scheme", "http", **{"wsgi.url_scheme": None}),
    _case("A2W-SCOPE-04-empty", "scheme", "http", scheme=""),
    # A2W-SCOPE-05: root_path is SCRIPT_NAME, path includes it, both undo the latin-1
    # dance (UTF-8 bytes carried as latin-1 code points).
    _case("A2W-SCOPE-05-root", "root_path", "/app", script_name="/app", path="/x"),
    _case("A2W-SCOPE-05-path-includes-root", "path", "/app/x", script_name="/app", path="/x"),
    _case("A2W-SCOPE-05-no-root", "root_path", "", path="/x"),
    _case("A2W-SCOPE-05-utf8", "path", "/app/café", script_name="/app", path="/caf\xc3\xa9"),
    _case(
        "A2W-SCOPE-05-utf8-root", "root_path", "/\u00e9t\u00e9", script_name="/\xc3\xa9t\xc3\xa9"
    ),
    _case("A2W-SCOPE-05-invalid-byte", "path", "/\ufffd", path="/\xff"),
    _case("A2W-SCOPE-05-emoji", "path", "/\U0001f600", path="/\xf0\x9f\x98\x80"),
    # A2W-SCOPE-06: raw_path from RAW_URI / REQUEST_URI when it matches path, else
    # rebuilt by percent-encoding (which loses %2F vs /: documented).
    _case("A2W-SCOPE-06-raw-uri", "raw_path", b"/a%2Fb", path="/a/b", RAW_URI="/a%2Fb?q=1"),
    _case("A2W-SCOPE-06-request-uri", "raw_path", b"/a%2Fb", path="/a/b", REQUEST_URI="/a%2Fb"),
    _case(
        "A2W-SCOPE-06-raw-uri-wins",
        "raw_path",
        b"/a%2fb",
        path="/a/b",
        RAW_URI="/a%2fb",
        REQUEST_URI="/a%2Fb",
    ),
    _case(
        "A2W-SCOPE-06-with-root",
        "raw_path",
        b"/app/x%20y",
        script_name="/app",
        path="/x y",
        RAW_URI="/app/x%20y",
    ),
    _case(
        "A2W-SCOPE-06-utf8",
        "raw_path",
        b"/caf%C3%A9",
        path="/caf\xc3\xa9",
        REQUEST_URI="/caf%C3%A9",
    ),
    _case("A2W-SCOPE-06-rebuilt", "raw_path", b"/caf%C3%A9", path="/caf\xc3\xa9"),
    _case("A2W-SCOPE-06-rebuilt-slash", "raw_path", b"/a/b", path="/a/b"),
    _case(
        "A2W-SCOPE-06-mismatch-rebuilt",
        "raw_path",
        b"/x/y",
        path="/x/y",
        RAW_URI="/rewritten/by/proxy",
    ),
    _case(
        "A2W-SCOPE-06-absolute-form",
        "raw_path",
        b"/p%2Fq",
        path="/p/q",
        RAW_URI="http://h.example/p%2Fq?x",
    ),
    # Issue 13 point 7: cheroot leaves %2F undecoded in PATH_INFO (and decodes the
    # rest); REQUEST_URI is the same target, not re-quoted to /a%252Fb.
    _case(
        "cheroot-encoded-slash",
        "raw_path",
        b"/a%2Fb",
        path="/a%2Fb",
        REQUEST_URI="/a%2Fb?x=1",
    ),
    _case(
        "cheroot-encoded-slash-lower-and-space",
        "raw_path",
        b"/a%2fb%20c",
        path="/a%2fb c",
        REQUEST_URI="/a%2fb%20c",
    ),
    _case(
        "cheroot-encoded-slash-utf8",
        "raw_path",
        b"/caf%C3%A9%2Fx",
        path="/caf\xc3\xa9%2Fx",
        REQUEST_URI="/caf%C3%A9%2Fx",
    ),
    _case(
        "cheroot-no-request-uri-rebuilt",
        "raw_path",
        b"/a%252Fb",
        path="/a%2Fb",
    ),
    _case(
        "encoded-slash-mismatch-rebuilt",
        "raw_path",
        b"/x%252Fy",
        path="/x%2Fy",
        REQUEST_URI="/other%2Fpath",
    ),
    # A2W-SCOPE-07: query_string is the raw latin-1 bytes, b"" when absent.
    _case("A2W-SCOPE-07-plain", "query_string", b"a=1&b=%20", query_string="a=1&b=%20"),
    _case("A2W-SCOPE-07-latin1", "query_string", b"q=\xc3\xa9", query_string="q=\xc3\xa9"),
    _case("A2W-SCOPE-07-absent", "query_string", b""),
    _case("A2W-SCOPE-07-empty", "query_string", b"", query_string=""),
    # A2W-SCOPE-09: a header the server already comma-joined is not split again.
    _case(
        "A2W-SCOPE-09-joined",
        "headers",
        [[b"accept", b"a,b"]],
        headers=[("Accept", "a,b")],
    ),
    _case(
        "A2W-SCOPE-09-cookie",
        "headers",
        [[b"cookie", b"a=1; b=2"]],
        headers=[("Cookie", "a=1; b=2")],
    ),
    # A2W-SCOPE-10: client, with the documented fallbacks.
    _case(
        "A2W-SCOPE-10-full",
        "client",
        ["10.0.0.1", 4321],
        remote_addr="10.0.0.1",
        remote_port="4321",
    ),
    _case(
        "A2W-SCOPE-10-no-port", "client", ["10.0.0.1", 0], remote_addr="10.0.0.1", remote_port=None
    ),
    _case(
        "A2W-SCOPE-10-bad-port", "client", ["10.0.0.1", 0], remote_addr="10.0.0.1", remote_port="x"
    ),
    _case(
        "A2W-SCOPE-10-empty-port", "client", ["10.0.0.1", 0], remote_addr="10.0.0.1", remote_port=""
    ),
    _case("A2W-SCOPE-10-no-addr", "client", None, remote_addr=None),
    _case("A2W-SCOPE-10-empty-addr", "client", None, remote_addr=""),
    # A2W-SCOPE-11: server, with the documented fallbacks.
    _case(
        "A2W-SCOPE-11-full",
        "server",
        ["example.org", 8080],
        server_name="example.org",
        server_port="8080",
    ),
    _case("A2W-SCOPE-11-empty-port", "server", ["sock", None], server_name="sock", server_port=""),
    _case("A2W-SCOPE-11-bad-port", "server", ["sock", None], server_name="sock", server_port="x"),
    _case("A2W-SCOPE-11-no-port", "server", ["sock", None], server_name="sock", server_port=None),
    _case("A2W-SCOPE-11-no-name", "server", None, server_name=None),
    # nginx + uWSGI without server_name: SERVER_NAME is empty; SERVER_ADDR (the listening
    # address, as uvicorn gives) counts then, with SERVER_PORT.
    _case(
        "A2W-SCOPE-11-empty-name-addr",
        "server",
        ["127.0.0.1", 8080],
        server_name="",
        server_port="8080",
        SERVER_ADDR="127.0.0.1",
    ),
    _case(
        "A2W-SCOPE-11-no-name-addr",
        "server",
        ["::1", 8080],
        server_name=None,
        server_port="8080",
        SERVER_ADDR="::1",
    ),
    _case("A2W-SCOPE-11-empty-name", "server", None, server_name="", server_port="8080"),
    _case(
        "A2W-SCOPE-11-empty-name-empty-addr",
        "server",
        None,
        server_name="",
        SERVER_ADDR="",
    ),
    _case(
        "A2W-SCOPE-11-name-wins-over-addr",
        "server",
        ["example.org", 80],
        server_name="example.org",
        SERVER_ADDR="127.0.0.1",
    ),
]


@pytest.mark.parametrize(("environ", "key", "expected"), CASES)
def test_scope_value(environ: dict[str, Any], key: str, expected: Any) -> None:
    scope = scope_for(make_environ(**environ))
    assert scope[key] == expected
    assert type(scope[key]) is type(expected)


@pytest.mark.parametrize("protocol", ["HTTP/3", "SPDY/1", ""], ids=["h3", "spdy", "empty"])
def test_unknown_protocol_falls_back_and_warns(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A2W-SCOPE-02: anything else becomes "1.1" with a logged warning, never an error."""
    with caplog.at_level(logging.WARNING, logger="bridgeway"):
        scope = scope_for(make_environ(protocol=protocol))
    assert scope["http_version"] == "1.1"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert repr(protocol) in warnings[0].getMessage()


HEADER_ENV: dict[str, Any] = {
    "HTTP_X_FOO_BAR": "caf\xe9",
    "HTTP_HOST": "example.org",
    "HTTP_CONTENT_TYPE": "shadow/type",
    "HTTP_CONTENT_LENGTH": "999",
    "CONTENT_TYPE": "a/b",
    "CONTENT_LENGTH": "3",
    "SERVER_SOFTWARE": "test",
    "gunicorn.socket": object(),
    "REMOTE_USER": "bob",
}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(
            HEADER_ENV,
            [
                [b"content-length", b"3"],
                [b"content-type", b"a/b"],
                [b"host", b"example.org"],
                [b"x-foo-bar", b"caf\xe9"],
            ],
            id="A2W-SCOPE-08-names-values-content",
        ),
        pytest.param(
            {"CONTENT_TYPE": "", "CONTENT_LENGTH": "", "HTTP_ACCEPT": "*/*"},
            [[b"accept", b"*/*"]],
            id="A2W-SCOPE-08-empty-content-left-out",
        ),
        pytest.param(
            {"HTTP_X_A": "1", "HTTP_X_B": "\xff"},
            [[b"content-length", b"3"], [b"x-a", b"1"], [b"x-b", b"\xff"]],
            id="A2W-SCOPE-08-latin1",
        ),
    ],
)
def test_headers(extra: dict[str, Any], expected: list[list[bytes]]) -> None:
    """A2W-SCOPE-08: HTTP_* and CONTENT_* only, lower-case names, latin-1 values, no
    header twice when the server set both CONTENT_TYPE and HTTP_CONTENT_TYPE."""
    environ = make_environ("POST", body=b"abc", **extra)
    scope = scope_for(environ)
    headers = scope["headers"]
    assert isinstance(headers, list)
    for header in headers:
        assert len(header) == 2
        assert all(type(part) is bytes for part in header)
    assert sorted([list(h) for h in headers]) == expected


def test_extensions_advertise_nothing_unimplemented() -> None:
    """A2W-SCOPE-13: no extension is advertised "just in case" (trailers, early hints
    and zerocopy are not implemented by ASGIToWSGI); pathsend is, and is advertised
    (EXT-06, tests/conformance/test_a2w_bugs.py)."""
    scope = scope_for(make_environ())
    extensions = scope.get("extensions") or {}
    assert isinstance(extensions, dict)
    assert set(extensions) == {"http.response.pathsend"}
    unimplemented = {
        "http.response.trailers",
        "http.response.early_hint",
        "http.response.zerocopysend",
        "http.response.zerocopy",
        "http.response.debug",
        "websocket.http.response",
    }
    assert not unimplemented & set(extensions)


_LEGAL = (str, bytes, int, float, list, dict, bool, type(None))


def _check_types(value: Any, where: str) -> None:
    assert isinstance(value, _LEGAL), f"{where}: {type(value).__name__} is not ASGI-legal"
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, f"{where}: key {key!r}"
            _check_types(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_types(item, f"{where}[{i}]")


def test_fresh_scope_with_legal_types() -> None:
    """A2W-SCOPE-14: a new scope per request, only ASGI-legal types (lists, not tuples),
    no WSGI objects at the top level, and mutating one scope does not affect the next."""
    app = EchoScope()
    environ_args: dict[str, Any] = {
        "headers": [("X-A", "1")],
        "query_string": "q=1",
        "REQUEST_URI": "/p",
    }
    with serving(app, lifespan="off") as adapter:
        environ = make_environ(path="/p", **environ_args)
        call(adapter, environ)
        first = app.scopes[0]
        _check_types(dict(first), "scope")
        for key in ("environ", "wsgi.input", "wsgi.errors", "gunicorn.socket"):
            assert key not in first
        assert not any(v is environ or v is environ["wsgi.input"] for v in first.values())
        first["headers"].append([b"x-injected", b"1"])
        first["asgi"]["spec_version"] = "0"
        first["path"] = "/mutated"
        call(adapter, make_environ(path="/p", **environ_args))
    second = app.scopes[1]
    assert second is not first
    assert second["headers"] == [[b"x-a", b"1"]]
    assert second["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert second["path"] == "/p"
    _check_types(dict(second), "scope")


def test_invalid_content_length_is_400_before_the_app() -> None:
    """A2W-RECV-04: a CONTENT_LENGTH that is not a non-negative integer gets 400 and the
    app never runs."""
    app = EchoScope()
    with serving(app, lifespan="off") as adapter:
        result = call(adapter, make_environ("POST", content_length="abc"))
        negative = call(adapter, make_environ("POST", content_length="-1"))
    assert result.code == 400
    assert negative.code == 400
    assert app.scopes == []
