"""The in-process round trip, ``WSGIToASGI(ASGIToWSGI(app))``, against the app itself.

The same Starlette and FastAPI apps are called natively and through the double bridge,
with Starlette's ``TestClient`` (and httpx's ``ASGITransport`` where the test's own
loop matters), on both anyio backends, and what the caller gets and sees is compared:
objects the test made on its loop work in the app; the call returns only once the
work after the final body is done and raises what it raised; lifespan runs at client
enter and exit with its state; a startup error surfaces at enter; a websocket echoes;
cancelling the caller cancels the app. Before the round trip ran the app on the
caller's loop, every one of these differed (each fails on the commit before it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx
import pytest
from fastapi import BackgroundTasks, Depends, FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.endpoints import HTTPEndpoint, WebSocketEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from bridgeway import ASGIToWSGI, WSGIToASGI
from bridgeway._types import Receive, Scope, Send
from tests.support.testclient import STREAMING_TEST_CLIENT

WAYS: dict[str, Callable[[Any], Any]] = {
    "native": lambda app: app,
    "round-trip": lambda app: WSGIToASGI(ASGIToWSGI(app)),
}


@pytest.fixture(params=list(WAYS))
def way(request: pytest.FixtureRequest) -> Callable[[Any], Any]:
    return WAYS[request.param]


@pytest.fixture
def backend_name(anyio_backend: str) -> Literal["asyncio", "trio"]:
    assert anyio_backend in ("asyncio", "trio")
    return anyio_backend  # type: ignore[return-value]  # TestClient's loop runs on it


WORK = 0.2  # how long the work after the final body takes
ENDLESS_LIMIT = 2000  # chunks the "endless" app sends at most


class Late(Exception):
    pass


def starlette_app(events: list[Any], *, fail_startup: bool = False) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        if fail_startup:
            raise RuntimeError("startup failed")
        yield {"answer": 42}
        events.append("shutdown")

    async def after() -> None:
        # Work that takes a while (not a synchronisation: the call must wait for it).
        await anyio.sleep(WORK)
        events.append("background done")

    async def after_fails() -> None:
        await anyio.to_thread.run_sync(lambda: None)
        error = Late("after the response")
        events.append(error)
        raise error

    async def state(request: Request) -> Response:
        return PlainTextResponse(str(request.state.answer))

    async def background(request: Request) -> Response:
        return PlainTextResponse("sent", background=BackgroundTask(after))

    async def background_fails(request: Request) -> Response:
        return PlainTextResponse("sent", background=BackgroundTask(after_fails))

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"echo {text}")
        await websocket.close()

    routes = [
        Route("/state", state),
        Route("/background", background),
        Route("/background-fails", background_fails),
        WebSocketRoute("/echo", echo),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def fastapi_app(events: list[str]) -> FastAPI:
    app = FastAPI()

    async def resource() -> AsyncIterator[str]:
        yield "resource"
        await anyio.sleep(WORK)
        events.append("teardown")

    def task() -> None:
        events.append("task")

    @app.get("/work")
    async def work(tasks: BackgroundTasks, res: str = Depends(resource)) -> dict[str, str]:
        tasks.add_task(task)
        return {"got": res}

    return app


def test_background_work_is_done_when_the_call_returns(
    way: Callable[[Any], Any], backend_name: Literal["asyncio", "trio"]
) -> None:
    events: list[Any] = []
    with TestClient(way(starlette_app(events)), backend=backend_name) as client:
        response = client.get("/background")
        assert (response.status_code, response.text) == (200, "sent")
        assert events == ["startup", "background done"]


def test_fastapi_teardown_and_tasks_are_done_when_the_call_returns(
    way: Callable[[Any], Any], backend_name: Literal["asyncio", "trio"]
) -> None:
    events: list[str] = []
    with TestClient(way(fastapi_app(events)), backend=backend_name) as client:
        response = client.get("/work")
        assert response.json() == {"got": "resource"}
        assert sorted(events) == ["task", "teardown"]


def test_an_error_after_the_response_is_raised_by_the_call(
    way: Callable[[Any], Any], backend_name: Literal["asyncio", "trio"]
) -> None:
    events: list[Any] = []
    app = way(starlette_app(events))
    with TestClient(app, backend=backend_name) as client, pytest.raises(Late) as raised:
        client.get("/background-fails")
    assert raised.value is events[1]  # the app's own exception object
    # Not raised, the response is complete, as natively.
    with TestClient(
        way(starlette_app([])), backend=backend_name, raise_server_exceptions=False
    ) as client:
        response = client.get("/background-fails")
        assert (response.status_code, response.text) == (200, "sent")


def test_lifespan_runs_at_enter_and_exit_with_state(
    way: Callable[[Any], Any], backend_name: Literal["asyncio", "trio"]
) -> None:
    events: list[Any] = []
    with TestClient(way(starlette_app(events)), backend=backend_name) as client:
        assert events == ["startup"]
        assert client.get("/state").text == "42"
    assert events == ["startup", "shutdown"]


def test_a_startup_error_is_raised_at_enter(
    way: Callable[[Any], Any], backend_name: Literal["asyncio", "trio"]
) -> None:
    events: list[Any] = []
    app = way(starlette_app(events, fail_startup=True))
    with pytest.raises(RuntimeError, match="startup failed"), TestClient(app, backend=backend_name):
        pass  # pragma: no cover - never entered
    assert events == ["startup"]


def test_a_websocket_echoes(
    way: Callable[[Any], Any], backend_name: Literal["asyncio", "trio"]
) -> None:
    app = way(starlette_app([]))
    with TestClient(app, backend=backend_name) as client, client.websocket_connect("/echo") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "echo hi"


def loop_bound_app(gate: anyio.Event, limiter: anyio.CapacityLimiter, seen: list[str]) -> Any:
    """Waits for an event the test made on its loop, offloads with its limiter."""

    async def wait(request: Request) -> Response:
        seen.append("waiting")
        await gate.wait()
        name = await anyio.to_thread.run_sync(lambda: "thread", limiter=limiter)
        return PlainTextResponse(f"released in {name}")

    return Starlette(routes=[Route("/wait", wait)])


async def test_objects_of_the_callers_loop_work_in_the_app(way: Callable[[Any], Any]) -> None:
    gate, limiter, seen = anyio.Event(), anyio.CapacityLimiter(1), list[str]()
    transport = httpx.ASGITransport(app=way(loop_bound_app(gate, limiter, seen)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                responses: list[httpx.Response] = []

                async def get() -> None:
                    responses.append(await client.get("/wait"))

                tg.start_soon(get)
                while not seen:
                    await anyio.lowlevel.checkpoint()
                gate.set()
    assert (responses[0].status_code, responses[0].text) == (200, "released in thread")


def cancellable_app(started: anyio.Event, ended: list[str]) -> Any:
    async def wait(request: Request) -> Response:
        try:
            started.set()
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            ended.append("cancelled")
            raise
        raise AssertionError("not reached")  # pragma: no cover

    return Starlette(routes=[Route("/wait", wait)])


async def test_cancelling_the_caller_cancels_the_app(way: Callable[[Any], Any]) -> None:
    started, ended = anyio.Event(), list[str]()
    transport = httpx.ASGITransport(app=way(cancellable_app(started, ended)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.get, "/wait")
                await started.wait()
                tg.cancel_scope.cancel()
    assert ended == ["cancelled"]


class Page(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        return PlainTextResponse("page")


class Chat(WebSocketEndpoint):
    async def on_connect(self, websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="wamp")


def test_endpoint_classes_are_asgi_3_apps(way: Callable[[Any], Any]) -> None:
    """Starlette's endpoint classes are called as ``cls(scope, receive, send)`` by a
    server (not as ASGI 2 classes, as asgiref takes every class)."""
    assert TestClient(way(Page)).get("/").text == "page"
    with TestClient(way(Chat)).websocket_connect("/", subprotocols=["soap", "wamp"]) as ws:
        assert ws.accepted_subprotocol == "wamp"


async def test_an_error_raised_while_the_app_is_cancelled_leaves_the_call(
    way: Callable[[Any], Any],
) -> None:
    """The app cancels the caller's scope and fails while unwinding: natively its
    exception, not the cancellation, leaves the call (the same object)."""
    external, raised = anyio.CancelScope(), list[Exception]()

    async def fails_in_cleanup(request: Request) -> Response:
        try:
            external.cancel()
            await anyio.sleep_forever()
        finally:
            raised.append(Late("while cancelled"))
            raise raised[0]
        raise AssertionError("not reached")  # pragma: no cover

    transport = httpx.ASGITransport(app=way(Starlette(routes=[Route("/", fails_in_cleanup)])))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with anyio.fail_after(10), external, pytest.raises(Late) as caught:
            await client.get("/")
    assert caught.value is raised[0]


def adds_a_header(app: Any) -> Any:
    """WSGI middleware: adds a request header and passes the iterable through."""

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        environ["HTTP_X_ADDED"] = "by-middleware"
        return app(environ, start_response)

    return middleware


async def test_wsgi_middleware_in_between_still_applies() -> None:
    """Behind WSGI middleware, an ASGIToWSGI without a lifespan of its own runs its app
    on the caller's loop too, with the request as the middleware left it."""
    gate = anyio.Event()
    gate.set()

    async def sees(request: Request) -> Response:
        await gate.wait()  # an event of the caller's loop
        return PlainTextResponse(request.headers.get("x-added", "-"))

    inner = ASGIToWSGI(Starlette(routes=[Route("/", sees)]), lifespan="off")
    transport = httpx.ASGITransport(app=WSGIToASGI(adds_a_header(inner)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with anyio.fail_after(10):
            response = await client.get("/")
    assert (response.status_code, response.text) == (200, "by-middleware")


async def test_a_large_upload_streams_through(way: Callable[[Any], Any]) -> None:
    async def count(request: Request) -> Response:
        sizes = [len(chunk) async for chunk in request.stream()]
        return PlainTextResponse(str(sum(sizes)))

    body = bytes(range(256)) * 4096 * 2  # 2 MiB
    app = way(Starlette(routes=[Route("/", count, methods=["POST"])]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with anyio.fail_after(10):
            response = await client.post("/", content=body)
    assert response.text == str(len(body))


def test_closing_a_stream_early_ends_the_app(
    way: Callable[[Any], Any],
    backend_name: Literal["asyncio", "trio"],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client closes an endless stream after its first chunk: the app ends (it is
    cancelled, or its send() raises) before the client's close returns, and the WSGI
    side with it (no thread left behind after ``cancel_timeout``)."""
    ended: list[str] = []
    sent = 0

    async def endless(scope: Scope, receive: Receive, send: Send) -> None:
        # Bounded, so that a TestClient that collects the whole response before it
        # returns (Starlette < 1.10, the pin on Python 3.10) gets an end: there the
        # client cannot close early, and only the clean end is compared.
        nonlocal sent
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            while sent < ENDLESS_LIMIT:
                sent += 1
                await send({"type": "http.response.body", "body": b"tick", "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            ended.append("finally")

    client = TestClient(way(endless), backend=backend_name)  # no lifespan: a raw app
    with client.stream("GET", "/") as response:
        assert next(response.iter_raw()).startswith(b"tick")
    assert ended == ["finally"]
    if STREAMING_TEST_CLIENT:
        assert sent < ENDLESS_LIMIT  # the app was stopped, not run to its end
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
