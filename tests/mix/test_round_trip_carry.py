"""What a live round trip, ``WSGIToASGI(... ASGIToWSGI(app))`` in one process, carries
past WSGI (``bridgeway._carry``): the same Starlette and FastAPI apps under Starlette's
``TestClient``, natively and through the double bridge, on both anyio backends; what the
client gets and what the app saw must be the same. And where WSGI middleware in between
changed the request, the environ it changed wins, as without a round trip.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI, Header
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.templating import Jinja2Templates
from starlette.testclient import TestClient

from bridgeway import ASGIToWSGI, WSGIToASGI
from bridgeway._types import Environ, Message, Receive, Scope, Send, StartResponse
from tests.support.a2w_driver import serving
from tests.support.testclient import STREAMING_TEST_CLIENT

Wrap = Callable[..., Any]


def client_for(app: Any, backend: str, **kwargs: Any) -> TestClient:
    return TestClient(app, backend=cast(Literal["asyncio", "trio"], backend), **kwargs)


@pytest.fixture
def bridged() -> Iterator[Wrap]:
    """``WSGIToASGI(ASGIToWSGI(app))``, optionally with WSGI middleware in between
    (``between``); every ASGIToWSGI is shut down at the end."""
    adapters: list[ASGIToWSGI] = []

    def wrap(app: Any, between: Callable[[Any], Any] | None = None) -> Any:
        adapter = ASGIToWSGI(app, lifespan="off")
        adapters.append(adapter)
        return WSGIToASGI(adapter if between is None else between(adapter))

    yield wrap
    for adapter in adapters:
        adapter.shutdown(timeout=5.0)


def both(app: Any, bridged: Wrap, backend: str, **kwargs: Any) -> list[TestClient]:
    """The native app and its double bridge, each under its own TestClient."""
    return [client_for(a, backend, **kwargs) for a in (app, bridged(app))]


# ------------------------------------------------------------------------ request side

headers_app = FastAPI()


@headers_app.get("/items")
def read_headers(
    x_token: Annotated[list[str] | None, Header()] = None,
    user_agent_: Annotated[str | None, Header(alias="x_custom", convert_underscores=False)] = None,
) -> dict[str, Any]:
    return {"x_token": x_token, "x_custom": user_agent_}


@headers_app.get("/scope")
def read_scope(request: Request) -> dict[str, Any]:
    scope = request.scope
    return {
        "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "query_string": scope["query_string"].decode(),
        "root_path": scope["root_path"],
    }


REPEATED = [("x-token", "foo"), ("x-token", "bar"), ("x_custom", "under")]


def test_repeated_and_underscore_headers_read_as_header_lists(
    bridged: Wrap, anyio_backend: str
) -> None:
    """W2A-ENV-11/12 join repeats and drop ``_`` names for the WSGI app; the ASGI app
    behind the round trip gets the server's own list, as FastAPI's Header() expects."""
    answers = [
        c.get("/items", headers=REPEATED).json() for c in both(headers_app, bridged, anyio_backend)
    ]
    assert answers[0] == {"x_token": ["foo", "bar"], "x_custom": "under"}
    assert answers[1] == answers[0]


def test_the_scope_is_the_servers_own_when_nothing_changed_it(
    bridged: Wrap, anyio_backend: str
) -> None:
    answers = [
        c.get("/scope?a=1&b=%2F", headers=REPEATED).json()
        for c in both(headers_app, bridged, anyio_backend)
    ]
    assert answers[1] == answers[0]
    assert ["x-token", "bar"] in answers[0]["headers"]


def set_token(app: Any) -> Any:
    """WSGI middleware that rewrites one request header."""

    def middleware(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ["HTTP_X_TOKEN"] = "from-middleware"
        return app(environ, start_response)  # type: ignore[no-any-return]

    return middleware


def mount_under_api(app: Any) -> Any:
    """WSGI middleware that routes ``/api/...`` to the app mounted at ``/api``."""

    def middleware(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        environ["SCRIPT_NAME"] += "/api"
        environ["PATH_INFO"] = path.removeprefix("/api")
        return app(environ, start_response)  # type: ignore[no-any-return]

    return middleware


def test_a_header_wsgi_middleware_changed_wins(bridged: Wrap, anyio_backend: str) -> None:
    """Any request header changed in between: the ASGI app gets the environ's headers
    (repeats joined, ``_`` names dropped), as without a round trip."""
    client = client_for(bridged(headers_app, set_token), anyio_backend)
    answer = client.get("/items", headers=REPEATED).json()
    assert answer == {"x_token": ["from-middleware"], "x_custom": None}


def test_a_path_wsgi_middleware_routed_wins_and_the_headers_still_carry(
    bridged: Wrap, anyio_backend: str
) -> None:
    client = client_for(bridged(headers_app, mount_under_api), anyio_backend)
    answer = client.get("/api/scope?q=1", headers=REPEATED).json()
    assert (answer["root_path"], answer["path"], answer["query_string"]) == (
        "/api",
        "/api/scope",
        "q=1",
    )
    assert ["x-token", "foo"] in answer["headers"]
    assert ["x-token", "bar"] in answer["headers"]
    assert ["x_custom", "under"] in answer["headers"]


def test_an_environ_used_outside_the_callers_thread_is_not_a_round_trip(
    bridged: Wrap, anyio_backend: str
) -> None:
    """WSGI middleware that runs the app in another thread: the Upstream in the environ
    is not trusted there (``upstream_of``), so the environ's headers count."""

    def in_another_thread(app: Any) -> Any:
        def middleware(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            out: list[bytes] = []

            def run() -> None:
                body = app(environ, start_response)
                try:
                    out.extend(body)
                finally:
                    close = getattr(body, "close", None)
                    if close is not None:
                        close()

            thread = threading.Thread(target=run)
            thread.start()
            thread.join(10)
            return out

        return middleware

    client = client_for(bridged(headers_app, in_another_thread), anyio_backend)
    answer = client.get("/items", headers=REPEATED).json()
    assert answer == {"x_token": ["foo,bar"], "x_custom": None}


async def body_messages(scope: Scope, receive: Receive, send: Send) -> None:
    """Echoes the request body messages it received: their bodies and more_body."""
    seen = []
    while True:
        message = await receive()
        seen.append([message.get("body", b"").decode(), message.get("more_body", False)])
        if not message.get("more_body", False):
            break
    await JSONResponse(seen)(scope, receive, send)


async def test_the_body_arrives_in_the_clients_messages(bridged: Wrap) -> None:
    """Read back from wsgi.input in chunk_size reads, two small messages became one;
    WSGIToASGI's own wsgi.input passes the server's messages on one by one. (httpx's
    ASGITransport sends each chunk of a streamed body as one message; the TestClient
    reads the whole body first.)"""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    answers = []
    for app in (body_messages, bridged(body_messages)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            answers.append((await c.post("/", content=chunks())).json())
    assert answers[0] == [["ab", True], ["cd", True], ["", False]]
    assert answers[1] == answers[0]


def test_a_body_longer_than_its_content_length_arrives_whole(
    bridged: Wrap, anyio_backend: str
) -> None:
    """What the server passes on is the body (a test client passes anything): natively
    the app sees all of it, and counts it (FastAPI's and Starlette's body limits)."""
    answers = [
        c.post("/", content=b"123456", headers={"Content-Length": "1"}).json()
        for c in both(body_messages, bridged, anyio_backend)
    ]
    assert "".join(body for body, _ in answers[0]) == "123456"
    assert answers[1] == answers[0]


def test_a_body_wsgi_middleware_replaced_wins(bridged: Wrap, anyio_backend: str) -> None:
    def replace_body(app: Any) -> Any:
        def middleware(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            environ["wsgi.input"] = io.BytesIO(b"xyz")
            environ["CONTENT_LENGTH"] = "3"
            return app(environ, start_response)  # type: ignore[no-any-return]

        return middleware

    client = client_for(bridged(body_messages, replace_body), anyio_backend)
    assert client.post("/", content=b"123456").json() == [["xyz", False]]


# ----------------------------------------------------------------------- response side


async def trailers_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    if "http.response.trailers" not in scope.get("extensions", {}):
        await JSONResponse({"trailers": "not offered"})(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "trailers": True})
    await send({"type": "http.response.body", "body": b"hello", "more_body": True})
    await send({"type": "http.response.body", "body": b" world"})
    await send(
        {"type": "http.response.trailers", "headers": [(b"x-item", b"one")], "more_trailers": True}
    )
    await send({"type": "http.response.trailers", "headers": [(b"x-item", b"two")]})


def test_trailers_reach_a_client_that_advertises_them(bridged: Wrap, anyio_backend: str) -> None:
    """The TestClient advertises ``http.response.trailers`` in its scope; behind the
    round trip the app sees the offer and the client gets its trailers, in order."""
    responses = [c.get("/") for c in both(trailers_app, bridged, anyio_backend)]
    for response in responses:
        assert response.content == b"hello world"
        assert response.extensions["http.response.trailers"] == [
            (b"x-item", b"one"),
            (b"x-item", b"two"),
        ]
        assert "content-length" not in response.headers  # trailers need a chunked body


def test_a_client_that_leaves_before_the_trailers_does_not_wait_for_them(
    bridged: Wrap, anyio_backend: str
) -> None:
    """The app's body is complete, its trailers never come: the client gets the body
    at once and may leave, as natively (Starlette's own test of the same)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"hello"})
        await anyio.sleep(1)  # natively cancelled when the client leaves

    for client in both(app, bridged, anyio_backend):
        started = time.monotonic()
        with client.stream("GET", "/") as response:
            assert next(response.iter_raw()) == b"hello"
        assert time.monotonic() - started < 3


def test_trailers_sent_before_the_app_raised_still_reach_the_client(
    bridged: Wrap, anyio_backend: str
) -> None:
    """The app's body is complete and some trailers are out when it raises: the native
    server got them; through the round trip they go out before the exception."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"hello"})
        await send(
            {"type": "http.response.trailers", "headers": [(b"x-a", b"1")], "more_trailers": True}
        )
        raise ValueError("trailer production failed")

    for client in both(app, bridged, anyio_backend, raise_server_exceptions=False):
        response = client.get("/")
        assert response.content == b"hello"
        assert response.extensions["http.response.trailers"] == [(b"x-a", b"1")]


def test_a_debug_message_between_the_start_and_the_body(bridged: Wrap, anyio_backend: str) -> None:
    info = {"fragment": "header", "blocks": ["nav"]}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.debug", "info": info})
        await send({"type": "http.response.body", "body": b"Hello"})

    for client in both(app, bridged, anyio_backend):
        response = client.get("/")
        assert response.content == b"Hello"
        assert response.extensions["http.response.debug"] == info


def test_templates_expose_their_template_and_context(
    bridged: Wrap, anyio_backend: str, tmp_path: Path
) -> None:
    """``http.response.debug`` (what ``TemplateResponse`` sends for test clients)."""
    (tmp_path / "index.html").write_text("<p>{{ name }}</p>")
    templates = Jinja2Templates(directory=str(tmp_path))
    app = FastAPI()

    @app.get("/")
    def index(request: Request) -> Response:
        return templates.TemplateResponse(request, "index.html", {"name": "world"})

    for client in both(app, bridged, anyio_backend):
        response = client.get("/")
        assert response.text == "<p>world</p>"
        assert response.template.name == "index.html"  # type: ignore[attr-defined]
        assert response.context["name"] == "world"  # type: ignore[attr-defined]


async def plain_json(scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"extensions": sorted(scope.get("extensions", {}))})(scope, receive, send)


def test_without_a_round_trip_nothing_more_is_advertised(bridged: Wrap) -> None:
    """EXT-08 stays for an ASGIToWSGI under a WSGI server: only pathsend is offered."""
    with serving(plain_json, lifespan="off") as adapter:
        from tests.support.a2w_driver import call

        answer = call(adapter)
    assert answer.status == "200 OK"
    assert answer.body == b'{"extensions":["http.response.pathsend"]}'


# ------------------------------------------------ the start before the first body byte


def test_a_streaming_response_is_available_before_its_first_chunk(
    bridged: Wrap, anyio_backend: str
) -> None:
    """Its server sends ``http.response.start`` when the app sends it. Called directly
    with WSGIToASGI's own ``start_response`` (no WSGI middleware could still replace the
    response, which is what PEP 3333's lazy headers protect), the round trip does too:
    the client has the response while the app still waits for its first chunk."""
    release = threading.Event()

    async def stream() -> AsyncIterator[bytes]:
        assert await anyio.to_thread.run_sync(release.wait, 10)
        yield b"hello"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await StreamingResponse(stream())(scope, receive, send)

    for client in both(app, bridged, anyio_backend):
        # A TestClient that returns the response only once the app has returned
        # (Starlette 1.7) cannot have it before the first chunk: there, natively and
        # bridged, the chunk is released up front and only the response is compared.
        if STREAMING_TEST_CLIENT:
            release.clear()
        else:
            release.set()
        with client.stream("GET", "/") as response:
            release.set()
            assert response.status_code == 200
            assert response.read() == b"hello"


def test_after_an_early_start_no_chunk_is_lost(bridged: Wrap, anyio_backend: str) -> None:
    """After the early start the app runs on while the start goes out (on the server's
    loop in a round trip run there): its first chunks come at any moment, and every one
    reaches the client, as natively (Starlette's ``test_sync_streaming_response``: a
    sync iterator, one thread hop per item, lost its first item on trio)."""
    parts = [str(i).encode() for i in range(1, 6)]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await StreamingResponse(iter(parts))(scope, receive, send)

    for client in both(app, bridged, anyio_backend):
        for _ in range(40):  # the loss depended on the threads' timing
            assert client.get("/").content == b"".join(parts)


def test_a_failure_after_the_start_keeps_the_status_that_went_out(
    bridged: Wrap, anyio_backend: str
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await anyio.lowlevel.checkpoint()
        raise RuntimeError("broken before the first byte")

    for client in both(app, bridged, anyio_backend, raise_server_exceptions=False):
        response = client.get("/")
        assert (response.status_code, response.content) == (200, b"")


def test_wsgi_middleware_that_wraps_start_response_may_still_replace_the_response(
    bridged: Wrap, anyio_backend: str
) -> None:
    """Not a direct round trip: the start waits for the first body byte (PEP 3333), so
    middleware that answers an error with its own page still can."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await anyio.lowlevel.checkpoint()
        raise RuntimeError("broken before the first byte")

    def error_page(inner: Any) -> Any:
        def middleware(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            try:
                return list(inner(environ, lambda *a: start_response(*a)))
            except RuntimeError:
                start_response("503 Service Unavailable", [], sys.exc_info())
                return [b"sorry"]

        return middleware

    response = client_for(bridged(app, error_page), anyio_backend).get("/")
    assert (response.status_code, response.content) == (503, b"sorry")


def test_a_file_response_in_a_direct_round_trip(
    bridged: Wrap, anyio_backend: str, tmp_path: Path
) -> None:
    """pathsend right after the start, and after the start went out early (the app
    awaited something first), on GET and HEAD."""
    (tmp_path / "a.txt").write_bytes(b"file body" * 10000)

    async def late_pathsend(scope: Scope, receive: Receive, send: Send) -> None:
        if "http.response.pathsend" not in scope.get("extensions", {}):
            await FileResponse(tmp_path / "a.txt")(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await anyio.to_thread.run_sync(lambda: None)  # the start goes out meanwhile
        await send({"type": "http.response.pathsend", "path": str(tmp_path / "a.txt")})

    for app in (FileResponse(tmp_path / "a.txt"), late_pathsend):
        for method in ("GET", "HEAD"):
            answers = [c.request(method, "/") for c in both(app, bridged, anyio_backend)]
            expected = b"" if method == "HEAD" else b"file body" * 10000
            assert [(a.status_code, a.content) for a in answers] == [(200, expected)] * 2


# --------------------------------------------------------------------------- statuses


def test_an_unusual_status_is_served_as_natively(bridged: Wrap, anyio_backend: str) -> None:
    """issue 13 point 4: ``Response(status_code=123)`` (uvicorn sends it as it is)."""
    app = FastAPI()

    @app.get("/")
    def odd() -> Response:
        return Response(b"odd", status_code=123)

    answers = [c.get("/") for c in both(app, bridged, anyio_backend)]
    assert [(a.status_code, a.content) for a in answers] == [(123, b"odd")] * 2


@pytest.mark.parametrize("line", ["123 Unknown", "199 Odd", "600 Odd", "999 ", "404 NOT FOUND"])
def test_a_wsgi_app_may_send_any_three_digit_status(line: str, anyio_backend: str) -> None:
    """gunicorn, waitress, werkzeug and wsgiref send these lines as the app gave them
    (tests/live: /status): WSGIToASGI serves the code (ASGI has no reason phrase)."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(line, [("Content-Type", "text/plain")])
        return [b"odd"]

    response = client_for(WSGIToASGI(app), anyio_backend).get("/")
    assert (response.status_code, response.content) == (int(line[:3]), b"odd")


@pytest.mark.parametrize("line", ["099 Low", "20 OK", "1000 Odd", "200"])
def test_a_malformed_status_is_still_refused(line: str, anyio_backend: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(line, [])
        return [b""]

    client = client_for(WSGIToASGI(app), anyio_backend)
    with pytest.raises(ValueError, match="status"):
        client.get("/")


# ------------------------------------------------------------ cancellation mid-send


def test_a_request_cancelled_in_its_last_send_does_not_wait_for_the_thread(
    anyio_backend: str,
) -> None:
    """The final post of a list body and the thread's "done" post arrive together; a
    cancellation while the server's send() of that body blocks must not make the
    request wait ``cancel_timeout`` for a "done" post it already took."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    adapter = WSGIToASGI(app, cancel_timeout=5.0)

    async def main() -> float:
        blocked = anyio.Event()

        async def receive() -> Message:
            await anyio.sleep_forever()
            raise AssertionError  # pragma: no cover

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                blocked.set()
                await anyio.sleep_forever()  # a client that never reads

        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "root_path": "",
            "headers": [],
            "client": None,
            "server": ("testserver", 80),
        }
        async with anyio.create_task_group() as tg:
            tg.start_soon(adapter, scope, receive, send)
            with anyio.fail_after(5):
                await blocked.wait()
            started = time.monotonic()
            tg.cancel_scope.cancel()
        return time.monotonic() - started

    assert anyio.run(main, backend=anyio_backend) < 2.0


# ------------------------------------------- both halves: the server's loop and carrying


async def test_the_app_runs_on_the_servers_loop_and_what_wsgi_loses_is_carried(
    bridged: Wrap,
) -> None:
    """A direct round trip runs the app as a task of the server's request, on its loop
    (``_a2w.nested``), and carries what WSGI loses (``_carry``): both at once. The app
    waits for an event of the caller's loop between its final body and its trailers
    (only the server's loop can wait for it; a loop of ASGIToWSGI's pool cannot), the
    caller's call returns only once the app returned, and the app got the server's
    header list and body messages; the caller gets what it gets natively."""

    async def call(asgi: Any) -> tuple[list[Any], list[Message]]:
        seen: list[Any] = []
        sent: list[Message] = []
        body_out = anyio.Event()  # an object of this (the server's) loop
        over = anyio.Event()
        incoming: list[Message] = [
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"cd", "more_body": False},
        ]

        caller = threading.get_ident()  # the thread that runs the server's loop

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(threading.get_ident() == caller)
            seen.append(scope["headers"])
            while True:
                message = await receive()
                seen.append([message.get("body", b""), message.get("more_body", False)])
                if not message.get("more_body", False):
                    break
            await send({"type": "http.response.start", "status": 200, "trailers": True})
            await send({"type": "http.response.body", "body": b"hello"})
            await body_out.wait()
            await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"9")]})
            seen.append("returned")

        async def receive() -> Message:
            if incoming:
                return incoming.pop(0)
            await over.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                body_out.set()

        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), *((k.encode(), v.encode()) for k, v in REPEATED)],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
            "extensions": {"http.response.trailers": {}},
        }
        with anyio.fail_after(5):
            await asgi(app)(scope, receive, send)
        assert seen[-1] == "returned"  # the call returned only once the app had
        over.set()
        return seen, sent

    def client_sees(sent: list[Message]) -> tuple[Any, ...]:
        start, *rest = sent
        bodies = [m for m in rest if m["type"] == "http.response.body"]
        trailers = [m["headers"] for m in rest if m["type"] == "http.response.trailers"]
        return (
            start["status"],
            start.get("trailers"),
            b"".join(m.get("body", b"") for m in bodies),
            bodies[-1].get("more_body", False),
            trailers,
            rest[-1]["type"],
        )

    native_seen, native_sent = await call(lambda app: app)
    seen, sent = await call(bridged)
    assert seen == native_seen
    assert native_seen[0] is True
    assert native_seen[2:] == [[b"ab", True], [b"cd", False], "returned"]
    assert client_sees(sent) == client_sees(native_sent)
    assert client_sees(native_sent) == (
        200,
        True,
        b"hello",
        False,
        [[(b"x-sum", b"9")]],
        "http.response.trailers",
    )


def test_behind_wsgi_middleware_on_a_loop_of_its_own_the_round_trip_still_carries(
    anyio_backend: str,
) -> None:
    """WSGI middleware in between and a lifespan of ASGIToWSGI's own: the app runs on a
    loop of ASGIToWSGI's pool, not the server's (the server's lifespan does not reach
    it: ``_a2w.nested.live_trip``), and still gets the server's header list and its
    trailers reach the client, as natively."""

    def passing(app: Any) -> Any:
        def middleware(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            return app(environ, start_response)  # type: ignore[no-any-return]

        return middleware

    answers, trailers = [], []
    adapters = [ASGIToWSGI(app, lifespan="auto") for app in (headers_app, trailers_app)]
    try:
        for headers, trailing in ((headers_app, trailers_app), adapters):
            wrap = (lambda a: a) if headers is headers_app else (lambda a: WSGIToASGI(passing(a)))
            client = client_for(wrap(headers), anyio_backend)
            answers.append(client.get("/items", headers=REPEATED).json())
            response = client_for(wrap(trailing), anyio_backend).get("/")
            trailers.append(response.extensions.get("http.response.trailers"))
    finally:
        for adapter in adapters:
            adapter.shutdown(timeout=5.0)
    assert answers[0] == {"x_token": ["foo", "bar"], "x_custom": "under"}
    assert answers[1] == answers[0]
    assert trailers[0] == [(b"x-item", b"one"), (b"x-item", b"two")]
    assert trailers[1] == trailers[0]
