"""The in-process round trip from the WSGI side (issue 13): a WSGI app served through
``ASGIToWSGI(WSGIToASGI(app))`` in one process, called by werkzeug's and Flask's test
clients, gives the caller what the app gave with no bridge at all, where ASGI alone
could not carry it (``_round_trip``). Each case runs the same app natively and through
the double bridge and compares what the caller got and what the app saw; the guards
show that an ASGI middleware in between that changes the request or the response wins,
as it would over any ASGI app."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

import flask
import pytest
from flask.globals import _cv_request
from werkzeug.test import Client, run_wsgi_app
from werkzeug.wrappers import Response

from bridgeway import WSGIToASGI
from bridgeway._types import Environ, Receive, Scope, Send, StartResponse
from tests.support.a2w_driver import serving
from tests.support.round_trip import double, header_adder
from tests.support.waiting import wait_until

# ------------------------------------------------------------- the response's form


def shouting_404(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """werkzeug writes reason phrases in capitals (``404 NOT FOUND``), and its
    middleware looks headers up by their case in the raw list (SharedDataMiddleware)."""
    start_response("404 NOT FOUND", [("Content-Type", "text/plain"), ("X-Mixed-Case", "1")])
    return [b"nope"]


def test_the_status_line_and_header_list_are_the_apps_own() -> None:
    """ASGI has only the status code and lower-case header names; in a live round trip
    the WSGI caller gets the app's own status line (its reason phrase) and its header
    list (names' case, no Content-Length added), and an iterable it can close()."""
    native = run_wsgi_app(shouting_404, Client(shouting_404).get("/").request.environ)
    with double(shouting_404) as app:
        bridged = run_wsgi_app(app, Client(app).get("/").request.environ)
        body = b"".join(bridged[0])
        getattr(bridged[0], "close")()  # noqa: B009 - as contextlib.closing calls it
    assert (bridged[1], list(bridged[2])) == (native[1], list(native[2]))
    assert (native[1], list(native[2])) == (
        "404 NOT FOUND",
        [("Content-Type", "text/plain"), ("X-Mixed-Case", "1")],
    )
    assert body == b"nope"


def test_flask_abort_keeps_werkzeugs_reason_phrase() -> None:
    app = flask.Flask(__name__)

    @app.route("/")
    def index() -> str:
        flask.abort(404)

    native = app.test_client().get("/")
    app.wsgi_app = bridge_wsgi_app(app)  # type: ignore[method-assign]
    try:
        bridged = app.test_client().get("/")
    finally:
        shut_down(app)
    assert (bridged.status, bridged.data) == (native.status, native.data)
    assert native.status == "404 NOT FOUND"


def test_a_middleware_that_changes_the_response_wins() -> None:
    """The start message the WSGI server gets is the middleware's: ASGI's form (the
    standard phrase, lower-case names), as from any ASGI app."""
    with double(shouting_404, header_adder) as app:
        response = Client(app).get("/")
    assert response.status == "404 Not Found"
    assert ("x-added", "yes") in list(response.headers.items())
    assert "x-mixed-case" in [name for name, _ in response.headers.items()]


# -------------------------------------------------------------- the request's form


def echo_target(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    keys = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "REQUEST_METHOD")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({key: environ.get(key) for key in keys}).encode()]


@pytest.mark.parametrize(
    ("path", "base_url"),
    [
        ("/%3f?", "http://localhost/"),  # an escaped "?" and an empty query string
        ("foo", "http://example.org/app"),  # PATH_INFO without its leading slash
        ("/hello%2fworld?a=b", "http://localhost/"),
    ],
    ids=["empty-query", "relative-path-info", "encoded-slash"],
)
def test_the_app_sees_the_request_target_as_the_server_wrote_it(path: str, base_url: str) -> None:
    native = json.loads(Client(echo_target).get(path, base_url=base_url).data)
    with double(echo_target) as app:
        bridged = json.loads(Client(app).get(path, base_url=base_url).data)
    assert bridged == native


def path_rewriter(inner: Any) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await inner(dict(scope, path="/other", raw_path=b"/other"), receive, send)

    return app


def test_a_middleware_that_changes_the_request_wins() -> None:
    with double(echo_target, path_rewriter) as app:
        seen = json.loads(Client(app).get("/%3f?").data)
    assert (seen["PATH_INFO"], seen["REQUEST_URI"]) == ("/other", "/other")


class LazyEmpty:
    """werkzeug's own test app: start_response only at the first next(), no body."""

    def __init__(self, environ: Environ, start_response: StartResponse) -> None:
        self.start_response = start_response

    def __iter__(self) -> LazyEmpty:
        return self

    def __next__(self) -> bytes:
        self.start_response("200 OK", [("Content-Type", "text/html")])
        raise StopIteration


def test_a_bare_environ_is_read_as_werkzeug_reads_it() -> None:
    """``run_wsgi_app(app, {})``: werkzeug (the reference for its own helper) reads a
    missing REQUEST_METHOD as GET; bridgeway did not build a scope at all (KeyError)."""
    native = run_wsgi_app(LazyEmpty, {})
    with double(LazyEmpty) as app:
        bridged = run_wsgi_app(app, {})
        body = b"".join(bridged[0])
    assert (bridged[1], list(bridged[2]), body) == (
        native[1],
        list(native[2]),
        b"".join(native[0]),
    )


# ------------------------------------------- Flask's "with client:" context preservation


def bridge_wsgi_app(app: flask.Flask, loop_mode: str = "inline") -> Any:
    """Route a Flask app's wsgi_app through a double bridge (what the framework-suite
    plugin does), keeping the outer adapter for shut_down."""
    outer = serving(WSGIToASGI(app.wsgi_app), lifespan="off", loop_mode=loop_mode)
    adapter = outer.__enter__()
    app.extensions["test_round_trip"] = outer
    return adapter


def shut_down(app: flask.Flask) -> None:
    app.extensions.pop("test_round_trip").__exit__(None, None, None)


def make_flask() -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = "test"

    @app.route("/", methods=["GET", "POST"])
    def index() -> str:
        flask.session["seen"] = flask.request.args.get("q", "")
        return "ok"

    @app.route("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            yield flask.request.path
            yield "!"

        return flask.Response(flask.stream_with_context(chunks()))

    return app


def in_client_context(app: flask.Flask) -> tuple[str, str, str]:
    client = app.test_client()
    with client:
        client.get("/?q=kept")
        seen = (flask.request.args["q"], flask.session["seen"], flask.current_app.name)
    assert _cv_request.get(None) is None  # popped at the end of the block
    return seen


@pytest.mark.parametrize("loop_mode", ["inline", "thread", "shared"])
def test_with_client_keeps_the_request_context_as_natively(loop_mode: str) -> None:
    """Flask's ``with client:`` hands the request's context objects to the client
    (werkzeug's preserve_context); through the double bridge they are handed over
    once the app's thread is done with them, so the test sees ``flask.request``."""
    app = make_flask()
    native = in_client_context(app)
    app.wsgi_app = bridge_wsgi_app(app, loop_mode)  # type: ignore[method-assign]
    try:
        bridged = in_client_context(app)
    finally:
        shut_down(app)
    assert bridged == native == ("kept", "kept", __name__)


@pytest.mark.parametrize("loop_mode", ["inline", "thread", "shared"])
def test_a_streamed_response_under_with_client_leaves_no_context_behind(loop_mode: str) -> None:
    """The documented difference: a streamed response reaches the client while the
    app's thread still runs its generator (stream_with_context pushes the same context
    objects there), so bridgeway withholds them rather than let two threads push and
    pop one context; the body and the client's state afterwards are as natively."""
    app = make_flask()
    app.wsgi_app = bridge_wsgi_app(app, loop_mode)  # type: ignore[method-assign]
    try:
        client = app.test_client()
        for _ in range(3):
            with client:
                response = client.get("/stream")
                assert response.data == b"/stream!"
                response.close()
            assert _cv_request.get(None) is None
    finally:
        shut_down(app)


# ------------------------------------------------------- close() returns after close()


def slow_closing_stream(events: list[str]) -> Any:
    """A streamed response whose end takes a moment (a flush, a context's exit)."""

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            for n in range(1, 100):
                events.append(f"yielded {n}")
                yield b"chunk %d\n" % n
        finally:
            time.sleep(0.2)
            events.append("closed")

    return app


@pytest.mark.parametrize("loop_mode", ["inline", "thread", "shared"])
def test_the_servers_close_returns_once_the_apps_close_has_run(loop_mode: str) -> None:
    """With no bridge, a WSGI server's close() of the iterable runs the app's own
    close() before it returns (Flask's test client closes a streamed response and then
    pops the request context the app's generator pushed). Through the double bridge the
    app's thread runs a little ahead; parked there, it is told the client left and
    closes the iterable before the outer close() returns."""
    native: list[str] = []
    response = Client(slow_closing_stream(native)).get("/", buffered=False)
    response.close()
    assert native[-1] == "closed"

    bridged: list[str] = []
    with double(slow_closing_stream(bridged), loop_mode=loop_mode) as app:
        response = Client(app).get("/", buffered=False)
        # The app's thread is two chunks ahead of the client, then waits (W2A-RESP-10).
        wait_until(lambda: "yielded 3" in bridged)
        response.close()
        assert bridged[-1] == "closed"
