"""The live, verbatim round trip (issue 13): in ``ASGIToWSGI(WSGIToASGI(app))`` serving
the very request its WSGI caller made, with the ASGI messages reaching ``ASGIToWSGI``
as ``WSGIToASGI`` sent them, the pair is transparent: the caller gets what the app gave
and judges it itself, and the app sees the caller's environ (``_round_trip``).

Each case runs the same WSGI app natively (werkzeug's ``run_wsgi_app`` or test client)
and through the double bridge and compares what the caller got: the objects and their
types, the status line, the header list, the warnings werkzeug's LintMiddleware inside
gave. The guards put an ASGI middleware in between that rewrites a message: the old
checks of ``WSGIToASGI`` apply again (W2A-RESP-01, 02, 11, 12) and raise."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client, create_environ, run_wsgi_app

from bridgeway._types import Environ, Receive, Scope, Send, StartResponse
from bridgeway.errors import ProtocolError
from tests.support.round_trip import double, header_adder

HELLO = "Hello "  # one object each, to see that the caller gets that very one
WORLD = "World!"
HELLO_WORLD = "Hello World!"


def called(app: Any, environ: Environ, buffered: bool) -> tuple[list[Any], str, list[Any]]:
    """What ``run_wsgi_app`` gives its caller: the items (closed after), status, headers."""
    app_iter, status, headers = run_wsgi_app(app, environ, buffered=buffered)
    try:
        items = list(app_iter)
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()
    return items, status, list(headers.to_wsgi_list())


def natively_and_bridged(
    app: Any,
    environ: Callable[[], Environ] = dict,
    buffered: bool = False,
    loop_mode: str = "inline",
) -> tuple[Any, Any]:
    native = called(app, environ(), buffered)
    with double(app, loop_mode=loop_mode) as bridged_app:
        bridged = called(bridged_app, environ(), buffered)
    return native, bridged


# --------------------------------------------------------------- chunks as yielded


def str_list(environ: Environ, start_response: StartResponse) -> Iterable[Any]:
    start_response("200 OK", [("Content-Type", "text/html")])
    return [HELLO_WORLD]


def str_generator(environ: Environ, start_response: StartResponse) -> Iterator[Any]:
    start_response("200 OK", [("Content-Type", "text/html")])
    yield HELLO
    yield WORLD


def late_start_response(environ: Environ, start_response: StartResponse) -> Iterator[Any]:
    """werkzeug's own test app: chunks before ``start_response`` (PEP 3333 forbids it,
    ``run_wsgi_app`` takes it)."""
    yield HELLO
    yield b"bytes too "
    start_response("200 OK", [("Content-Type", "text/html")])
    yield WORLD


class Closing:
    """An iterable with ``close()``, as werkzeug's ``depends_on_close`` test app."""

    closed = 0

    def __init__(self, environ: Environ, start_response: StartResponse) -> None:
        start_response("200 OK", [("Content-Type", "text/html")])

    def __iter__(self) -> Iterator[Any]:
        yield HELLO
        yield WORLD

    def close(self) -> None:
        Closing.closed += 1


@pytest.mark.parametrize("loop_mode", ["inline", "thread", "shared"])
@pytest.mark.parametrize("buffered", [False, True])
@pytest.mark.parametrize("app", [str_list, str_generator, late_start_response, Closing])
def test_the_caller_gets_the_very_objects_the_app_yielded(
    app: Any, buffered: bool, loop_mode: str
) -> None:
    """Natively ``run_wsgi_app`` hands its caller whatever the app yields, ``str``
    included (a WSGI server would refuse it: its judgement, not the bridge's); so does
    the live round trip: the same objects, the same status line and header list. A
    chunk yielded before ``start_response`` arrives after the start (ASGI has no body
    before its start), which ``run_wsgi_app`` cannot tell apart."""
    Closing.closed = 0
    native, bridged = natively_and_bridged(app, buffered=buffered, loop_mode=loop_mode)
    assert bridged == native
    assert [type(item) for item in bridged[0]] == [type(item) for item in native[0]]
    assert all(b is n for b, n in zip(bridged[0], native[0], strict=True) if type(n) is str)
    if app is Closing:
        assert Closing.closed == 2  # once natively, once through the bridges


def bytes_before_start(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    yield b"early "
    start_response("200 OK", [("Content-Type", "text/html")])
    yield b"late"


def test_a_bytes_chunk_before_the_start_reaches_the_caller() -> None:
    native, bridged = natively_and_bridged(bytes_before_start)
    assert bridged == native == ([b"early ", b"late"], "200 OK", [("Content-Type", "text/html")])


def body_rewriter(inner: Any) -> Any:
    """An ASGI middleware that sends a new body message for each one, with the same
    bytes (the start as is)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def copy_body(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                message = dict(message)
            await send(message)

        await inner(scope, receive, copy_body)

    return app


@pytest.mark.parametrize("middleware", [body_rewriter, header_adder])
@pytest.mark.parametrize(
    ("app", "error", "match"),
    [
        (str_generator, TypeError, "yielded 'str'; response body chunks must be bytes"),
        (late_start_response, TypeError, "yielded 'str'"),
        (bytes_before_start, ProtocolError, "before calling start_response"),
    ],
    ids=["str", "str-before-start", "bytes-before-start"],
)
def test_with_a_middleware_in_between_the_old_checks_apply(
    app: Any, error: type[Exception], match: str, middleware: Any
) -> None:
    """What the caller was to judge went through an ASGI middleware that changed it:
    the bridge is no longer transparent, and the check ``WSGIToASGI`` makes for any
    ASGI server (W2A-RESP-11, W2A-RESP-12) raises, out of the caller's call."""
    with double(app, middleware) as bridged_app, pytest.raises(error, match=match):
        called(bridged_app, {}, buffered=False)


# ---------------------------------------------------------- status line and headers


def linted(status: str, headers: Any) -> Any:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, headers)
        return [b"Foo"]

    return LintMiddleware(app)


def warned(app: Any) -> tuple[list[str], Any]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = called(app, create_environ("/test"), buffered=True)
    return sorted(str(w.message) for w in record), result


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("20 OK", [("Content-Type", "text/plain")]),
        ("200 OK", ["fo"]),
        ("200 OK", (("Content-Type", "text/plain"),)),
    ],
    ids=["status-20", "header-not-a-pair", "header-tuple"],
)
def test_a_malformed_start_reaches_the_caller_as_given(status: str, headers: Any) -> None:
    """werkzeug's LintMiddleware inside warns about the start and passes it on; the
    caller gets it as given (natively it judges it: run_wsgi_app takes it as is)."""
    native_warnings, native = warned(linted(status, headers))
    with double(linted(status, headers)) as bridged_app:
        bridged_warnings, bridged = warned(bridged_app)
    assert native_warnings  # the lint middleware did warn
    assert (bridged_warnings, bridged) == (native_warnings, native)


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [("20 OK", [], ValueError), ("200 OK", ["fo"], TypeError)],
    ids=["status-20", "header-not-a-pair"],
)
def test_a_malformed_start_through_a_middleware_raises_the_old_check(
    status: str, headers: Any, error: type[Exception]
) -> None:
    """The middleware got (and changed) WSGIToASGI's stand-in for the start: the check
    the app's ``start_response`` skipped raises (W2A-RESP-01, 02), as with one bridge."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, headers)
        return [b"Foo"]

    with double(app, header_adder) as bridged_app, pytest.raises(error, match="start_response"):
        called(bridged_app, {}, buffered=True)


# ------------------------------------------------------------------- the environ


def echo_environ(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    keys = ("wsgi.version", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "my.key")
    seen = {key: environ.get(key) for key in keys}
    seen["own input"] = type(environ["wsgi.input"]).__module__.startswith("bridgeway")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


def server_environ() -> Environ:
    environ = create_environ("/")
    environ.update(
        {
            "wsgi.version": (0, 7),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": True,
            "my.key": "from the server",
        }
    )
    return environ


def test_the_app_sees_the_servers_environ() -> None:
    """The server's ``wsgi.*`` keys (a test's ``wsgi.version``, the real server's
    threading flags) and extension keys reach the app; ``wsgi.input`` stays the
    adapter's own stream, which the app reads."""
    native, bridged = natively_and_bridged(echo_environ, server_environ)
    seen = json.loads(bridged[0][0])
    assert seen.pop("own input") is True
    assert json.loads(native[0][0]).pop("own input") is False
    assert seen == {k: v for k, v in json.loads(native[0][0]).items() if k != "own input"}
    assert seen["wsgi.version"] == [0, 7]


def path_rewriter(inner: Any) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await inner(dict(scope, path="/other", raw_path=b"/other"), receive, send)

    return app


def test_a_middleware_that_changes_the_request_keeps_the_adapters_wsgi_keys() -> None:
    """Another request than the server's: the app's server is WSGIToASGI, as before
    (extension keys still come along, as behind WSGI middleware)."""
    with double(echo_environ, path_rewriter) as bridged_app:
        seen = json.loads(Client(bridged_app).get("/", environ_base=server_environ()).data)
    assert (seen["wsgi.version"], seen["wsgi.multithread"], seen["wsgi.run_once"]) == (
        [1, 0],
        True,
        False,
    )
    assert seen["my.key"] == "from the server"
