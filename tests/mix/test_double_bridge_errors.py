"""Issue 13 point 1 through two bridges, in process: the app's exception surfaces where
the native app's does (W2A-RESP-12, A2W-SEND-05).

WSGI apps run as ``ASGIToWSGI(WSGIToASGI(app))`` under Flask's and werkzeug's test
clients; ASGI apps as ``WSGIToASGI(ASGIToWSGI(app))`` under httpx's ``ASGITransport``
(``starlette.testclient`` warns on import, an error in this suite). Each case runs the
native app beside the bridged one through the same client and compares them.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import httpx
import pytest
from werkzeug.test import Client

from bridgeway import ASGIToWSGI, ProtocolError, WSGIToASGI
from bridgeway._types import Environ, StartResponse


def divide() -> int:
    return 1 // 0  # the app's own frame, looked for in the traceback


def app_frames(error: BaseException) -> list[str]:
    return [f.name for f in traceback.extract_tb(error.__traceback__)]


def raised_where(request: Callable[[], Any]) -> tuple[str, BaseException]:
    """Where a WSGI test client surfaces the app's ZeroDivisionError: from the call
    ("call"), or from ``get_data()`` of a response that had started ("body")."""
    try:
        response = request()
    except ZeroDivisionError as error:
        return "call", error
    assert response.status_code == 200
    with pytest.raises(ZeroDivisionError) as raised:
        response.get_data()
    return "body", raised.value


def bridgeway_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.split(".")[0] == "bridgeway" and r.levelno >= logging.ERROR
    ]


@contextmanager
def wsgi_double(app: Any, propagate: bool = True) -> Iterator[ASGIToWSGI]:
    bridged = ASGIToWSGI(
        WSGIToASGI(app, propagate_exceptions=propagate), propagate_exceptions=propagate
    )
    try:
        yield bridged
    finally:
        bridged.shutdown()


def asgi_double(app: Any, propagate: bool = True) -> tuple[WSGIToASGI, ASGIToWSGI]:
    inner = ASGIToWSGI(app, propagate_exceptions=propagate)
    return WSGIToASGI(inner, propagate_exceptions=propagate), inner


# ------------------------------------------------------------------ the WSGI apps


def flask_app() -> Any:
    from flask import Flask

    app = Flask(__name__)
    app.testing = True  # PROPAGATE_EXCEPTIONS: the test client re-raises

    @app.route("/crash")
    def crash() -> str:
        return str(divide())

    @app.route("/mid")
    def mid() -> Any:
        def chunks() -> Iterator[bytes]:
            yield b"one"
            divide()

        return app.response_class(chunks())

    @app.route("/fine")
    def fine() -> str:
        return "fine"

    return app


def raw_wsgi_app(environ: Environ, start_response: StartResponse) -> Any:
    path = environ["PATH_INFO"]
    if path == "/crash":
        divide()
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/mid":

        def chunks() -> Iterator[bytes]:
            yield b"one"
            divide()

        return chunks()
    return [b"fine"]


@pytest.mark.parametrize("path", ["/crash", "/mid"], ids=["in-view", "mid-body"])
def test_flask_test_client_reraises_through_two_bridges(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Native: Flask's test client (testing=True) re-raises the view's
    ZeroDivisionError, from the call (in the view) or from get_data() (a streamed body
    that yields and then raises). Through ASGIToWSGI(WSGIToASGI(app.wsgi_app)) the same:
    the same exception type, with the app's own frame, at the same point, and the
    bridges log nothing beside it (one traceback: whoever catches it)."""
    native = flask_app()
    bridged_app = flask_app()
    caplog.set_level(logging.DEBUG)
    with wsgi_double(bridged_app.wsgi_app) as bridged:
        bridged_app.wsgi_app = bridged
        outcomes: list[tuple[str, list[str]]] = []
        for app in (native, bridged_app):
            client = app.test_client()
            where, error = raised_where(partial(client.get, path))
            outcomes.append((where, app_frames(error)))
            assert client.get("/fine").get_data() == b"fine"  # nothing left broken
        (native_where, native_frames), (bridged_where, bridged_frames) = outcomes
        assert bridged_where == native_where == ("call" if path == "/crash" else "body")
        assert "divide" in native_frames
        assert "divide" in bridged_frames
        assert ("crash" if path == "/crash" else "chunks") in bridged_frames
    assert bridgeway_errors(caplog) == []


@pytest.mark.parametrize("path", ["/crash", "/mid"], ids=["in-app-call", "mid-body"])
def test_werkzeug_client_reraises_a_raw_wsgi_apps_exception_through_two_bridges(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """werkzeug's Client over a raw WSGI app: natively the exception leaves the app
    call (before start_response) or the iterator (mid-body, at get_data()); through two
    bridges the very same exception object arrives at the same point."""
    seen: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Any:
        try:
            result = raw_wsgi_app(environ, start_response)
        except ZeroDivisionError as error:
            seen.append(error)
            raise
        if environ["PATH_INFO"] != "/mid":
            return result

        def recorded() -> Iterator[bytes]:
            try:
                yield from result
            except ZeroDivisionError as error:
                seen.append(error)
                raise

        return recorded()

    caplog.set_level(logging.DEBUG)
    with wsgi_double(app) as bridged:
        for wsgi_app in (app, bridged):
            seen.clear()
            where, error = raised_where(partial(Client(wsgi_app).get, path))
            assert where == ("call" if path == "/crash" else "body")
            assert seen == [error]  # the app's own exception object
            assert "divide" in app_frames(error)
            assert Client(wsgi_app).get("/fine").get_data() == b"fine"
    assert bridgeway_errors(caplog) == []


def test_opt_out_through_two_bridges_is_one_500_and_one_log_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """propagate_exceptions=False on both bridges, WSGI app inside. In the view:
    WSGIToASGI answers its 500 "Internal Server Error" and logs the traceback once at
    ERROR; ASGIToWSGI sees a plain 500 and logs nothing; nothing is raised at the
    client, as with a native Flask app without PROPAGATE_EXCEPTIONS (its own 500).
    Mid-body: WSGIToASGI logs once and ends the ASGI response without its final body;
    ASGIToWSGI aborts the WSGI response the only way WSGI can, raising ProtocolError
    from the iterator (not logged: the WSGI server reports it), so the app's
    ZeroDivisionError never reaches the client and the bridges log it once in all.
    The inner loop goes back to its pool although werkzeug never closes the aborted
    response (ASGIToWSGI's shutdown finds no request still running)."""
    native = flask_app()
    native.testing = False
    native.logger.disabled = True  # its own "Exception on /crash" log is not the point
    native_response = native.test_client().get("/crash")
    assert native_response.status_code == 500

    bridged_app = flask_app()
    caplog.set_level(logging.DEBUG)
    with wsgi_double(bridged_app.wsgi_app, propagate=False) as bridged:
        response = Client(bridged).get("/crash")
        assert response.status_code == 500
        assert response.get_data() == b"Internal Server Error"
        assert_one_logged_zero_division(caplog)

        caplog.clear()
        mid = Client(bridged).get("/mid")
        assert mid.status_code == 200
        with pytest.raises(ProtocolError, match=r"before its final http\.response\.body"):
            mid.get_data()
        assert_one_logged_zero_division(caplog)
        caplog.clear()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def assert_one_logged_zero_division(caplog: pytest.LogCaptureFixture) -> None:
    errors = bridgeway_errors(caplog)
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ZeroDivisionError)


@pytest.mark.anyio
async def test_exception_after_a_body_at_its_content_length_propagates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The piece of the double bridge that used to lose it: a WSGI iterator that yields
    exactly its Content-Length and then raises (what ASGIToWSGI does when an ASGI app
    raises right after its final body). A native WSGI server iterates to the end, so
    werkzeug's client sees the exception; WSGIToASGI pulls once more too, so the
    exception leaves the ASGI call after the complete response. Excess bytes after
    such a body are cut and logged, and stop the iteration (W2A-RESP-15)."""
    pulled: list[bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "5")])
        pulled.append(b"hello")
        yield b"hello"
        if environ["PATH_INFO"] == "/excess":
            pulled.append(b"more")
            yield b"more"
            pulled.append(b"never")  # pragma: no cover
        divide()

    with pytest.raises(ZeroDivisionError):
        Client(app).get("/").get_data()  # native
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ZeroDivisionError) as raised:
        await get(WSGIToASGI(app), "/")
    assert "divide" in app_frames(raised.value)
    complete = await get(WSGIToASGI(app), "/", raise_app_exceptions=False)
    assert (complete.status_code, complete.content) == (200, b"hello")
    assert bridgeway_errors(caplog) == []

    pulled.clear()
    cut = await get(WSGIToASGI(app), "/excess")
    assert (cut.content, pulled) == (b"hello", [b"hello", b"more"])
    assert [r.getMessage() for r in bridgeway_errors(caplog)] == [
        "WSGIToASGI: the WSGI app sent more bytes than its Content-Length (5); the excess"
        " was cut (PEP 3333 §Handling the Content-Length Header)"
    ]


# ------------------------------------------------------------------ the ASGI apps


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    async def crash(request: Any) -> Any:
        return PlainTextResponse(str(divide()))

    async def mid(request: Any) -> Any:
        async def chunks() -> Any:
            yield b"one"
            divide()

        return StreamingResponse(chunks())

    async def fine(request: Any) -> Any:
        return PlainTextResponse("fine")

    return Starlette(routes=[Route("/crash", crash), Route("/mid", mid), Route("/fine", fine)])


def fastapi_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/crash")
    async def crash() -> dict[str, int]:
        return {"n": divide()}

    @app.get("/fine")
    async def fine() -> str:
        return "fine"

    return app


async def get(app: Any, path: str, raise_app_exceptions: bool = True) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


FRAMEWORKS: dict[str, Callable[[], Any]] = {"starlette": starlette_app, "fastapi": fastapi_app}


@pytest.mark.anyio
@pytest.mark.parametrize("framework", list(FRAMEWORKS))
async def test_asgi_transport_reraises_through_two_bridges(
    framework: str, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx's ASGITransport (raise_app_exceptions=True) re-raises a Starlette/FastAPI
    endpoint's exception natively (ServerErrorMiddleware sends its 500, then
    re-raises); through WSGIToASGI(ASGIToWSGI(app)) it re-raises the same type with
    the endpoint's frame, on asyncio and on trio outside (the inner bridge runs its own
    asyncio loop in the worker thread), and no bridge logs it."""
    native = FRAMEWORKS[framework]()
    outer, inner = asgi_double(FRAMEWORKS[framework]())
    caplog.set_level(logging.DEBUG)
    try:
        for app in (native, outer):
            with pytest.raises(ZeroDivisionError) as raised:
                await get(app, "/crash")
            assert "divide" in app_frames(raised.value)
            assert "crash" in app_frames(raised.value)
            assert (await get(app, "/fine")).status_code == 200
    finally:
        inner.shutdown()
    assert bridgeway_errors(caplog) == []


@pytest.mark.anyio
@pytest.mark.parametrize("framework", list(FRAMEWORKS))
async def test_asgi_transport_without_raising_gets_the_same_500(
    framework: str, caplog: pytest.LogCaptureFixture
) -> None:
    """raise_app_exceptions=False: natively the client gets ServerErrorMiddleware's
    500 "Internal Server Error"; through two bridges the same status and body."""
    native = await get(FRAMEWORKS[framework](), "/crash", raise_app_exceptions=False)
    outer, inner = asgi_double(FRAMEWORKS[framework]())
    caplog.set_level(logging.DEBUG)
    try:
        bridged = await get(outer, "/crash", raise_app_exceptions=False)
    finally:
        inner.shutdown()
    assert (bridged.status_code, bridged.content) == (native.status_code, native.content)
    assert native.status_code == 500
    assert bridgeway_errors(caplog) == []


@pytest.mark.anyio
async def test_streaming_body_exception_through_two_bridges(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A StreamingResponse whose generator yields and then raises: natively the
    transport re-raises it (raise_app_exceptions=True) or returns the started 200 with
    the bytes sent so far; through two bridges the same."""
    outer, inner = asgi_double(starlette_app())
    caplog.set_level(logging.DEBUG)
    try:
        for app in (starlette_app(), outer):
            with pytest.raises(ZeroDivisionError) as raised:
                await get(app, "/mid")
            assert "chunks" in app_frames(raised.value)
            partial = await get(app, "/mid", raise_app_exceptions=False)
            assert (partial.status_code, partial.content) == (200, b"one")
    finally:
        inner.shutdown()
    assert bridgeway_errors(caplog) == []


@pytest.mark.anyio
async def test_asgi_opt_out_through_two_bridges_is_a_500_and_one_log_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """propagate_exceptions=False on both bridges, ASGI app inside: Starlette's
    ServerErrorMiddleware sends its complete 500 and re-raises; ASGIToWSGI logs that
    once at ERROR and ends the response normally; WSGIToASGI sees a plain 500 and logs
    nothing. The client gets the 500 with raise_app_exceptions=True: nothing is
    raised."""
    outer, inner = asgi_double(starlette_app(), propagate=False)
    caplog.set_level(logging.DEBUG)
    try:
        response = await get(outer, "/crash")
    finally:
        inner.shutdown()
    assert (response.status_code, response.content) == (500, b"Internal Server Error")
    assert_one_logged_zero_division(caplog)
